"""What each process imports (issue 10: every NetWatch process's RSS summed under 400 MB).

Each check runs in a fresh interpreter: this one has imported everything the suite needs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence

# Prints, as JSON, which of argv[1] (comma-separated) are loaded after importing argv[2:].
_PROBE = """
import importlib, json, sys
for name in sys.argv[2:]:
    importlib.import_module(name)
print(json.dumps([m for m in sys.argv[1].split(",") if m in sys.modules]))
"""


def loaded_after(imports: Sequence[str], watched: Sequence[str]) -> list[str]:
    """Which of the watched top-level packages a fresh interpreter holds after the imports."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, ",".join(watched), *imports],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    loaded: list[str] = json.loads(out)
    return loaded


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
