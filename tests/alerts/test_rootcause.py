"""Root cause before blame: each rule on its own, then fed from evaluators as a timeline."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from alerts.health import LinkEvaluator, NodeEvaluator, PortalEvaluator
from alerts.model import (
    Incident,
    IncidentKind,
    LinkInfo,
    LinkRound,
    LinkState,
    NodeRound,
    NodeState,
    PortalPolicy,
    PortalRound,
    PortalState,
    Route,
    Status,
    Topology,
    UpstreamInfo,
)
from alerts.rootcause import decide
from alerts.subject import SubjectKey

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BEHIND_POP = tuple(f"2484{n}/vnpt-tslcd" for n in range(5))  # five communes behind pop-1
ELSEWHERE = "24900/viettel"
REFS = ("reference:10.0.0.1", "reference:10.0.0.2")


def at(i: int) -> datetime:
    return T0 + timedelta(seconds=10 * i)


def link_info(key: str, isp: str = "vnpt", upstream: str | None = None, **kw: bool) -> LinkInfo:
    code = key.split("/")[0]
    return LinkInfo(key, "68", code, f"Xã {code}", isp, f"CIR-{code}", upstream, **kw)


def topology(pinged: bool = True, references: tuple[str, ...] = REFS) -> Topology:
    links = {k: link_info(k, upstream="pop-1") for k in BEHIND_POP}
    links[ELSEWHERE] = link_info(ELSEWHERE, isp="viettel")
    return Topology(
        links=links,
        upstreams={"pop-1": UpstreamInfo("pop-1", "vnpt", "POP Lạc Dương", pinged)},
        references=references,
    )


def ls(key: str, state: LinkState, i: int = 0, detail: str = "") -> Status[LinkState]:
    return Status(key, state, at(i), detail, at(10), state)


def ns(key: str, state: NodeState, i: int = 0) -> Status[NodeState]:
    return Status(key, state, at(i), "", at(10), state)


def ps(key: str, state: PortalState, i: int = 0, detail: str = "") -> Status[PortalState]:
    return Status(key, state, at(i), detail, at(10), state)


def links_all(state: LinkState, keys: tuple[str, ...] = BEHIND_POP) -> dict[str, Status[LinkState]]:
    return {k: ls(k, state, i) for i, k in enumerate(keys)}


REFS_UP = {r: ns(r, NodeState.UP) for r in REFS}


def kinds(incidents: tuple[Incident, ...]) -> list[tuple[IncidentKind, str]]:
    return [(i.kind, i.key.encoded) for i in incidents]


def test_all_fine_is_no_incident() -> None:
    links = links_all(LinkState.OK, (*BEHIND_POP, ELSEWHERE))
    assert decide(topology(), links, REFS_UP, {}) == ()


def test_pinged_upstream_down_with_five_communes_is_one_incident() -> None:
    links = links_all(LinkState.DOWN)
    nodes = {
        **REFS_UP,
        SubjectKey.upstream("pop-1").encoded: ns("upstream:pop-1", NodeState.DOWN, 2),
    }
    (incident,) = decide(topology(), links, nodes, {})
    assert incident == Incident(
        key=SubjectKey.parse("upstream:pop-1"),
        kind=IncidentKind.UPSTREAM_OUTAGE,
        state="down",
        since=at(2),
        route=Route.ISP,
        isp="vnpt",
        links=BEHIND_POP,
        detail="POP Lạc Dương",
    )


def test_pinged_upstream_up_leaves_its_links_to_their_own_faults() -> None:
    links = links_all(LinkState.DOWN)
    nodes = {**REFS_UP, "upstream:pop-1": ns("upstream:pop-1", NodeState.UP)}
    incidents = decide(topology(), links, nodes, {})
    assert kinds(incidents) == [(IncidentKind.LINK_FAULT, f"link:{k}") for k in BEHIND_POP]
    assert {i.route for i in incidents} == {Route.ISP}


def test_unpinged_upstream_is_down_when_every_link_behind_it_is() -> None:
    links = links_all(LinkState.DOWN)
    (incident,) = decide(topology(pinged=False), links, REFS_UP, {})
    assert (incident.kind, incident.links) == (IncidentKind.UPSTREAM_OUTAGE, BEHIND_POP)
    assert incident.since == at(4)  # the moment the last of them went down


def test_pinged_upstream_not_measured_yet_is_inferred_from_its_links() -> None:
    (incident,) = decide(topology(pinged=True), links_all(LinkState.DOWN), REFS_UP, {})
    assert incident.kind is IncidentKind.UPSTREAM_OUTAGE


def test_unpinged_upstream_with_one_link_not_down_is_not_an_outage() -> None:
    links = links_all(LinkState.DOWN)
    links[BEHIND_POP[0]] = ls(BEHIND_POP[0], LinkState.LOSSY)
    incidents = decide(topology(pinged=False), links, REFS_UP, {})
    assert [i.kind for i in incidents] == [IncidentKind.LINK_FAULT] * 5
    assert incidents[0].state == "lossy"


def test_unpinged_upstream_with_an_unmeasured_link_is_not_an_outage() -> None:
    links = links_all(LinkState.DOWN)
    del links[BEHIND_POP[0]]
    incidents = decide(topology(pinged=False), links, REFS_UP, {})
    assert [i.kind for i in incidents] == [IncidentKind.LINK_FAULT] * 4


def test_an_upstream_with_no_links_is_never_inferred_down() -> None:
    topo = Topology(links={}, upstreams={"pop-9": UpstreamInfo("pop-9", "vnpt", "POP 9", False)})
    assert decide(topo, {}, {}, {}) == ()


def _tree(parent_pinged: bool) -> Topology:
    """district POP pop-d (parent) with pop-a (pinged) and pop-b (not pinged) below it."""
    links = {
        "1/a": link_info("1/a", upstream="pop-a"),
        "2/a": link_info("2/a", upstream="pop-a"),
        "3/b": link_info("3/b", upstream="pop-b"),
        "4/d": link_info("4/d", upstream="pop-d"),
    }
    upstreams = {
        "pop-d": UpstreamInfo("pop-d", "vnpt", "POP huyện", parent_pinged),
        "pop-a": UpstreamInfo("pop-a", "vnpt", "POP A", True, parent="pop-d"),
        "pop-b": UpstreamInfo("pop-b", "vnpt", "POP B", False, parent="pop-d"),
    }
    return Topology(links=links, upstreams=upstreams)


def test_a_down_parent_takes_its_children_and_all_their_links() -> None:
    links = {k: ls(k, LinkState.DOWN) for k in ("1/a", "2/a", "3/b", "4/d")}
    nodes = {
        "upstream:pop-d": ns("upstream:pop-d", NodeState.DOWN),
        "upstream:pop-a": ns("upstream:pop-a", NodeState.DOWN),
    }
    (incident,) = decide(_tree(parent_pinged=True), links, nodes, {})
    assert (incident.key.encoded, incident.links) == (
        "upstream:pop-d",
        ("1/a", "2/a", "3/b", "4/d"),
    )


def test_an_unpinged_parent_is_inferred_from_its_whole_subtree() -> None:
    links = {k: ls(k, LinkState.DOWN) for k in ("1/a", "2/a", "3/b", "4/d")}
    (incident,) = decide(_tree(parent_pinged=False), links, {}, {})
    assert incident.key.encoded == "upstream:pop-d"
    links["4/d"] = ls("4/d", LinkState.OK)
    # The parent's own commune answers: the parent is up, each child is down on its own.
    assert kinds(decide(_tree(parent_pinged=False), links, {}, {})) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-a"),
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-b"),
    ]


def test_a_down_child_under_an_up_parent_is_its_own_incident() -> None:
    links = {k: ls(k, LinkState.DOWN) for k in ("1/a", "2/a")}
    links["3/b"] = ls("3/b", LinkState.SLOW)
    nodes = {
        "upstream:pop-d": ns("upstream:pop-d", NodeState.UP),
        "upstream:pop-a": ns("upstream:pop-a", NodeState.DOWN),
    }
    incidents = decide(_tree(parent_pinged=True), links, nodes, {})
    assert kinds(incidents) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-a"),
        (IncidentKind.LINK_FAULT, "link:3/b"),
    ]
    assert incidents[0].links == ("1/a", "2/a")


def test_a_parent_cycle_or_unknown_parent_does_not_hang() -> None:
    topo = Topology(
        links={"1/x": link_info("1/x", upstream="p"), "2/y": link_info("2/y", upstream="lost")},
        upstreams={
            "p": UpstreamInfo("p", "vnpt", "P", False, parent="q"),
            "q": UpstreamInfo("q", "vnpt", "Q", False, parent="p"),
        },
    )
    links = {"1/x": ls("1/x", LinkState.DOWN), "2/y": ls("2/y", LinkState.DOWN)}
    # Each is the other's ancestor: neither is topmost, so the link keeps its own fault.
    assert kinds(decide(topo, links, {}, {})) == [
        (IncidentKind.LINK_FAULT, "link:1/x"),
        (IncidentKind.LINK_FAULT, "link:2/y"),
    ]


def test_references_all_down_is_the_monitor_alone() -> None:
    links = links_all(LinkState.DOWN, (*BEHIND_POP, ELSEWHERE))
    links[ELSEWHERE] = ls(ELSEWHERE, LinkState.CONGESTED)
    nodes = {REFS[0]: ns(REFS[0], NodeState.DOWN, 1), REFS[1]: ns(REFS[1], NodeState.DOWN, 3)}
    portals = {"dvcqg@central": ps("dvcqg@central", PortalState.FAILING)}
    (incident,) = decide(topology(), links, nodes, portals)
    assert incident == Incident(
        key=SubjectKey.parse("monitor"),
        kind=IncidentKind.MONITOR_CONNECTIVITY,
        state="down",
        since=at(3),
        route=Route.PROVINCIAL_IT,
        detail=",".join(REFS),
    )


def test_one_reference_up_or_unmeasured_is_not_the_monitor() -> None:
    links = {ELSEWHERE: ls(ELSEWHERE, LinkState.DOWN)}
    one_up = {REFS[0]: ns(REFS[0], NodeState.DOWN), REFS[1]: ns(REFS[1], NodeState.UP)}
    unmeasured = {REFS[0]: ns(REFS[0], NodeState.DOWN)}
    for nodes in (one_up, unmeasured):
        assert kinds(decide(topology(), links, nodes, {})) == [
            (IncidentKind.LINK_FAULT, f"link:{ELSEWHERE}")
        ]


def test_no_references_configured_is_never_the_monitor() -> None:
    links = {ELSEWHERE: ls(ELSEWHERE, LinkState.DOWN)}
    incidents = decide(topology(references=()), links, {}, {})
    assert [i.kind for i in incidents] == [IncidentKind.LINK_FAULT]


def _vantages(*states: PortalState, portal: str = "dvcqg") -> dict[str, Status[PortalState]]:
    return {
        f"{portal}@v{n}": ps(f"{portal}@v{n}", s, n, "tls" if n % 2 else "dns")
        for n, s in enumerate(states)
    }


def test_portal_failing_with_links_fine_is_a_portal_incident_only() -> None:
    links = links_all(LinkState.OK, (*BEHIND_POP, ELSEWHERE))
    portals = _vantages(PortalState.FAILING, PortalState.FAILING, PortalState.OK)
    (incident,) = decide(topology(), links, REFS_UP, portals)
    assert incident == Incident(
        key=SubjectKey.parse("portal:dvcqg"),
        kind=IncidentKind.PORTAL_OUTAGE,
        state="failing",
        since=at(0),
        route=Route.PROVINCIAL_IT,
        detail="dns,tls",
    )


def test_portal_failing_from_too_few_vantage_points_is_no_incident() -> None:
    portals = _vantages(PortalState.FAILING, PortalState.OK, PortalState.OK)
    assert decide(topology(), {}, REFS_UP, portals) == ()
    # A stricter share: two of three is not "all".
    two_of_three = _vantages(PortalState.FAILING, PortalState.FAILING, PortalState.OK)
    assert decide(topology(), {}, REFS_UP, two_of_three, PortalPolicy(failing_share=1.0)) == ()


def test_portal_share_is_at_least_not_more_than() -> None:
    portals = _vantages(PortalState.FAILING, PortalState.OK)  # exactly half
    assert [i.state for i in decide(topology(), {}, REFS_UP, portals)] == ["failing"]
    # 0.1 x 30 is 3.0000000000000004 in floating point: still three vantage points, not four.
    thirty = _vantages(*([PortalState.FAILING] * 3 + [PortalState.OK] * 27))
    assert len(decide(topology(), {}, REFS_UP, thirty, PortalPolicy(failing_share=0.1))) == 1


def test_portal_slow_from_most_vantage_points_is_a_slow_portal_incident() -> None:
    slow = _vantages(PortalState.SLOW, PortalState.SLOW, PortalState.OK)
    (incident,) = decide(topology(), {}, REFS_UP, slow)
    assert (incident.state, incident.detail) == ("slow", "")
    mixed = _vantages(PortalState.FAILING, PortalState.SLOW, PortalState.OK, PortalState.OK)
    (incident,) = decide(topology(), {}, REFS_UP, mixed, PortalPolicy(failing_share=0.5))
    assert (incident.state, incident.since) == ("slow", at(0))


def test_portals_are_judged_each_on_its_own() -> None:
    portals = {
        **_vantages(PortalState.FAILING, PortalState.FAILING, portal="dvcqg"),
        **_vantages(PortalState.OK, PortalState.OK, portal="dvc-tinh"),
    }
    assert kinds(decide(topology(), {}, REFS_UP, portals)) == [
        (IncidentKind.PORTAL_OUTAGE, "portal:dvcqg")
    ]


def test_a_portal_incident_does_not_hide_a_real_link_fault() -> None:
    links = {ELSEWHERE: ls(ELSEWHERE, LinkState.LOSSY)}
    portals = _vantages(PortalState.FAILING)
    incidents = decide(topology(), links, REFS_UP, portals)
    assert kinds(incidents) == [
        (IncidentKind.PORTAL_OUTAGE, "portal:dvcqg"),
        (IncidentKind.LINK_FAULT, f"link:{ELSEWHERE}"),
    ]
    assert [i.route for i in incidents] == [Route.PROVINCIAL_IT, Route.ISP]


def test_link_faults_go_to_the_isp_with_their_detail() -> None:
    topo = topology()
    for state in (LinkState.DOWN, LinkState.LOSSY, LinkState.SLOW):
        (incident,) = decide(topo, {ELSEWHERE: ls(ELSEWHERE, state, 3, "x")}, REFS_UP, {})
        assert incident == Incident(
            key=SubjectKey.parse(f"link:{ELSEWHERE}"),
            kind=IncidentKind.LINK_FAULT,
            state=state.value,
            since=at(3),
            route=Route.ISP,
            isp="viettel",
            links=(ELSEWHERE,),
            detail="x",
        )


def test_capacity_goes_to_provincial_it_and_to_the_isp_only_where_configured() -> None:
    topo = topology()
    congested = {ELSEWHERE: ls(ELSEWHERE, LinkState.CONGESTED)}
    (incident,) = decide(topo, congested, REFS_UP, {})
    assert (incident.kind, incident.route) == (IncidentKind.CAPACITY, Route.PROVINCIAL_IT)
    upgraded = link_info(ELSEWHERE, isp="viettel", capacity_to_isp=True)
    topo = Topology({**topo.links, ELSEWHERE: upgraded}, topo.upstreams, topo.references)
    (incident,) = decide(topo, congested, REFS_UP, {})
    assert (incident.kind, incident.route) == (IncidentKind.CAPACITY, Route.ISP_AND_PROVINCIAL_IT)
    assert incident.isp == "viettel"


def test_a_link_unknown_to_the_topology_is_not_ticketed() -> None:
    assert decide(topology(), {"99999/gone": ls("99999/gone", LinkState.DOWN)}, REFS_UP, {}) == ()


def test_incidents_are_ordered_by_kind_then_key_whatever_the_input_order() -> None:
    topo = Topology(
        links={k: link_info(k) for k in ("3/c", "1/a", "2/b", "4/d")},
        upstreams={},
    )
    links = {
        "3/c": ls("3/c", LinkState.DOWN),
        "1/a": ls("1/a", LinkState.CONGESTED),
        "2/b": ls("2/b", LinkState.SLOW),
        "4/d": ls("4/d", LinkState.CONGESTED),
    }
    portals = _vantages(PortalState.FAILING)
    expected = [
        (IncidentKind.PORTAL_OUTAGE, "portal:dvcqg"),
        (IncidentKind.CAPACITY, "link:1/a"),
        (IncidentKind.CAPACITY, "link:4/d"),
        (IncidentKind.LINK_FAULT, "link:2/b"),
        (IncidentKind.LINK_FAULT, "link:3/c"),
    ]
    rng = random.Random(4)
    for _ in range(5):
        items = list(links.items())
        rng.shuffle(items)
        assert kinds(decide(topo, dict(items), {}, portals)) == expected


# --- fed from the evaluators, as a timeline ----------------------------------------------------


def test_timeline_upstream_fails_one_incident_from_the_first_confirmed_round() -> None:
    topo = topology(pinged=True)
    link_ev, node_ev, portal_ev = LinkEvaluator(), NodeEvaluator(), PortalEvaluator()
    pop = SubjectKey.upstream("pop-1").encoded
    history: list[list[tuple[IncidentKind, str]]] = []
    for i in range(12):
        broken = 2 <= i < 6  # the POP loses power for four rounds
        for ref in REFS:
            node_ev.observe(NodeRound(ref, at(i), True))
        node_ev.observe(NodeRound(pop, at(i), not broken))
        for key in BEHIND_POP:
            link_ev.observe(LinkRound(key, at(i), 3, 0 if broken else 3, None if broken else 0.01))
        link_ev.observe(LinkRound(ELSEWHERE, at(i), 3, 3, 0.01))
        portal_ev.observe(PortalRound("dvcqg", "central", at(i), True, 0.3))
        history.append(
            kinds(decide(topo, link_ev.statuses(), node_ev.statuses(), portal_ev.statuses()))
        )
    outage = [(IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")]
    # Confirmed at the third bad round (i = 4), kept until five good rounds (i = 6..10).
    assert history == [[], [], [], [], outage, outage, outage, outage, outage, outage, [], []]


def test_timeline_references_fail_no_isp_incident_at_any_step() -> None:
    topo = topology()
    link_ev, node_ev = LinkEvaluator(), NodeEvaluator()
    for i in range(10):
        cut_off = i >= 2  # NetWatch's own line drops: everything looks down
        for ref in REFS:
            node_ev.observe(NodeRound(ref, at(i), not cut_off))
        for key in (*BEHIND_POP, ELSEWHERE):
            link_ev.observe(LinkRound(key, at(i), 3, 0 if cut_off else 3, 0.01))
        incidents = decide(topo, link_ev.statuses(), node_ev.statuses(), {})
        assert all(inc.route is Route.PROVINCIAL_IT for inc in incidents), f"round {i}"
        assert [inc.kind for inc in incidents] == (
            [IncidentKind.MONITOR_CONNECTIVITY] if i >= 4 else []
        ), f"round {i}"


def test_timeline_outage_starting_mid_round_is_still_one_upstream_incident() -> None:
    """The POP dies halfway through a round: that round the node still answers half its echoes
    while its links lose half of theirs. Both must count it bad, or the links are confirmed one
    round before the node and each gets a link-fault incident first (found on the lab)."""
    topo = topology(pinged=True)
    link_ev, node_ev = LinkEvaluator(), NodeEvaluator()
    pop = SubjectKey.upstream("pop-1").encoded
    for i in range(10):
        received = 10 if i < 2 else (5 if i == 2 else 0)  # dies in the middle of round 2
        for ref in REFS:
            node_ev.observe(NodeRound(ref, at(i), True))
        node_ev.observe(NodeRound(pop, at(i), received > 0, 1 - received / 10))
        for key in BEHIND_POP:
            link_ev.observe(LinkRound(key, at(i), 10, received, 0.01 if received else None))
        incidents = decide(topo, link_ev.statuses(), node_ev.statuses(), {})
        assert IncidentKind.LINK_FAULT not in [inc.kind for inc in incidents], f"round {i}"
        if i >= 4:
            assert kinds(incidents) == [(IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")]


# --- the moment before an upstream outage is confirmed (rule 2) --------------------------------


def _pending(key: str, i: int, good_at: tuple[int, ...]) -> Status[LinkState]:
    """A line still OK whose latest round (at i) lost every echo."""
    return Status(
        key, LinkState.OK, at(0), "", at(i), LinkState.DOWN, good_at=tuple(map(at, good_at))
    )


def test_a_pinged_node_being_confirmed_holds_the_links_that_went_down_with_it() -> None:
    pop = SubjectKey.upstream("pop-1").encoded
    links = links_all(LinkState.DOWN)  # since at(0)..at(4)
    suspect = Status(pop, NodeState.UP, at(0), "", at(6), NodeState.DOWN, good_at=(at(-1), at(3)))
    assert decide(topology(), links, {**REFS_UP, pop: suspect}, {}) == ()
    # Its next round answered: the links are their own faults.
    back = replace(suspect, last_round=NodeState.UP, good_at=(at(3), at(7)))
    assert [k for _, k in kinds(decide(topology(), links, {**REFS_UP, pop: back}, {}))] == [
        f"link:{k}" for k in BEHIND_POP
    ]


def test_links_down_since_the_nodes_last_two_good_rounds_began_keep_their_incident() -> None:
    pop = SubjectKey.upstream("pop-1").encoded
    links = links_all(LinkState.DOWN)  # BEHIND_POP[n] down since at(n)
    suspect = Status(pop, NodeState.UP, at(0), "", at(6), NodeState.DOWN, good_at=(at(2), at(3)))
    # Down at or before at(2): the node answered twice since, their own; after at(2): held.
    assert kinds(decide(topology(), links, {**REFS_UP, pop: suspect}, {})) == [
        (IncidentKind.LINK_FAULT, f"link:{k}") for k in BEHIND_POP[:3]
    ]


def test_an_unpinged_node_whose_other_links_are_failing_holds_the_confirmed_ones() -> None:
    topo = topology(pinged=False)
    links = {
        BEHIND_POP[0]: ls(BEHIND_POP[0], LinkState.DOWN, 2),
        **{k: _pending(k, 4, (1, 2)) for k in BEHIND_POP[1:]},
    }
    assert decide(topo, links, REFS_UP, {}) == ()
    # One line behind it answers: the node is not down, the cut line is its own fault.
    links[BEHIND_POP[4]] = ls(BEHIND_POP[4], LinkState.OK)
    assert kinds(decide(topo, links, REFS_UP, {})) == [
        (IncidentKind.LINK_FAULT, f"link:{BEHIND_POP[0]}")
    ]


def test_timeline_links_confirmed_a_round_before_the_references_blame_no_isp() -> None:
    """NetWatch's own line is cut late in round 2: the references had answered that round's
    echoes, the lines lost theirs. The lines are confirmed a round before the references; no
    ISP may be blamed in between."""
    topo = topology()
    link_ev, node_ev = LinkEvaluator(), NodeEvaluator()
    pop = SubjectKey.upstream("pop-1").encoded
    history = []
    for i in range(8):
        for ref in (*REFS, pop):
            node_ev.observe(NodeRound(ref, at(i), i < 3))
        for key in (*BEHIND_POP, ELSEWHERE):
            link_ev.observe(LinkRound(key, at(i), 3, 3 if i < 2 else 0, 0.01))
        history.append(kinds(decide(topo, link_ev.statuses(), node_ev.statuses(), {})))
    monitor = [(IncidentKind.MONITOR_CONNECTIVITY, "monitor")]
    assert history == [[], [], [], [], [], monitor, monitor, monitor]


def test_only_incidents_younger_than_the_references_last_good_rounds_are_held() -> None:
    pop = SubjectKey.upstream("pop-1").encoded
    refs = {
        r: Status(r, NodeState.UP, at(0), "", at(6), NodeState.DOWN, good_at=(at(3), at(5)))
        for r in REFS
    }
    nodes = {**refs, pop: ns(pop, NodeState.DOWN, 2)}  # down since before the references blinked
    links = {**links_all(LinkState.DOWN), ELSEWHERE: ls(ELSEWHERE, LinkState.DOWN, 4)}
    portals = {"dvcqg@central": ps("dvcqg@central", PortalState.FAILING, 4, "dns")}
    # The POP's outage is its own; the line and the portal that failed after the references'
    # last good rounds began wait for their next round.
    assert kinds(decide(topology(), links, nodes, portals)) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1")
    ]
    refs_back = {r: replace(s, last_round=NodeState.UP) for r, s in refs.items()}
    assert kinds(decide(topology(), links, {**nodes, **refs_back}, portals)) == [
        (IncidentKind.UPSTREAM_OUTAGE, "upstream:pop-1"),
        (IncidentKind.PORTAL_OUTAGE, "portal:dvcqg"),
        (IncidentKind.LINK_FAULT, f"link:{ELSEWHERE}"),
    ]
