"""Issue 11 on the lab: a commune that goes dark is one "site unreachable" ticket for provincial
IT and the commune, never an ISP's; the agent's backfill later turns a line cut into the ISPs'
tickets with the inside evidence.

NetWatch runs on the lab (real namespaces, real pings, real SMTP); the lab's lines are cut with
`commune_down` (every link of the commune: helper B's power-loss fault stands in until it lands).
The agents' rounds and heartbeats are fed through `runtime.inside_sinks` on NetWatch's own event
loop, as the bus feed hands them: commune A's box is dark with its router (power loss: it sends
nothing, not even backfill), commune B's box and router stay up while both its lines are cut
(its buffer arrives once a line is back).
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.message
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from netwatch.agent import wire
from netwatch.agent.model import AgentHeartbeat, InsideRound, PathPing, Ping
from netwatch.inside.config import agent_config
from netwatch.inventory import Inventory
from netwatch.inventory.models import Commune, CommuneAgent, Contact
from netwatch.lab import Lab
from netwatch.runtime import Runtime
from tests.integration.scenarios import (
    ISP_MAILS,
    IT_MAIL,
    VIETTEL_MAIL,
    VNPT_MAIL,
    Twin,
    _after_rounds,
    _book,
    _event_mail,
    _inventory,
    _mail,
    _netwatch,
    _opened_mail,
    _ticket,
    _wait_for,
)
from tests.lab.fixtures import built_lab, restored
from tests.servers import reserved_port

pytestmark = [pytest.mark.privileged, pytest.mark.lab, pytest.mark.timeout(300)]

LAB_INDEX = 23  # 10.111.0.0/16, namespaces nwl23-*
LAB_COMMUNES = 4  # communes 0 and 2 are dual-homed (VNPT TSLCD + Viettel internet)


@pytest.fixture(scope="module")
def judge_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, LAB_COMMUNES, tmp_path_factory.mktemp("judge-lab"))


@pytest.fixture
def lab(judge_lab: Lab) -> Iterator[Lab]:
    """The module's lab with every fault undone after the test (also when it fails)."""
    yield from restored(judge_lab)


@pytest.fixture
def twin(tmp_path: Path) -> Iterator[Twin]:
    one = Twin("sqlite", tmp_path / "sqlite", None, reserved_port())
    one.data_dir.mkdir()
    one.smtp_up()
    try:
        yield one
    finally:
        one.smtp_down()


def commune_mail(code: str) -> str:
    return f"ubnd-{code}@commune.test"


def with_agents(inventory: Inventory, codes: tuple[str, ...]) -> Inventory:
    """The lab's inventory with the commune's own contact (and an agent box, the lab's own)
    in `codes`."""

    def agent(commune: Commune) -> CommuneAgent:
        n = int(commune.code) % 200
        return CommuneAgent.model_validate(
            {
                "lan_gateway": f"10.111.250.{n}",
                "paths": [
                    {"link": link.id, "source": f"10.111.251.{n + i}", "target": str(link.address)}
                    for i, link in enumerate(commune.links)
                ],
            }
        )

    communes = tuple(
        c.model_copy(
            update={
                "agent": c.agent or agent(c),  # the lab's own box when the lab has one
                "contacts": (Contact(level=1, name="UBND xã", email=commune_mail(c.code)),),
            }
        )
        if c.code in codes
        else c
        for c in inventory.communes
    )
    return inventory.model_copy(update={"communes": communes})


