"""What each process imports (issue 10: every NetWatch process's RSS summed under 400 MB).

Each check runs in a fresh interpreter: this one has imported everything the suite needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

from netwatch.bus import setup, streams, wire

# Runs argv[2], then prints, as JSON, which of argv[1] (comma-separated) are loaded.
_PROBE = """
import json, sys
exec(sys.argv[2])
print(json.dumps([m for m in sys.argv[1].split(",") if m in sys.modules]))
"""


def loaded_after_code(code: str, watched: Sequence[str]) -> list[str]:
    """Which of the watched modules a fresh interpreter holds after running code."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(watched), code],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


def loaded_after(imports: Sequence[str], watched: Sequence[str]) -> list[str]:
    """Which of the watched modules a fresh interpreter holds after the imports."""
    return loaded_after_code("".join(f"import {name}\n" for name in imports), watched)


def test_no_process_imports_pysnmp_until_it_polls_snmpv3() -> None:
    # v2c, ICMP and HTTP never need pysnmp (probes/snmp_v3.py is imported on the first v3
    # request): neither a probe worker, the alerting core, nor the web carries it.
    imports = [
        "netwatch.roles.probe",
        "netwatch.runtime",
        "netwatch.roles.core",
        "netwatch.web.app",
    ]
    assert loaded_after(imports, ["pysnmp", "pyasn1", "probes.snmp_v3"]) == []


def test_the_supervisor_imports_only_what_it_uses() -> None:
    # `netwatch run` without --role only starts nats-server, sets up the stream and buckets and
    # watches children: no inventory (pydantic), no wire format or plan, no HTTP client (nats-py
    # imports aiohttp for its WebSocket transport: netwatch.bus hides it), no web, no store.
    imports = ["netwatch.cli", "netwatch.runner", "netwatch.roles.supervisor"]
    heavy = ["pydantic", "aiohttp", "pysnmp", "fastapi", "sqlalchemy", "netwatch.bus.wire"]
    assert loaded_after(imports, heavy) == []


def test_the_stream_takes_every_subject_of_the_wire_format() -> None:
    # netwatch.bus.setup names the stream's subjects without importing the wire (which brings
    # the plan and the probes): the two must not drift apart.
    assert f"{wire.OBS_PREFIX}.>" == setup.OBSERVATION_SUBJECTS
    assert streams.ensure_stream is setup.ensure_stream


def test_netwatch_run_parses_its_command_line_without_the_other_commands() -> None:
    # The real entry point: the supervisor parses `netwatch run ...` (as each child does its
    # `run --role ...`) without importing the lab, mailbox and probe commands' modules.
    argv = ["run", "--config", "config.yaml"]
    code = f"from netwatch.cli import parse_args; parse_args({argv!r}); import netwatch.roles.supervisor"
    heavy = ["pydantic", "aiohttp", "pysnmp", "fastapi", "sqlalchemy", "netwatch.lab"]
    assert loaded_after_code(code, heavy) == []


def test_openpyxl_waits_for_the_first_workbook() -> None:
    # The report's XLSX file needs openpyxl (~5 MB of RSS): no process loads it at start-up,
    # only the one asked for a workbook (the API, the admin page, the mail of the 1st).
    imports = ["netwatch.runtime", "netwatch.roles.core", "netwatch.web.app", "netwatch.reportmail"]
    assert loaded_after(imports, ["openpyxl"]) == []
