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
import email.message
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from pathlib import Path

import pytest

from netwatch.agent.model import AgentHeartbeat, InsideRound, PathPing, Ping
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
    """The lab's inventory with an agent box and the commune's own contact in `codes`."""

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
                "agent": agent(c),
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
    seq: int = 0

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


def agents_of(runtime: Runtime, inventory: Inventory) -> Agents:
    """The feeder, once alerting's loop is known (taken from its next evaluation)."""
    box: dict[str, asyncio.AbstractEventLoop] = {}
    runtime.alerting.before_evaluate.append(
        lambda _now: box.setdefault("loop", asyncio.get_running_loop()) and None
    )
    loop = _wait_for(lambda: box.get("loop"), "alerting's event loop", 20, 0.1)
    return Agents(runtime, loop, inventory)


def isp_mails(twin: Twin) -> list[email.message.Message]:
    return [m for to in ISP_MAILS for m in _mail(twin.box, to)]


def test_power_loss_is_the_sites_and_a_line_cut_proven_by_backfill_the_isps(
    lab: Lab, twin: Twin
) -> None:
    base = _inventory(lab, twin.smtp_port, recovery_min=1)
    dual = [c.code for c in base.communes if len(c.links) == 2]
    assert len(dual) >= 2, dual
    dark, cut = dual[0], dual[1]  # A: power loss; B: both lines cut, LAN up
    inventory = with_agents(base, (dark, cut))
    with _netwatch(lab, [twin], lambda _t: inventory, baseline_s=4) as (runtime,):
        agents = agents_of(runtime, inventory)
        for code in (dark, cut):  # both boxes heard, everything fine
            agents.beat(code)
            agents.round(code, datetime.now(UTC), lan=True, paths_up=True)
        time.sleep(0.5)
        started = datetime.now(UTC)
        assert lab.commune_down(int(dark)).ok
        assert lab.commune_down(int(cut)).ok
        for code in (dark, cut):
            _wait_for(_ticket(twin, f"site:{code}"), f"the site ticket of {code}", 60, 0.3)
        # Dark for a while longer: still one ticket per site, none to an ISP.
        _after_rounds([runtime], 5)
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
        # Dark long enough that the box's first buffered rounds arrive late (> 30 s).
        while datetime.now(UTC) - started < timedelta(seconds=45):
            time.sleep(0.5)
        assert [t.key.encoded for t in _book(twin).tickets if t.key.kind.value != "site"] == []
        assert isp_mails(twin) == []
        # The lines come back. B's box was up all along: its buffer arrives, showing its router
        # answering on the LAN while neither path's far end did. A's box was dark: nothing.
        assert lab.commune_restore(int(dark)).ok
        assert lab.commune_restore(int(cut)).ok
        ended = datetime.now(UTC)
        at = started + timedelta(seconds=2)
        while at < ended:
            agents.round(cut, at, lan=True, paths_up=False)
            at += timedelta(seconds=4)
        for code in (dark, cut):
            agents.beat(code)
            agents.round(code, datetime.now(UTC), lan=True, paths_up=True)
        commune = inventory.commune(cut)
        assert commune is not None
        for link, mail in (("vnpt-tslcd", VNPT_MAIL), ("viettel-internet", VIETTEL_MAIL)):
            assert commune.agent is not None
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
        # A few rounds later: A never became an ISP's ticket.
        _after_rounds([runtime], 5)
        book = _book(twin)
        assert not [t for t in book.tickets if t.key.encoded.startswith(f"link:{dark}/")]
        cut_tickets = {t.id for t in book.tickets if t.key.encoded.startswith(f"link:{cut}/")}
        assert len(cut_tickets) == 2
        assert {str(m["X-NetWatch-Ticket"]) for m in isp_mails(twin)} <= cut_tickets
        sites = [t for t in book.tickets if t.key.kind.value == "site"]
        assert len(sites) == 2


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
        agents = agents_of(runtime, inventory)
        agents.beat(code)
        agents.round(code, datetime.now(UTC), lan=True, paths_up=True)
        assert lab.commune_down(int(code), "vnpt-tslcd").ok
        key = f"link:{code}/vnpt-tslcd"
        # The box keeps reporting over the Viettel line: its VNPT path's far end is silent
        # while the router answers on the LAN.
        deadline = time.monotonic() + 60
        ticket = None
        while ticket is None and time.monotonic() < deadline:
            agents.beat(code)
            agents.round_paths(code, datetime.now(UTC), {"vnpt-tslcd": False})
            ticket = _ticket(twin, key)()
            time.sleep(1.0)
        assert ticket is not None, "no ticket for the cut line"
        assert ticket.route.value == "isp"
        opened = _wait_for(_opened_mail(twin.box, VNPT_MAIL, ticket.id), "VNPT's mail")
        body = opened.get_payload(decode=True)
        assert isinstance(body, bytes)
        assert "đường vnpt-tslcd: router trong mạng nội bộ trả lời, đầu xa không trả lời" in (
            body.decode()
        )
        assert [t.key.encoded for t in _book(twin).tickets] == [key]  # no site ticket