@dataclass
class Agents:
    """Feeds agents' messages into the running NetWatch, on its own event loop."""

    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    inventory: Inventory
    lab: Lab
    seq: int = 0

    def measure(self, code: str) -> InsideRound:
        """One real round measured inside the commune's agent box (the lab's namespace), with
        the configuration the centre would send it (5 s rounds, 3 echoes)."""
        plan = self.lab.plan.commune(int(code))
        assert plan is not None
        assert plan.box is not None
        config = dataclasses.replace(agent_config(self.inventory, code), interval_s=5.0, echoes=3)
        proc = subprocess.run(
            ["ip", "netns", "exec", plan.box.namespace, sys.executable, "-m",
             "netwatch.agent.measure"],
            input=wire.encode_config(config),
            capture_output=True,
            env=self.lab.child_env(),
            timeout=30,
            check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr.decode()
        self.seq += 1
        return dataclasses.replace(wire.decode_round(proc.stdout), seq=self.seq)

    def feed(self, round_: InsideRound) -> None:
        """Hand a round to the sinks as the bus feed would, received now."""
        received = datetime.now(UTC)
        self._on_loop(lambda: [s.inside_round(round_, received) for s in self.runtime.inside_sinks])

    def _on_loop(self, work: Callable[[], None]) -> None:
        async def call() -> None:
            work()

        asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def beat(self, code: str) -> None:
        now = datetime.now(UTC)
        beat = AgentHeartbeat(code, f"{code}-agent", "lab", now, "r", self.seq, 0, 0, None, 0, 1.0)
        self._on_loop(lambda: [s.heartbeat(beat, now) for s in self.runtime.inside_sinks])

    def round(self, code: str, at: datetime, *, lan: bool, paths_up: bool) -> None:
        commune = self.inventory.commune(code)
        assert commune is not None
        assert commune.agent is not None
        self.round_paths(code, at, {p.link: paths_up for p in commune.agent.paths}, lan=lan)

    def round_paths(
        self, code: str, at: datetime, up: dict[str, bool], *, lan: bool = True
    ) -> None:
        """One round: the LAN gateway's answer, and each path's (missing ones answer)."""
        commune = self.inventory.commune(code)
        assert commune is not None
        assert commune.agent is not None
        self.seq += 1

        def ping(target: str, up: bool) -> Ping:
            return Ping(target, 3, 3 if up else 0, 0.004 if up else None, None, None)

        round_ = InsideRound(
            commune=code,
            agent=f"{code}-agent",
            seq=self.seq,
            at=at,
            config_revision="r",
            gateway=ping(str(commune.agent.lan_gateway), lan),
            paths=tuple(
                PathPing(p.link, ping(str(p.target), up.get(p.link, True)))
                for p in commune.agent.paths
            ),
            portals=(),
            devices=(),
        )
        received = datetime.now(UTC)
        self._on_loop(lambda: [s.inside_round(round_, received) for s in self.runtime.inside_sinks])


def agents_of(runtime: Runtime, inventory: Inventory, lab: Lab) -> Agents:
    """The feeder, once alerting's loop is known (taken from its next evaluation)."""
    box: dict[str, asyncio.AbstractEventLoop] = {}
    runtime.alerting.before_evaluate.append(
        lambda _now: box.setdefault("loop", asyncio.get_running_loop()) and None
    )
    loop = _wait_for(lambda: box.get("loop"), "alerting's event loop", 20, 0.1)
    return Agents(runtime, loop, inventory, lab)


def isp_mails(twin: Twin) -> list[email.message.Message]:
    return [m for to in ISP_MAILS for m in _mail(twin.box, to)]


def test_power_loss_is_the_sites_and_a_line_cut_proven_by_backfill_the_isps(
    lab: Lab, twin: Twin
) -> None:
    base = _inventory(lab, twin.smtp_port, recovery_min=1)
    dual = [c.code for c in base.communes if len(c.links) == 2]
    assert len(dual) >= 2, dual
    dark, cut = dual[0], dual[1]  # A: power loss; B: both lines cut, its box and LAN up
    inventory = with_agents(base, (dark, cut))
    with _netwatch(lab, [twin], lambda _t: inventory, baseline_s=4) as (runtime,):
        agents = agents_of(runtime, inventory, lab)
        for code in (dark, cut):  # both boxes heard, their real rounds fine
            agents.beat(code)
            fine = agents.measure(code)
            assert fine.lan_up
            assert all(p.ping.answered for p in fine.paths)
            agents.feed(fine)
        started = datetime.now(UTC)
        assert lab.commune_power_loss(int(dark)).ok
        assert lab.commune_down(int(cut)).ok
        # B's box goes on measuring: its rounds wait in its buffer (not fed) until a line is
        # back. A's box is frozen with its router.
        buffered: list[InsideRound] = []
        while datetime.now(UTC) - started < timedelta(seconds=45):
            buffered.append(agents.measure(cut))
        for code in (dark, cut):
            _wait_for(_ticket(twin, f"site:{code}"), f"the site ticket of {code}", 30, 0.3)
        book = _book(twin)
        assert sorted(t.key.encoded for t in book.tickets) == sorted(
            [f"site:{dark}", f"site:{cut}"]
        )
        for ticket in book.tickets:
            assert ticket.route.value == "provincial_it_and_commune"
            assert ticket.isp is None
            code = ticket.key.name
            it = _wait_for(_opened_mail(twin.box, IT_MAIL, ticket.id), "provincial IT's mail")
            own = _wait_for(_opened_mail(twin.box, commune_mail(code), ticket.id), "the commune's")
            subject = str(make_header(decode_header(str(it["Subject"]))))
            assert "Mất liên lạc với cả trung tâm xã (mất điện hoặc mạng nội bộ)" in subject
            assert own["Subject"] == it["Subject"]
        assert isp_mails(twin) == []
        # What B's box measured while cut: its router answered on the LAN, neither far end.
        assert buffered
        assert all(r.lan_up and not any(p.ping.answered for p in r.paths) for r in buffered)
        # The lines and the power come back. B's buffer arrives, then both boxes speak live.
        assert lab.commune_restore(int(dark)).ok
        assert lab.commune_restore(int(cut)).ok
        for round_ in buffered:
            agents.feed(round_)
        for code in (dark, cut):
            agents.beat(code)
        for link, mail in (("vnpt-tslcd", VNPT_MAIL), ("viettel-internet", VIETTEL_MAIL)):
            ticket = _wait_for(_ticket(twin, f"link:{cut}/{link}"), f"{link}'s ISP ticket", 60, 0.3)
            assert ticket.route.value == "isp"
            first = ticket.evidence.first
            assert first is not None
            # The buffered rounds (and any live ones since the outage began, with their times).
            backfilled = [p for p in first.inside_paths if p.backfilled]
            assert backfilled
            assert all(p.lan_up and not p.answered for p in backfilled)
            opened = _wait_for(_opened_mail(twin.box, mail, ticket.id), f"{link}'s mail")
            body = opened.get_payload(decode=True)
            assert isinstance(body, bytes)
            text = body.decode()
            assert "Đo từ bên trong trung tâm xã (thiết bị đo tại xã):" in text
            assert "router trong mạng nội bộ trả lời, đầu xa không trả lời" in text
        # B's site ticket says what it was, to the commune and provincial IT.
        site_b = next(t for t in _book(twin).tickets if t.key.encoded == f"site:{cut}")
        for to in (commune_mail(cut), IT_MAIL):
            note = _wait_for(_event_mail(twin.box, to, site_b.id, "note"), f"the note to {to}")
            body = note.get_payload(decode=True)
            assert isinstance(body, bytes)
            assert "không phải do mất điện" in body.decode()
        # A's box, back with the power, measures again: its lines answer; A never became an
        # ISP's ticket.
        agents.feed(_wait_for(lambda: _measured_up(agents, dark), "A's box back", 60, 1.0))
        _after_rounds([runtime], 5)
        book = _book(twin)
        assert not [t for t in book.tickets if t.key.encoded.startswith(f"link:{dark}/")]
        cut_tickets = {t.id for t in book.tickets if t.key.encoded.startswith(f"link:{cut}/")}
        assert len(cut_tickets) == 2
        assert {str(m["X-NetWatch-Ticket"]) for m in isp_mails(twin)} <= cut_tickets
        sites = [t for t in book.tickets if t.key.kind.value == "site"]
        assert len(sites) == 2


def _measured_up(agents: Agents, code: str) -> InsideRound | None:
    """A round of the box once its paths answer again (None before)."""
    round_ = agents.measure(code)
    return round_ if round_.lan_up and all(p.ping.answered for p in round_.paths) else None


def test_one_line_cut_is_its_isps_ticket_with_what_the_agent_saw_over_the_other(
    lab: Lab, twin: Twin
) -> None:
    base = _inventory(lab, twin.smtp_port, recovery_min=1)
    code = next(c.code for c in base.communes if len(c.links) == 2)
    inventory = with_agents(base, (code,))
    commune = inventory.commune(code)
    assert commune is not None
    assert commune.agent is not None
    with _netwatch(lab, [twin], lambda _t: inventory, baseline_s=4) as (runtime,):
        agents = agents_of(runtime, inventory, lab)
        agents.beat(code)
        agents.feed(agents.measure(code))
        assert lab.commune_down(int(code), "vnpt-tslcd").ok
        key = f"link:{code}/vnpt-tslcd"
        # The box keeps reporting over the Viettel line: its real rounds show the VNPT path's
        # far end silent while the router answers on the LAN.
        # The centre confirms the cut in seconds, usually before the box's next round: the
        # ticket opens at once and the inside rounds join its evidence as they arrive (the
        # ticket page shows them; the opening mail has those that came before it).
        deadline = time.monotonic() + 60
        ticket = None
        while ticket is None and time.monotonic() < deadline:
            agents.beat(code)
            round_ = agents.measure(code)
            assert round_.lan_up
            assert [p.ping.answered for p in round_.paths] == [False, True]
            agents.feed(round_)
            found = _ticket(twin, key)()
            worst = found.evidence.worst if found is not None else None
            ticket = found if worst is not None and worst.inside_paths else None
        assert ticket is not None, "no ticket for the cut line with the inside evidence"
        assert ticket.route.value == "isp"
        assert ticket.evidence.worst is not None
        seen = [(p.link, p.lan_up, p.answered) for p in ticket.evidence.worst.inside_paths]
        assert (key.removeprefix("link:"), True, False) in seen
        _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "VNPT's mail")
        assert [t.key.encoded for t in _book(twin).tickets] == [key]  # no site ticket


