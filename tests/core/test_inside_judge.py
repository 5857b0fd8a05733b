"""The judge of the view from inside (netwatch/inside/judge.py): agents' rounds and heartbeats
fed through the sinks as the bus feed hands them, the centre's own rounds through the health
monitor, and the tickets the alerting loop opens from both (a real SQLite store)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from alerts.model import (
    IncidentKind,
    InsidePath,
    InsidePortal,
    Measurements,
    PortalRound,
    Route,
)
from alerts.subject import SubjectKey
from alerts.tickets import EventKind, Evidence, Noted, OpenTicket
from netwatch.agent.model import (
    AgentHeartbeat,
    InsideRound,
    PathPing,
    Ping,
    PortalTiming,
)
from netwatch.alerting import Alerting, Notices
from netwatch.health import HealthMonitor
from netwatch.inside.judge import InsideJudge, tell_site_tickets
from netwatch.inside.state import InsideSink, InsideState
from netwatch.inventory import load_inventory
from netwatch.notify.messages import render_email
from netwatch.observations import IcmpObservation
from netwatch.plan import Plan, compile_plan
from netwatch.store import Store, open_store
from netwatch.store.codec import evidence_from_json, evidence_json
from netwatch.web.reach import Reach
from probes.icmp import PingResult

CONFIG = """
isps:
  vnpt:
    name: VNPT Lâm Đồng
    contacts: [{level: 1, name: VNPT NOC, email: noc@vnpt.example}]
  viettel:
    name: Viettel Lâm Đồng
    contacts: [{level: 1, name: Viettel NOC, email: noc@viettel.example}]
provincial_it:
  contacts: [{level: 1, name: Sở KH&CN, email: it@tinh.example}]
portals:
  dvc: {name: Cổng DVC quốc gia, url: "https://dichvucong.lab.netwatch.vn/"}
agents: {interval_s: 20, echoes: 3}
communes:
  - code: 24848
    contacts: [{level: 1, name: Chủ tịch UBND xã, email: ubnd@xa.example}]
    links:
      - {id: vnpt, isp: vnpt, circuit: C1, bandwidth_mbps: 100, path: tslcd, address: 10.90.10.1}
      - {id: vtl, isp: viettel, circuit: C2, bandwidth_mbps: 50, path: internet,
         address: 10.90.10.5}
    agent:
      lan_gateway: 10.90.10.129
      paths:
        - {link: vnpt, source: 10.90.10.130, target: 10.90.10.2}
        - {link: vtl, source: 10.90.10.131, target: 10.90.10.6}
