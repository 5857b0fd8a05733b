"""Reloading the configuration of a running NetWatch on the lab with SIGHUP (issue 15).

`netwatch run --role all` runs as a real process probing the lab; a commune's line is cut (its
tickets open) and another's too; the file is rewritten to remove the first, add a new commune
and lower a third's RTT threshold, then SIGHUP: the removed commune's tickets resolve as removed
from monitoring (not recovered) and its series go, the new commune is probed, the threshold
applies, the other cut commune keeps its tickets. A bad file then changes nothing and the log
names each mistake with its file, line and column.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from netwatch.lab import Lab
from tests.lab.fixtures import built_lab, restored
from tests.processes import stop
from tests.servers import reserved_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 41  # 10.129.0.0/16, namespaces nwl41-*
NETWATCH = str(Path(sys.executable).with_name("netwatch"))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, 4, tmp_path_factory.mktemp("reload-lab"))


@pytest.fixture
def lab(built: Lab) -> Iterator[Lab]:
    yield from restored(built)


def _lab_env(lab: Lab) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in lab.paths.env_file.read_text().splitlines())
    return {k.strip(): v.strip().strip("'\"") for k, v in (p for p in pairs if len(p) == 2)}


def _write(path: Path, data: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")


class NetWatch:
    """`netwatch run --role all` on a config file, over HTTP; its log kept for the asserts."""

    def __init__(self, proc: subprocess.Popen[str], port: int, log: Path, token: str) -> None:
        self.proc = proc
        self.base = f"http://127.0.0.1:{port}"
        self.log = log
        self.token = token

    def reload(self) -> tuple[int, Any]:
        """POST /api/v1/config/reload with a write token."""
        request = urllib.request.Request(
            self.base + "/api/v1/config/reload",
            method="POST",
            headers={"Authorization": f"Bearer {self.token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str) -> tuple[int, str]:
        """GET, with the write token (which reads too)."""
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {self.token}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()
        except OSError:
            return 0, ""

    def json(self, path: str) -> Any:
        status, body = self.get(path)
        assert status == 200, (path, status, body)
        return json.loads(body)

    def tickets(self, code: str) -> list[dict[str, Any]]:
        return [
            t for t in self.json("/api/v1/tickets") if t["incident_key"].startswith(f"link:{code}/")
        ]

    def samples(self, name: str) -> dict[str, float]:
        """One family's samples by commune label."""
        _, text = self.get("/metrics")
        return {
            s.labels.get("commune", ""): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == name
        }

    def hup(self) -> None:
        self.proc.send_signal(signal.SIGHUP)


# One process (`--role all`), and the supervised processes (`netwatch run`: its own nats-server,
# a probe worker, an SNMP worker, the core and a web worker; SIGHUP goes to the supervisor).
MODES = {
    "single-process": ("--role", "all"),
    "processes": (
        "--probe-workers", "1", "--snmp-workers", "1", "--web-workers", "1",
        "--metrics-port-base", "0",
    ),
}  # fmt: skip