def test_portal_slow_over_one_path_is_its_isps_and_from_everyone_one_portal_incident(
    lab: Lab, twin: Twin
) -> None:
    base = _inventory(lab, twin.smtp_port, recovery_min=1)
    dual = [c.code for c in base.communes if len(c.links) == 2]
    one, other = dual[0], dual[1]
    inventory = with_agents(base, (one, other))
    with _netwatch(lab, [twin], lambda _t: inventory, baseline_s=4) as (runtime,):
        agents = agents_of(runtime, inventory, lab)

        def rounds(count: int) -> list[InsideRound]:
            out = []
            for _ in range(count):
                for code in (one, other):
                    agents.beat(code)
                    round_ = agents.measure(code)
                    agents.feed(round_)
                    out.append(round_)
            return out

        rounds(1)  # every path fine from inside
        # The portal answers the first commune's VNPT path 6 s late (past the 3 s timeout):
        # the centre and the other commune are served as before.
        assert lab.commune_portal_slow(int(one), 6.0, "vnpt-tslcd").ok
        seen = rounds(3)
        slow = [t for r in seen if r.commune == one for t in r.portals if t.link == "vnpt-tslcd"]
        assert slow
        assert not any(t.ok for t in slow)
        key = f"link:{one}/vnpt-tslcd"
        ticket = _wait_for(_ticket(twin, key), "the slow path's ticket", 30, 0.3)
        assert ticket.route.value == "isp"
        assert ticket.evidence.kind.value == "link_fault"
        assert ticket.evidence.state == "failing"
        assert ticket.evidence.detail.startswith("portal:")
        worst = ticket.evidence.worst
        assert worst is not None
        assert worst.inside_portals  # the portal's timings from inside
        _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "VNPT's mail")
        book = _book(twin)
        assert [t.key.encoded for t in book.tickets] == [key]  # no portal incident
        # Now the portal itself is slow for everyone: one portal incident, nobody's line.
        assert lab.commune_restore(int(one)).ok
        assert lab.portal_slow(6.0).ok
        rounds(3)
        portal = _wait_for(
            lambda: next((t for t in _book(twin).tickets if t.key.kind.value == "portal"), None),
            "the portal incident",
            30,
            0.3,
        )
        assert portal.route.value == "provincial_it"
        assert not [t for t in _book(twin).tickets if t.key.encoded.startswith(f"link:{other}/")]