"""
C = "24848"
VNPT, VTL = f"{C}/vnpt", f"{C}/vtl"
T0 = datetime(2026, 12, 6, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


@dataclass
class World:
    health: HealthMonitor
    plan: Plan
    sinks: list[InsideSink]
    judge: InsideJudge
    alerting: Alerting
    store: Store

    def centre_round(self, s: float, *, vnpt: bool, vtl: bool) -> None:
        """One ICMP round of both links from the centre (answered or not)."""
        batch = []
        for target in self.plan.icmp:
            if target.link is None:
                continue
            up = vnpt if target.link.id == VNPT else vtl
            rtt = 0.010 if up else None
            got = 3 if up else 0
            result = PingResult(
                target.address, 3, got, 0.0 if up else 1.0, rtt, rtt, rtt, 0.0,
                (rtt,) * got if rtt else (), None, at(s),
            )  # fmt: skip
            batch.append(IcmpObservation(target, result))
        self.health.observe(batch)

    def beat(self, s: float) -> None:
        beat = AgentHeartbeat(C, f"{C}-agent", "1.0", at(s), "r1", 1, 0, 0, None, 0, s)
        for sink in self.sinks:
            sink.heartbeat(beat, at(s))

    def agent_round(self, seq: int, s: float, received: float, **kw: object) -> None:
        round_ = inside_round(seq, s, **kw)  # type: ignore[arg-type]
        for sink in self.sinks:
            sink.inside_round(round_, at(received))

    async def evaluate(self, s: float) -> list[OpenTicket]:
        actions = await self.alerting.evaluate(at(s))
        return [a for a in actions if isinstance(a, OpenTicket)]


def ping(target: str, answered: bool) -> Ping:
    return Ping(target, 3, 3 if answered else 0, 0.004 if answered else None, None, None)


def inside_round(
    seq: int,
    s: float,
    *,
    lan: bool = True,
    vnpt: bool = True,
    vtl: bool = True,
    portal_s: float | None = None,
) -> InsideRound:
    portals = ()
    if portal_s is not None:
        portals = tuple(
            PortalTiming("dvc", link, True, 0.02, 0.03, 0.05, portal_s - 0.2, portal_s, 200,
                         None, None)
            for link, total in (("vnpt", portal_s), ("vtl", 0.4))
            if total == portal_s
        )  # fmt: skip
        portals += (PortalTiming("dvc", "vtl", True, 0.02, 0.03, 0.05, 0.2, 0.4, 200, None, None),)
    return InsideRound(
        commune=C,
        agent=f"{C}-agent",
        seq=seq,
        at=at(s),
        config_revision="r1",
        gateway=ping("10.90.10.129", lan),
        paths=(
            PathPing("vnpt", ping("10.90.10.2", vnpt)),
            PathPing("vtl", ping("10.90.10.6", vtl)),
        ),
        portals=portals,
        devices=(),
    )


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory = load_inventory(path)
    store = await open_store(None, data_dir=tmp_path)
    health = HealthMonitor(inventory)
    alerting = Alerting(inventory, store, health)
    judge = InsideJudge(health)
    alerting.before_evaluate.append(judge.tick)  # as netwatch.runtime wires it
    tell_site_tickets(judge, alerting)
    sinks: list[InsideSink] = [InsideState(), judge]
    try:
        yield World(health, compile_plan(inventory), sinks, judge, alerting, store)
    finally:
        await store.close()


def kinds(world: World) -> list[tuple[IncidentKind, str]]:
    return [(i.kind, i.key.encoded) for i in world.health.incidents]


def recipients(opened: OpenTicket) -> set[str]:
    return {c.name for c in opened.recipients}


async def power_loss(world: World) -> list[OpenTicket]:
    """Agent and lines fine, then everything dark from 40 s on (a power cut at the commune)."""
    for i, s in enumerate((0, 20)):
        world.beat(s)
        world.agent_round(i + 1, s, s + 0.2)
        world.centre_round(s, vnpt=True, vtl=True)
    world.beat(30)
    for s in (40, 50, 60, 70):
        world.centre_round(s, vnpt=False, vtl=False)
    return await world.evaluate(75)


async def test_power_loss_is_one_site_ticket_for_provincial_it_and_the_commune(
    world: World,
) -> None:
    opened = await power_loss(world)
    assert kinds(world) == [(IncidentKind.SITE_UNREACHABLE, f"site:{C}")]
    assert [o.ticket.key for o in opened] == [SubjectKey.site(C)]
    assert recipients(opened[0]) == {"Sở KH&CN", "Chủ tịch UBND xã"}
    assert opened[0].ticket.route is Route.PROVINCIAL_IT_AND_COMMUNE
    # Still dark minutes later: no ISP ticket, no agent ticket either.
    for s in (80, 100, 200, 300):
        world.centre_round(s, vnpt=False, vtl=False)
    assert await world.evaluate(300) == []
    assert kinds(world) == [(IncidentKind.SITE_UNREACHABLE, f"site:{C}")]
    notice = Notices(world.alerting._inventory, world.health).notice(opened[0])
    mail = render_email(notice)
    assert "Mất liên lạc với cả trung tâm xã (mất điện hoặc mạng nội bộ)" in mail.subject
    assert "Site unreachable (power or LAN)" in mail.subject
    assert notice.commune_code == C
    assert "Xã Lạc Dương" in mail.text
    assert "từ 08:00 06/12/2026 (giờ Việt Nam): mất kết nối." in mail.text


async def test_a_line_cut_proven_by_backfill_becomes_the_isps_tickets(world: World) -> None:
    await power_loss(world)
    # Both lines come back; the agent's buffer arrives: its router answered on the LAN all
    # along while neither path's far end did. A line cut, not a power loss.
    for s in (400, 410, 420, 430, 440, 450):
        world.centre_round(s, vnpt=True, vtl=True)
    world.beat(452)
    for seq, s in enumerate((40, 60, 80, 100), start=3):
        world.agent_round(seq, s, 455, vnpt=False, vtl=False)
    opened = await world.evaluate(456)
    assert sorted(o.ticket.key.encoded for o in opened) == [f"link:{VNPT}", f"link:{VTL}"]
    by_key = {o.ticket.key.encoded: o for o in opened}
    assert recipients(by_key[f"link:{VNPT}"]) == {"VNPT NOC"}
    assert recipients(by_key[f"link:{VTL}"]) == {"Viettel NOC"}
    ticket = by_key[f"link:{VNPT}"].ticket
    assert ticket.evidence.first_bad_at == at(40)
    first = ticket.evidence.first
    assert first is not None
    assert [(p.at, p.lan_up, p.answered, p.backfilled) for p in first.inside_paths] == [
        (at(s), True, False, True) for s in (40, 60, 80, 100)
    ]
    mail = render_email(
        Notices(world.alerting._inventory, world.health).notice(by_key[f"link:{VNPT}"])
    )
    assert "Đo từ bên trong trung tâm xã (thiết bị đo tại xã):" in mail.text
    assert (
        "08:00:40 06/12 — đường vnpt: router trong mạng nội bộ trả lời, đầu xa không trả lời"
        in mail.text
    )
    assert "Measured from inside the commune centre (its agent):" in mail.text
    assert "Tỷ lệ mất gói: 0%" not in mail.text  # the centre's figures of now: not this outage
    # The site's ticket says what it was, to those told of it (provincial IT, the commune).
    await asyncio.sleep(0)  # the note is written by a task of its own
    for _ in range(50):
        site = world.alerting.book.tickets[SubjectKey.site(C)]
        if site.log[-1].kind is EventKind.NOTE:
            break
        await asyncio.sleep(0.01)
    note = site.log[-1]
    assert note.kind is EventKind.NOTE
    assert "mạng nội bộ của xã vẫn hoạt động trong lúc mất liên lạc" in note.text
    assert "đường truyền (vnpt, vtl) bị gián đoạn, không phải do mất điện" in note.text
    assert "the line(s) (vnpt, vtl) were cut, it was not a power loss" in note.text
    noted = Noted(site, note, ())
    mail = render_email(Notices(world.alerting._inventory, world.health).notice(noted))
    assert "NetWatch đã thêm ghi chú." in mail.text
    assert "Ghi chú (NetWatch):" in mail.text


async def test_backfill_of_a_box_without_its_router_proves_nothing(world: World) -> None:
    await power_loss(world)
    for s in (400, 410, 420, 430, 440, 450):
        world.centre_round(s, vnpt=True, vtl=True)
    world.beat(452)
    for seq, s in enumerate((40, 60, 80), start=3):  # the box on a UPS, the router dark
        world.agent_round(seq, s, 455, lan=False, vnpt=False, vtl=False)
    assert await world.evaluate(456) == []
    assert kinds(world) == []


async def test_one_path_down_carries_the_inside_evidence_sent_over_the_other(
    world: World,
) -> None:
    for i, s in enumerate((0, 20, 40, 60, 80)):
        world.beat(s)
        vnpt = s < 30
        world.agent_round(i + 1, s, s + 0.3, vnpt=vnpt)
        world.centre_round(s, vnpt=vnpt, vtl=True)
    opened = await world.evaluate(85)
    assert [o.ticket.key.encoded for o in opened] == [f"link:{VNPT}"]
    assert recipients(opened[0]) == {"VNPT NOC"}
    first = opened[0].ticket.evidence.first
    assert first is not None
    assert [(p.at, p.answered) for p in first.inside_paths] == [
        (at(40), False),
        (at(60), False),
        (at(80), False),
    ]


async def test_a_silent_agent_while_its_lines_answer_is_an_agent_ticket(world: World) -> None:
    world.beat(0)
    for s in range(0, 200, 20):
        world.centre_round(s, vnpt=True, vtl=True)
    opened = await world.evaluate(200)
    assert [o.ticket.key for o in opened] == [SubjectKey.agent(C)]
    assert recipients(opened[0]) == {"Sở KH&CN"}
    # Heard again: the incident is gone at once (the judge pushes its view).
    world.beat(205)
    assert kinds(world) == []


async def test_portal_slow_over_one_path_is_that_paths_isp_with_the_timings(
    world: World,
) -> None:
    for i, s in enumerate((0, 20, 40, 60)):
        world.beat(s)
        world.centre_round(s, vnpt=True, vtl=True)
        world.health.portals.observe(PortalRound("dvc", "central", at(s), True, 0.3))
        world.agent_round(i + 1, s, s + 0.3, portal_s=8.5)
    opened = await world.evaluate(65)
    assert [o.ticket.key.encoded for o in opened] == [f"link:{VNPT}"]
    ticket = opened[0].ticket
    assert (ticket.evidence.kind, ticket.evidence.state) == (IncidentKind.LINK_FAULT, "slow")
    assert recipients(opened[0]) == {"VNPT NOC"}
    first = ticket.evidence.first
    assert first is not None
    assert [(t.link, t.total_s) for t in first.inside_portals] == [(VNPT, 8.5)]


async def test_a_site_ticket_is_its_provinces_and_never_an_isps_and_survives_the_store(
    world: World,
) -> None:
    opened = await power_loss(world)
    ticket = opened[0].ticket
    topology = world.health.topology
    province = int(topology.links[VNPT].province)
    assert Reach.of([province], None).sees_ticket(topology, ticket)
    assert not Reach.of([province + 1], None).sees_ticket(topology, ticket)
    assert not Reach.of(None, "vnpt").sees_ticket(topology, ticket)
    (stored,) = await world.store.list_tickets()
    assert stored.ticket.key == SubjectKey.site(C)
    assert stored.ticket.route is Route.PROVINCIAL_IT_AND_COMMUNE


def test_inside_evidence_survives_the_codec() -> None:
    evidence = Measurements(
        loss_ratio=1.0,
        inside_paths=(
            InsidePath(VNPT, at(40), True, False, 1.0, None, True, at(455)),
            InsidePath(VTL, at(40), None, True, 0.0, 0.004),
        ),
        inside_portals=(
            InsidePortal("dvc", VNPT, at(60), False, 5.0, "tls", 0.02, 0.03, None, None),
        ),
    )
    ticket_evidence = Evidence(
        IncidentKind.LINK_FAULT, "down", "down", "backfill", (VNPT,), at(40), None,
        first=evidence, worst=evidence,
    )  # fmt: skip
    back = evidence_from_json(evidence_json(ticket_evidence))
    assert back.first == evidence
    assert back.worst == evidence


async def test_power_back_before_the_centre_confirms_the_lines_opens_no_isp_ticket(
    world: World,
) -> None:
    await power_loss(world)
    world.centre_round(390, vnpt=False, vtl=False)
    world.beat(400)  # the box is back, over a line the centre has not confirmed back yet
    assert await world.evaluate(401) == []
    assert kinds(world) == [(IncidentKind.SITE_UNREACHABLE, f"site:{C}")]
    world.agent_round(3, 402, 402.3)  # its first round: both paths answer
    assert await world.evaluate(403) == []
    assert kinds(world) == []