@pytest.fixture(params=sorted(MODES))
def netwatch_on(
    lab: Lab, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[NetWatch, Path, dict[str, Any]]]:
    """NetWatch running on the lab's first three communes (the fourth is added by the test)."""
    data = yaml.safe_load(lab.paths.config_file.read_text(encoding="utf-8"))
    data["intervals"] = {"icmp_s": 2, "icmp_echoes": 5, "snmp_s": 3, "http_s": 5}
    data["tickets"] = {"recovery_min": 10, "reopen_window_min": 120}
    config = tmp_path / "netwatch.yaml"
    full = dict(data)
    _write(config, {**data, "communes": data["communes"][:3]})
    port = reserved_port()
    log = tmp_path / "netwatch.log"
    (tmp_path / "data").mkdir()
    token = subprocess.run(
        [NETWATCH, "token", "create", "ops", "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                NETWATCH,
                "run",
                *MODES[request.param],
                "--config",
                str(config),
                "--listen",
                f"127.0.0.1:{port}",
                "--data-dir",
                str(tmp_path / "data"),
            ],
            env={**os.environ, **_lab_env(lab)},
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            nw = NetWatch(proc, port, log, token)
            wait_until(lambda: nw.get("/healthz")[0] == 200, 60, 0.5, "NetWatch up")
            yield nw, config, {**full, "mode": request.param}
        finally:
            stop(proc)
            print(log.read_text()[-6000:])  # shown when the test fails


def test_sighup_reload_on_lab(lab: Lab, netwatch_on: tuple[NetWatch, Path, dict[str, Any]]) -> None:
    nw, config, full = netwatch_on
    full = dict(full)
    mode = full.pop("mode")
    communes = full["communes"]
    gone, kept, tuned, added = (f"{int(c['code']):05d}" for c in communes)
    # Every commune judged ok first, then two lines cut: both get tickets.
    for code in (gone, kept, tuned):
        wait_until(
            lambda code=code: all(
                x["state"] == "ok" for x in nw.json(f"/api/v1/communes/{code}")["links"]
            ),
            60,
            0.5,
            f"{code} ok",
        )
    lab.commune_down(int(gone))
    lab.commune_down(int(kept))
    gone_tickets = wait_until(lambda: nw.tickets(gone), 60, 0.5, "tickets of the cut commune")
    kept_tickets = wait_until(lambda: nw.tickets(kept), 60, 0.5, "tickets of the other")
    assert nw.samples("netwatch_link_up").get(gone) == 0.0

    # Remove one cut commune, add the fourth, lower the third's RTT threshold to 1 µs.
    tuned_entry = {**communes[2], "thresholds": {"rtt_ms": 0.001}}
    _write(config, {**full, "communes": [communes[1], tuned_entry, communes[3]]})
    nw.hup()

    def closed() -> list[dict[str, Any]]:
        found = [nw.json(f"/api/v1/tickets/{t['id']}") for t in gone_tickets]
        return found if all(t["state"] == "resolved" for t in found) else []

    for ticket in wait_until(closed, 30, 0.5, "removed commune's tickets resolved"):
        kinds = [e["kind"] for e in ticket["events"]]
        assert kinds[-1] == "unmonitored", kinds
        assert "auto_resolved" not in kinds
        assert "recovering" not in kinds
    # Its probes stop: its series are gone, its page too; the new commune is probed.
    wait_until(lambda: added in nw.samples("netwatch_link_up"), 30, 0.5, "added probed")
    up = nw.samples("netwatch_link_up")
    assert gone not in up
    assert up[added] == 1.0
    assert nw.get(f"/api/v1/communes/{gone}")[0] == 404
    # The changed threshold applies: every round of the tuned commune is now slow.
    wait_until(
        lambda: all(x["state"] == "slow" for x in nw.json(f"/api/v1/communes/{tuned}")["links"]),
        60,
        0.5,
        "tuned commune slow",
    )
    # The other cut commune keeps its tickets (same ids, still open) and its state.
    now_kept = {t["id"]: t for t in nw.tickets(kept)}
    for ticket in kept_tickets:
        assert now_kept[ticket["id"]]["state"] == "open"
        events = [e["kind"] for e in nw.json(f"/api/v1/tickets/{ticket['id']}")["events"]]
        assert "unmonitored" not in events
        assert "reopened" not in events
    assert all(x["state"] == "down" for x in nw.json(f"/api/v1/communes/{kept}")["links"])
    assert nw.samples("netwatch_config_reload_success")[""] == 1.0

    # A bad file: nothing changes, every mistake logged with its position.
    bad = {**full, "communes": [communes[1], tuned_entry, communes[3]]}
    bad["communes"][2] = {**communes[3], "code": 99999}
    bad["isps"] = {**full["isps"], "x": {"name": 5}}
    _write(config, bad)
    sent = nw.samples("netwatch_link_echoes_sent_total")[added]
    nw.hup()
    wait_until(
        lambda: nw.samples("netwatch_config_reload_success").get("") == 0.0,
        30,
        0.5,
        "bad reload reported",
    )
    text = nw.log.read_text()
    lines = config.read_text().splitlines()
    code_line = next(i for i, line in enumerate(lines, 1) if "99999" in line)
    assert f"configuration error {config}:{code_line}:" in text
    assert "configuration not reloaded, the running one stays" in text
    assert text.count("configuration error ") >= 2  # the code and the ISP's name
    # Everything runs on as before: the added commune is still probed.
    wait_until(
        lambda: nw.samples("netwatch_link_echoes_sent_total")[added] > sent,
        30,
        0.5,
        "still probing",
    )
    assert nw.proc.poll() is None
    assert [t["state"] for t in nw.tickets(kept)] == ["open"] * len(kept_tickets)

    # The API: a bad file is refused with every mistake and its place; the good one is applied
    # (one process: 200) or checked and passed to every process by the supervisor (202).
    status, body = nw.reload()
    assert status == 422, body
    assert body["status"] == "refused"
    assert {"file": str(config), "line": code_line} in [
        {"file": e["file"], "line": e["line"]} for e in body["errors"]
    ]
    _write(config, {**full, "communes": [communes[1], tuned_entry, communes[3]]})
    status, body = nw.reload()
    assert (status, body["status"]) in ((200, "applied"), (202, "requested")), body
    assert status == (200 if mode == "single-process" else 202)
    wait_until(
        lambda: nw.samples("netwatch_config_reload_success").get("") == 1.0,
        30,
        0.5,
        "good reload reported",
    )
