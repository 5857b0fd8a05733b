"""Issue 11 end to end on the lab, every piece a real process: `netwatch run --agent-listen` at
the centre (probe workers, SNMP worker, core, web, the agents' hub), `netwatch agent` with its
real measurements inside the lab's agent box of two dual-homed communes (keys made by
`netwatch agent-key add`, config from the centre), and the lab's own faults.

- The commune page (a web worker's) shows what the box measured from inside.
- Both lines of commune A cut for 12 agent rounds: while cut, one "site unreachable" ticket
  and no ISP ticket (the box is silent, as a dark site would be); when the lines return the
  box's buffer arrives, every round once and in order in the centre's stream AGENTS, and it
  proves the LAN was up while both lines were down: each line's ISP gets its ticket with the
  backfilled inside evidence.
- Commune B loses power (router, box, devices and lines gone): one "site unreachable" ticket to
  provincial IT and the commune, no ISP ticket, also after the power returns.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import yaml

from netwatch.agent.wire import decode_round
from netwatch.lab import Lab
from netwatch.lab.topology import CommunePlan
from tests.integration.test_run_on_lab import Client, _env
from tests.lab.fixtures import built_lab
from tests.prometheus.test_on_lab import _token
from tests.roles.procs import descendants, get, kill_all, netwatch, spawned
from tests.servers import reserved_port
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(600)]

LAB_INDEX = 28  # 10.116.0.0/16, namespaces nwl28-*
LAB_COMMUNES = 3  # communes 0 and 2 are dual-homed (VNPT TSLCD + Viettel internet)
AGENT_S = 5.0  # the agents' rounds
CUT_ROUNDS = 12  # "both lines cut for 10 minutes", scaled: 12 rounds of the agent


@dataclass
class Centre:
    client: Client
    data_dir: Path
    config: Path
    env: dict[str, str]
    agents_port: int
    log: Path


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, LAB_COMMUNES, tmp_path_factory.mktemp("agent-box-lab"))


def _communes(lab: Lab) -> tuple[CommunePlan, CommunePlan]:
    dual = [c for c in lab.plan.communes if len(c.links) == 2 and c.box is not None]
    assert len(dual) >= 2, "the lab has two dual-homed communes with an agent box"
    return dual[0], dual[1]


def _write_config(lab: Lab, work: Path) -> tuple[Path, dict[str, str]]:
    data = yaml.safe_load(lab.paths.config_file.read_text("utf-8"))
    data["intervals"] = {"icmp_s": 3, "icmp_echoes": 5, "snmp_s": 5, "http_s": 5}
    data["agents"] = {"interval_s": AGENT_S, "echoes": 3}
    for commune in data["communes"]:
        code = str(commune["code"]).zfill(5)
        commune["contacts"] = [{"level": 1, "name": "UBND xã", "email": f"ubnd-{code}@xa.test"}]
    path = work / "netwatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path, {**_env(lab.paths.env_file), "NETWATCH_DATABASE_URL": ""}


@contextmanager
def _centre(lab: Lab, work: Path) -> Iterator[Centre]:
    config, env = _write_config(lab, work)
    data_dir = work / "data"
    port, agents_port = reserved_port(), reserved_port()
    centre_address = _communes(lab)[0].box.centre_address  # type: ignore[union-attr]
    argv = netwatch(
        "run", "--config", str(config), "--listen", f"127.0.0.1:{port}",
        "--data-dir", str(data_dir), "--probe-workers", "1", "--snmp-workers", "1",
        "--web-workers", "1", "--agent-listen", f"{centre_address}:{agents_port}",
    )  # fmt: skip
    log = work / "centre.log"
    seen: set[int] = set()
    with spawned(argv, log, env) as proc:
        try:
            base = f"http://127.0.0.1:{port}"

            def serving() -> bool:
                assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
                seen.update(descendants(proc.pid))
                return get(base, "/healthz")[0] == 200

            wait_until(serving, 90, 0.5, "the centre serving")
            client = Client(base, _token(data_dir))
            yield Centre(client, data_dir, config, env, agents_port, log)
        finally:
            seen.update(descendants(proc.pid))
            proc.terminate()
            try:
                proc.wait(30)
            finally:
                kill_all(seen)


@contextmanager
def _agent(lab: Lab, centre: Centre, commune: CommunePlan, work: Path) -> Iterator[Path]:
    """`netwatch agent` in the commune's box namespace, keyed by the CLI; yields its folder."""
    assert commune.box is not None
    code = f"{commune.code:05d}"
    secret = subprocess.run(
        netwatch("agent-key", "add", code, "--config", str(centre.config),
                 "--data-dir", str(centre.data_dir)),
        capture_output=True, text=True, check=True, env={**os.environ, **centre.env},
    ).stdout.strip()  # fmt: skip
    box = work / f"box-{code}"
    box.mkdir()
    (box / "secret").write_text(secret + "\n")
    address = commune.box.centre_address
    (box / "agent.toml").write_text(
        f'commune = "{code}"\nagent = "{code}-agent"\nsecret_file = "secret"\n'
        f'centre = ["nats-leaf://{address}:{centre.agents_port}"]\ndata_dir = "data"\n'
    )
    argv = ["ip", "netns", "exec", commune.box.namespace,
            *netwatch("agent", "--config", str(box / "agent.toml"))]  # fmt: skip
    with spawned(argv, box / "agent.log", lab.child_env()):
        yield box


