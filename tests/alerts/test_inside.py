"""Root cause with the view from inside the commune (issue 11): each rule of alerts/inside.py on
its own (docs/alerting.md, "The view from inside"), then through the ticket book."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from alerts.maintenance import (
    MaintenanceScope,
    MaintenanceWindow,
    OneOff,
    ScopeKind,
    incident_window,
)
from alerts.model import (
    Incident,
    IncidentKind,
    InsidePath,
    InsidePortal,
    InsideView,
    LinkInfo,
    LinkState,
    PortalState,
    Route,
    SiteView,
    Status,
    Topology,
    UpstreamInfo,
)
from alerts.rootcause import decide
from alerts.subject import SubjectKey
from alerts.tickets import (
    AutoResolve,
    Contact,
    Directory,
    EventKind,
    OpenTicket,
    TicketBook,
    TicketPolicy,
)

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
C = "24848"  # a commune with an agent and two paths
TSLCD, INET = f"{C}/vnpt-tslcd", f"{C}/viettel-inet"
OTHER = "24849"  # a second commune with an agent
O1, O2 = f"{OTHER}/vnpt-tslcd", f"{OTHER}/viettel-inet"
PLAIN = "24900/vnpt"  # a commune without an agent


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def topology() -> Topology:
    def info(key: str, isp: str, **kw: bool) -> LinkInfo:
        code = key.split("/")[0]
        return LinkInfo(key, "68", code, f"Xã {code}", isp, f"CIR-{key}", "pop-1", **kw)

    links = {
        TSLCD: info(TSLCD, "vnpt"),
        INET: info(INET, "viettel"),
        O1: info(O1, "vnpt"),
        O2: info(O2, "viettel"),
        PLAIN: info(PLAIN, "vnpt"),
    }
    return Topology(links=links, upstreams={"pop-1": UpstreamInfo("pop-1", "vnpt", "POP", True)})


def ls(key: str, state: LinkState, since: float = 0, detail: str = "") -> Status[LinkState]:
    return Status(key, state, at(since), detail, at(100), state)


def ps(subject: str, state: PortalState, since: float = 0, detail: str = "") -> Status[PortalState]:
    return Status(subject, state, at(since), detail, at(100), state)


def all_ok() -> dict[str, Status[LinkState]]:
    return {k: ls(k, LinkState.OK) for k in topology().links}


def site(commune: str = C, heard: float | None = 0, paths: tuple[InsidePath, ...] = ()) -> SiteView:
    links = tuple(k for k in topology().links if k.startswith(commune))
    return SiteView(commune, links, at(heard) if heard is not None else None, paths)


def view(now: float, *sites: SiteView, **kw: object) -> InsideView:
    return InsideView(at=at(now), sites={s.commune: s for s in sites}, **kw)  # type: ignore[arg-type]


def sample(
    link: str, s: float, *, lan: bool | None = True, answered: bool = False, late: float = 0
) -> InsidePath:
    return InsidePath(
        link=link,
        at=at(s),
        lan_up=lan,
        answered=answered,
        loss_ratio=0.0 if answered else 1.0,
        rtt_median_s=0.012 if answered else None,
        backfilled=late > 0,
        received_at=at(s + late) if late else at(s),
    )


def kinds(incidents: tuple[Incident, ...]) -> list[tuple[IncidentKind, str]]:
    return [(i.kind, i.key.encoded) for i in incidents]


def both_down(
    since: float = 10, detail: str = "router_unreachable"
) -> dict[str, Status[LinkState]]:
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, since, detail)
    links[INET] = ls(INET, LinkState.DOWN, since + 2, detail)
    return links


# --- rule 5: site unreachable ----------------------------------------------------------------


def test_every_path_down_and_the_agent_silent_is_one_site_incident_and_no_isp_ticket() -> None:
    incidents = decide(topology(), both_down(), {}, {}, inside=view(40, site(heard=5)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]
    (site_incident,) = incidents
    assert site_incident.route is Route.PROVINCIAL_IT_AND_COMMUNE
    assert site_incident.isp is None
    assert site_incident.since == at(12)  # dark from when the last path went down
    assert site_incident.links == (INET, TSLCD)


def test_the_same_outage_without_the_inside_view_is_two_isp_tickets_as_before() -> None:
    incidents = decide(topology(), both_down(), {}, {})
    assert kinds(incidents) == [
        (IncidentKind.LINK_FAULT, f"link:{INET}"),
        (IncidentKind.LINK_FAULT, f"link:{TSLCD}"),
    ]
    # An agent never heard since NetWatch started changes nothing either.
    assert decide(topology(), both_down(), {}, {}, inside=view(40, site(heard=None))) == incidents


def test_an_agent_heard_again_is_judged_by_its_live_rounds_not_by_its_word_alone() -> None:
    # Power back: the box speaks (over a line the centre has not confirmed back yet) before
    # any round: still the site's incident, never two ISP tickets.
    incidents = decide(topology(), both_down(), {}, {}, inside=view(60, site(heard=40)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]
    # Its rounds since: path 2 answers (back), path 1 does not with the LAN up (the ISP's).
    live = (sample(TSLCD, 45), sample(INET, 45, answered=True))
    incidents = decide(topology(), both_down(), {}, {}, inside=view(60, site(heard=50, paths=live)))
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    # A heartbeat already on its way at the cut (within the grace) is no word since.
    incidents = decide(topology(), both_down(), {}, {}, inside=view(60, site(heard=20)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]


def test_a_site_back_from_a_power_cut_is_not_blamed_on_the_line_confirmed_last() -> None:
    # Power back: INET is confirmed up first (at 50); TSLCD, down since 10, is still DOWN from
    # the centre for a few rounds. The box speaks again but has not measured TSLCD yet.
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, 10, "router_unreachable")
    links[INET] = ls(INET, LinkState.OK, 50)
    assert decide(topology(), links, {}, {}, inside=view(60, site(heard=55))) == ()
    # Its path answers from inside: back, the centre catches up (no incident).
    up = (sample(TSLCD, 58, answered=True),)
    assert decide(topology(), links, {}, {}, inside=view(62, site(heard=58, paths=up))) == ()
    # Its path does not answer with the LAN up: the ISP's line after all.
    cut = (sample(TSLCD, 58),)
    incidents = decide(topology(), links, {}, {}, inside=view(62, site(heard=58, paths=cut)))
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    # The box silent on that path for longer than silent_after_s: the centre's view decides.
    incidents = decide(topology(), links, {}, {}, inside=view(141, site(heard=130)))
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    # Without the inside view, as before: the ISP's at once.
    incidents = decide(topology(), links, {}, {})
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]


def test_a_router_that_says_its_wan_port_is_down_is_powered_so_its_lines_are_the_isps() -> None:
    links = both_down(detail="interface_down")
    incidents = decide(topology(), links, {}, {}, inside=view(40, site(heard=5)))
    assert {i.kind for i in incidents} == {IncidentKind.LINK_FAULT}


def test_one_path_down_is_never_a_site_incident() -> None:
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, 10)
    incidents = decide(topology(), links, {}, {}, inside=view(40, site(heard=5)))
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]


# --- rule 6: backfill --------------------------------------------------------------------------


def test_backfill_showing_the_lan_up_turns_the_site_outage_into_the_isps_ticket() -> None:
    # Path 1 came back (the backfill travelled over it); the agent's buffer says that while
    # both paths were down its router answered on the LAN: a line cut, not a power loss.
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.OK, 600)
    proof = tuple(sample(TSLCD, s, late=600 - s) for s in (30, 60, 90))
    inside = view(620, site(heard=605, paths=proof))
    incidents = decide(topology(), links, {}, {}, inside=inside)
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    (fault,) = incidents
    assert fault.route is Route.ISP
    assert fault.isp == "vnpt"
    assert fault.since == at(30)
    assert fault.measured is not None
    assert fault.measured.inside_paths == proof  # the inside pings with their times


def test_a_past_outage_proven_by_backfill_is_held_then_let_go() -> None:
    links = all_ok()
    proof = (sample(TSLCD, 30, late=570),)
    held = decide(topology(), links, {}, {}, inside=view(700, site(heard=690, paths=proof)))
    assert kinds(held) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    gone = decide(topology(), links, {}, {}, inside=view(800, site(heard=790, paths=proof)))
    assert gone == ()


def test_backfill_showing_the_lan_down_too_proves_nothing_power_it_was() -> None:
    links = both_down()
    no_lan = tuple(sample(k, 30, lan=False, late=600) for k in (TSLCD, INET))
    incidents = decide(topology(), links, {}, {}, inside=view(40, site(heard=5, paths=no_lan)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]
    links = all_ok()
    incidents = decide(topology(), links, {}, {}, inside=view(640, site(heard=630, paths=no_lan)))
    assert incidents == ()


def test_while_still_dark_a_proven_path_leaves_the_site_incident_for_its_isp() -> None:
    proof = (sample(INET, 30, late=40),)  # arrived while NetWatch itself was away, say
    incidents = decide(topology(), both_down(), {}, {}, inside=view(80, site(heard=5, paths=proof)))
    assert kinds(incidents) == [
        (IncidentKind.SITE_UNREACHABLE, "site:24848"),
        (IncidentKind.LINK_FAULT, f"link:{INET}"),
    ]


# --- rule 7: inside evidence of one path down --------------------------------------------------


def test_one_path_down_carries_what_the_agent_reported_over_the_other() -> None:
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, 10)
    live = (
        sample(TSLCD, 5, answered=True),  # before the outage: not evidence of it
        sample(TSLCD, 15),
        sample(TSLCD, 45),
        sample(INET, 15, answered=True),
    )
    incidents = decide(topology(), links, {}, {}, inside=view(50, site(heard=48, paths=live)))
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    (fault,) = incidents
    assert fault.route is Route.ISP
    assert fault.measured is not None
    assert [(p.link, p.at, p.lan_up, p.answered) for p in fault.measured.inside_paths] == [
        (TSLCD, at(15), True, False),
        (TSLCD, at(45), True, False),
    ]


# --- rule 8: the portal per path ---------------------------------------------------------------


def slow_over(link: str, state: PortalState = PortalState.SLOW) -> dict[str, Status[PortalState]]:
    portals = {"dvcqg@central": ps("dvcqg@central", PortalState.OK)}
    for other in (TSLCD, INET, O1, O2):
        subject = f"dvcqg@agent:{other}"
        portals[subject] = ps(subject, state if other == link else PortalState.OK, 20)
    return portals


TIMING = InsidePortal("dvcqg", TSLCD, at(30), True, 8.4, None, 0.02, 0.05, 0.1, 8.2)


def test_portal_slow_over_one_path_of_one_commune_is_that_paths_isp() -> None:
    inside = view(
        40,
        SiteView(C, (INET, TSLCD), at(35), (), (TIMING,)),
        site(OTHER, heard=35),
        utilization={TSLCD: 0.30},
        capacity_ratio={TSLCD: 0.85},
    )
    incidents = decide(topology(), all_ok(), {}, slow_over(TSLCD), inside=inside)
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    (fault,) = incidents
    assert (fault.route, fault.isp, fault.state) == (Route.ISP, "vnpt", "slow")
    assert fault.detail == "portal:dvcqg"
    assert fault.measured is not None
    assert fault.measured.inside_portals == (TIMING,)  # the inside timings


def test_portal_slow_over_a_full_line_is_capacity_for_provincial_it() -> None:
    inside = view(
        40,
        SiteView(C, (INET, TSLCD), at(35), (), (TIMING,)),
        utilization={TSLCD: 0.93},
        capacity_ratio={TSLCD: 0.85},
    )
    incidents = decide(topology(), all_ok(), {}, slow_over(TSLCD), inside=inside)
    assert kinds(incidents) == [(IncidentKind.CAPACITY, f"link:{TSLCD}")]
    assert incidents[0].route is Route.PROVINCIAL_IT
    assert incidents[0].measured is not None
    assert incidents[0].measured.utilization_ratio == 0.93


def test_portal_slow_from_half_the_agents_is_one_portal_outage_and_no_path_incident() -> None:
    portals = slow_over(TSLCD)
    portals[f"dvcqg@agent:{O2}"] = ps(f"dvcqg@agent:{O2}", PortalState.SLOW, 20)
    portals["dvcqg@central"] = ps("dvcqg@central", PortalState.SLOW, 20)
    inside = view(40, site(C, heard=35), site(OTHER, heard=35))
    incidents = decide(topology(), all_ok(), {}, portals, inside=inside)
    assert kinds(incidents) == [(IncidentKind.PORTAL_OUTAGE, "portal:dvcqg")]
    assert incidents[0].route is Route.PROVINCIAL_IT


def test_an_agents_two_paths_count_as_one_vantage_point() -> None:
    # Both paths of one commune slow, the centre and the other commune fine: 1 of 3 vantage
    # points, no portal outage (counted per path it would be 2 of 5, and with one more...).
    portals = slow_over(TSLCD)
    portals[f"dvcqg@agent:{INET}"] = ps(f"dvcqg@agent:{INET}", PortalState.SLOW, 20)
    inside = view(40, site(C, heard=35), site(OTHER, heard=35))
    incidents = decide(topology(), all_ok(), {}, portals, inside=inside)
    assert kinds(incidents) == [
        (IncidentKind.LINK_FAULT, f"link:{INET}"),
        (IncidentKind.LINK_FAULT, f"link:{TSLCD}"),
    ]
    # A second commune slow too: 2 of 3 vantage points, one portal outage.
    portals[f"dvcqg@agent:{O1}"] = ps(f"dvcqg@agent:{O1}", PortalState.FAILING, 20, "tls")
    incidents = decide(topology(), all_ok(), {}, portals, inside=inside)
    assert kinds(incidents) == [(IncidentKind.PORTAL_OUTAGE, "portal:dvcqg")]


def test_a_line_already_down_keeps_its_own_incident_with_the_timings_added() -> None:
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.LOSSY, 10)
    inside = view(40, SiteView(C, (INET, TSLCD), at(35), (), (TIMING,)))
    incidents = decide(topology(), links, {}, slow_over(TSLCD), inside=inside)
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    assert incidents[0].state == "lossy"
    assert incidents[0].measured is not None
    assert incidents[0].measured.inside_portals == (TIMING,)


# --- rule 9: agent health ---------------------------------------------------------------------


def test_a_silent_agent_whose_lines_answer_is_an_agent_ticket_for_provincial_it() -> None:
    incidents = decide(topology(), all_ok(), {}, {}, inside=view(200, site(heard=100)))
    assert kinds(incidents) == [(IncidentKind.AGENT_HEALTH, "agent:24848")]
    assert incidents[0].route is Route.PROVINCIAL_IT
    assert incidents[0].isp is None
    # Not yet silent long enough: nothing.
    assert decide(topology(), all_ok(), {}, {}, inside=view(150, site(heard=100))) == ()


def test_a_silent_agent_behind_dark_lines_is_the_site_not_the_agent() -> None:
    incidents = decide(topology(), both_down(), {}, {}, inside=view(400, site(heard=5)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]


# --- through the ticket book: who is told -----------------------------------------------------

IT = Contact(1, "Sở KH&CN", email="it@tinh.gov.vn")
COMMUNE = Contact(1, "Chủ tịch UBND xã", email="xa@tinh.gov.vn")
VNPT = Contact(1, "VNPT NOC", isp="vnpt", email="noc@vnpt.vn")
VIETTEL = Contact(1, "Viettel NOC", isp="viettel", email="noc@viettel.vn")
DIRECTORY = Directory(
    isps={"vnpt": (VNPT,), "viettel": (VIETTEL,)},
    provincial_it=(IT,),
    communes={C: (COMMUNE,)},
)


def test_power_loss_tells_provincial_it_and_the_commune_and_no_isp() -> None:
    book = TicketBook(TicketPolicy(), DIRECTORY)
    incidents = decide(topology(), both_down(), {}, {}, inside=view(40, site(heard=5)))
    step = book.evaluate(incidents, at(40))
    opened = [a for a in step.actions if isinstance(a, OpenTicket)]
    assert len(opened) == 1
    assert opened[0].ticket.key == SubjectKey.site(C)
    assert set(opened[0].recipients) == {IT, COMMUNE}
    assert not any(c.isp for a in step.actions if isinstance(a, OpenTicket) for c in a.recipients)


def test_the_backfilled_line_cut_opens_the_isps_ticket_with_the_inside_evidence() -> None:
    book = TicketBook(TicketPolicy(), DIRECTORY)
    step = book.evaluate(
        decide(topology(), both_down(), {}, {}, inside=view(40, site(heard=5))), at(40)
    )
    links = all_ok()
    proof = tuple(sample(INET, s, late=600 - s) for s in (30, 60))
    inside = view(620, site(heard=610, paths=proof))
    incidents = decide(topology(), links, {}, {}, inside=inside)
    # As netwatch.alerting hands them: what was measured of each incident.
    measured = {i.key: i.measured for i in incidents if i.measured is not None}
    step = step.book.evaluate(incidents, at(620), measurements=measured)
    opened = [a for a in step.actions if isinstance(a, OpenTicket)]
    assert [a.ticket.key for a in opened] == [SubjectKey.link(INET)]  # type: ignore[arg-type]
    assert opened[0].recipients == (VIETTEL,)
    evidence = opened[0].ticket.evidence.first
    assert evidence is not None
    assert evidence.inside_paths == proof


def test_one_commune_alone_against_the_centre_is_its_own_path_not_a_portal_outage() -> None:
    only = {
        "dvcqg@central": ps("dvcqg@central", PortalState.OK),
        f"dvcqg@agent:{TSLCD}": ps(f"dvcqg@agent:{TSLCD}", PortalState.FAILING, 20, "tls"),
    }
    inside = view(40, site(C, heard=35))
    incidents = decide(topology(), all_ok(), {}, only, inside=inside)
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{TSLCD}")]
    assert (incidents[0].state, incidents[0].detail) == ("failing", "portal:dvcqg (tls)")
    # The centre failing too: two vantage points of two, one portal outage.
    only["dvcqg@central"] = ps("dvcqg@central", PortalState.FAILING, 20, "tls")
    incidents = decide(topology(), all_ok(), {}, only, inside=inside)
    assert kinds(incidents) == [(IncidentKind.PORTAL_OUTAGE, "portal:dvcqg")]


def test_a_lone_commune_with_an_agent_behind_an_unpinged_pop_is_a_dark_site_not_the_pop() -> None:
    base = topology()
    lone = {k: v for k, v in base.links.items() if k in (TSLCD, INET)}
    unpinged = Topology(
        links=lone, upstreams={"pop-1": UpstreamInfo("pop-1", "vnpt", "POP", False)}
    )
    links = {k: v for k, v in both_down().items() if k in lone}
    assert kinds(decide(unpinged, links, {}, {})) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")
    ]
    incidents = decide(unpinged, links, {}, {}, inside=view(40, site(heard=5)))
    assert kinds(incidents) == [(IncidentKind.SITE_UNREACHABLE, "site:24848")]
    # Two communes dark behind it at once: the POP, agents or not.
    many = Topology(links=base.links, upstreams=unpinged.upstreams)
    links = {k: ls(k, LinkState.DOWN, 10) for k in base.links}
    inside = view(40, site(heard=5), site(OTHER, heard=5))
    assert kinds(decide(many, links, {}, {}, inside=inside)) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")
    ]


def test_a_maintenance_window_over_the_commune_covers_its_site_and_agent_incidents() -> None:
    window = MaintenanceWindow(
        MaintenanceScope(ScopeKind.COMMUNE, C), OneOff(at(-60), at(3600)), "Cắt điện theo lịch"
    )
    other = MaintenanceWindow(
        MaintenanceScope(ScopeKind.COMMUNE, OTHER), OneOff(at(-60), at(3600)), "Khác"
    )
    dark = decide(topology(), both_down(), {}, {}, inside=view(40, site(heard=5)))
    silent = decide(topology(), all_ok(), {}, {}, inside=view(200, site(heard=100)))
    for (incident,) in (dark, silent):
        assert incident_window(incident, topology(), [window], at(40)) is window
        assert incident_window(incident, topology(), [other], at(40)) is None


def test_a_line_proven_down_live_before_the_site_went_dark_keeps_its_isp_incident() -> None:
    # Path 1 was cut at 10 s; the agent said so over path 2 at 20 s; path 2 went at 40 s.
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, 10)
    links[INET] = ls(INET, LinkState.DOWN, 40)
    live = (sample(TSLCD, 20), sample(INET, 20, answered=True))
    incidents = decide(topology(), links, {}, {}, inside=view(60, site(heard=25, paths=live)))
    assert kinds(incidents) == [
        (IncidentKind.SITE_UNREACHABLE, "site:24848"),
        (IncidentKind.LINK_FAULT, f"link:{TSLCD}"),
    ]
    assert incidents[0].links == (INET, TSLCD)


def test_a_line_ticket_opened_just_before_its_site_went_dark_waits_in_it_not_back() -> None:
    book = TicketBook(TicketPolicy(line_back_s=10, recovery_s=60), DIRECTORY)
    links = all_ok()
    links[TSLCD] = ls(TSLCD, LinkState.DOWN, 10)
    step = book.evaluate(decide(topology(), links, {}, {}, inside=view(30, site(heard=5))), at(30))
    assert [a.ticket.key.encoded for a in step.actions if isinstance(a, OpenTicket)] == [
        f"link:{TSLCD}"
    ]
    dark = decide(topology(), both_down(10), {}, {}, inside=view(40, site(heard=5)))
    book = step.book
    for s in (40, 60, 120, 300):  # long past line-back and recovery: still not back
        step = book.evaluate(dark, at(s))
        book = step.book
        assert not [a for a in step.actions if a.event.kind is EventKind.LINE_BACK]
        assert not [a for a in step.actions if isinstance(a, AutoResolve)]
    line = book.tickets[SubjectKey.link(TSLCD)]  # type: ignore[arg-type]
    assert line.parent == SubjectKey.site(C)
    assert line.status.value == "open"