def _stream_seqs(centre: Centre, code: str) -> list[int]:
    """The seqs of the commune's rounds in the centre's stream AGENTS, in stream order."""

    async def read() -> list[int]:
        [ports] = centre.data_dir.glob("nats/nats-server_*.ports")
        url = json.loads(ports.read_text())["nats"][0]
        token = (centre.data_dir / "nats" / "token").read_text().strip()
        nc = await nats.connect(url, user="netwatch", password=token, allow_reconnect=False)
        try:
            js = nc.jetstream()
            info = await js.stream_info("AGENTS")
            seqs = []
            if info.state.messages:
                for n in range(info.state.first_seq, info.state.last_seq + 1):
                    msg = await js.get_msg("AGENTS", n)
                    if msg.subject == f"nw.agent.v1.{code}.obs" and msg.data:
                        seqs.append(decode_round(msg.data).seq)
            return seqs
        finally:
            await nc.close()

    return asyncio.run(read())


def _measured(box: Path) -> int:
    """The last seq the agent has measured (its state file)."""
    try:
        state = json.loads((box / "data" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    return int(state["next_seq"]) - 1


def _tickets(centre: Centre) -> list[dict[str, Any]]:
    status, body = centre.client.get("/api/v1/tickets?limit=1000")
    assert status == 200, body
    return list(json.loads(body))


def _detail(centre: Centre, ticket_id: str) -> dict[str, Any]:
    status, body = centre.client.get(f"/api/v1/tickets/{ticket_id}")
    assert status == 200, body
    return dict(json.loads(body))


def _of(tickets: list[dict[str, Any]], commune: CommunePlan) -> list[dict[str, Any]]:
    code = f"{commune.code:05d}"
    return [t for t in tickets if f":{code}" in t["incident_key"]]


def _isp(tickets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [t for t in tickets if "isp" in t["route"]]


def test_a_cut_is_backfilled_to_the_isp_and_a_power_loss_stays_with_the_site(
    lab: Lab, tmp_path: Path
) -> None:
    cut, dark = _communes(lab)
    cut_code = f"{cut.code:05d}"
    with ExitStack() as stack:
        centre = stack.enter_context(_centre(lab, tmp_path))
        cut_box = stack.enter_context(_agent(lab, centre, cut, tmp_path))
        stack.enter_context(_agent(lab, centre, dark, tmp_path))
        stack.callback(lab.restore)
        wait_until(
            lambda: len(_stream_seqs(centre, cut_code)) >= 2, 90, 1.0, "the agent's rounds home"
        )

        # The commune page, served by a web worker, shows what the box measured from inside.
        def page() -> str | None:
            status, html = centre.client.get(f"/status/xa/{cut_code}")
            return html if status == 200 and "Số liệu do thiết bị đo đặt tại" in html else None

        html = wait_until(page, 60, 1.0, "the commune page seen from the commune")
        assert "Nhìn từ trung tâm xã" in html
        assert "Mạng nội bộ của xã: bộ định tuyến phản hồi bình thường." in html

        # Both lines of the first commune cut: the box measures on, alone.
        lab.commune_down(cut.code)
        before = _measured(cut_box)
        wait_until(
            lambda: any(t["kind"] == "site_unreachable" for t in _of(_tickets(centre), cut)),
            60, 1.0, "the site ticket of the cut commune",
        )  # fmt: skip
        wait_until(
            lambda: _measured(cut_box) >= before + CUT_ROUNDS,
            CUT_ROUNDS * AGENT_S * 3, 1.0, "the cut's rounds measured",
        )  # fmt: skip
        assert _isp(_of(_tickets(centre), cut)) == []  # nothing proves the ISP's fault yet
        lab.commune_restore(cut.code)
        measured = _measured(cut_box)

        def home() -> list[int] | None:
            seqs = _stream_seqs(centre, cut_code)
            return seqs if seqs and seqs[-1] >= measured else None

        seqs: list[int] = wait_until(home, 120, 1.0, "the buffer home")
        assert seqs == list(range(seqs[0], seqs[-1] + 1)), seqs  # once, in order, none lost
        assert seqs[0] == 1

        # The backfill proved the LAN up while the lines were down: each line's ISP is told,
        # with the inside rounds that prove it.
        def isp_tickets() -> list[dict[str, Any]] | None:
            found = _isp(_of(_tickets(centre), cut))
            return found if len(found) == len(cut.links) else None

        isp = wait_until(isp_tickets, 60, 1.0, "the ISPs' tickets from the backfill")
        assert {t["kind"] for t in isp} == {"link_fault"}
        for ticket in isp:
            inside = _detail(centre, ticket["id"])["evidence"]["inside_paths"]
            assert inside, ticket
            assert any(p["backfilled"] and not p["answered"] and p["lan_up"] for p in inside)

        # The second commune loses power: its site's ticket, never an ISP's.
        lab.commune_power_loss(dark.code)
        wait_until(
            lambda: any(t["kind"] == "site_unreachable" for t in _of(_tickets(centre), dark)),
            60, 1.0, "the site ticket of the dark commune",
        )  # fmt: skip
        [site] = [t for t in _of(_tickets(centre), dark) if t["kind"] == "site_unreachable"]
        assert site["route"] == "provincial_it_and_commune"
        time.sleep(3 * AGENT_S)  # dark a while longer: still nobody blames the ISP
        assert _isp(_of(_tickets(centre), dark)) == []
        lab.commune_restore(dark.code)
        dark_code = f"{dark.code:05d}"
        back = len(_stream_seqs(centre, dark_code))
        wait_until(lambda: len(_stream_seqs(centre, dark_code)) > back + 1, 90, 1.0, "the box back")
        assert _isp(_of(_tickets(centre), dark)) == []
