"""Health evaluation: classify each round, then apply hysteresis per subject.

Rules (the same engine serves links, portals and nodes):

- Each round is classified on its own (``classify_link``, ``classify_portal``, ``classify_node``).
- Every subject starts ``OK``/``UP`` at its first round; nothing is reported before evidence.
- Entering a bad state (from ``OK``/``UP``): at least ``enter_rounds`` of the last
  ``enter_window`` rounds were bad, of any bad class (lossy, down, lossy are three bad rounds). A
  window below ``enter_rounds`` counts as ``enter_rounds``, which is the plain rule "enter_rounds
  bad rounds in a row". The default 3 of 5 reports a line down 20 s, up 20 s at 10 s rounds
  (issue 4: offline half the time, never three bad rounds in a row) by its fifth round, while
  one noisy round in five never opens an episode. Only rounds since the latest state change
  count: the rounds of an episode just left never help open the next one.
- The state reported on entering is the WORST class among the bad rounds of that window (down >
  lossy > congested > slow; failing > slow): a link that went dark for two of three bad rounds
  is reported down, the ISP ticket must say so. Its detail comes from the window's rounds of
  that class (for down: the most specific cause seen, interface down > router rebooted > router
  unreachable > no echo; for a failing portal: the latest failed phase reported). ``since`` is
  the first bad round of the window, not the good rounds before it.
- Leaving a bad state (back to OK): ``exit_rounds`` consecutive good rounds; ``since`` is the first
  of them. Any bad round in between resets the count, so a line flapping every round stays in
  its episode: one episode, not a storm. Entering asks for loss beyond chance, leaving asks for
  clean rounds: a good round that still lost more than the threshold's share of its echoes (one
  of ten at 2 %) resets the count without counting as bad. Without it a line losing 20 % of its
  echoes, good by chance in one round of three, closed its ticket ("line back" to the ISP)
  every few minutes while it still lost them. Five clean rounds of ten echoes come up once in
  70,000 tries on such a line (of five echoes: once in 260; fast confirmation's rounds are of
  ten), and in one try of three on a line losing 2 %.
- Changing between bad states (lossy to down, say): ``enter_rounds`` consecutive rounds that are
  bad and not of the current state; the new state is the worst of them. Rounds of the current
  state or good rounds reset that count, so alternating lossy/down never flips the state. No
  window here: the episode is already reported, and a window would let a line alternating
  lossy/down flip its state (and its ticket) back and forth every few rounds.
- A round older than the subject's latest round is ignored (late agent results must not rewind).
- The detail of a state is fixed when it is entered; later rounds show in ``last_detail`` only.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol

from alerts.model import (
    DownCause,
    LinkPolicy,
    LinkRound,
    LinkState,
    NodePolicy,
    NodeRound,
    NodeState,
    PortalPolicy,
    PortalRound,
    PortalState,
    S,
    Status,
    Transition,
)
from alerts.subject import portal_subject

# Severity when a streak mixes bad classes: the worst one is reported.
_LINK_RANK = {
    LinkState.OK: 0,
    LinkState.SLOW: 1,
    LinkState.CONGESTED: 2,
    LinkState.LOSSY: 3,
    LinkState.DOWN: 4,
}
_PORTAL_RANK = {PortalState.OK: 0, PortalState.SLOW: 1, PortalState.FAILING: 2}
_NODE_RANK = {NodeState.UP: 0, NodeState.DOWN: 1}
# How much a down cause tells the ISP: the most specific one seen in a streak wins.
_CAUSE_RANK = {
    "": 0,
    DownCause.NO_ECHO.value: 1,
    DownCause.ROUTER_UNREACHABLE.value: 2,
    DownCause.ROUTER_REBOOTED.value: 3,
    DownCause.INTERFACE_DOWN.value: 4,
}


@dataclass(frozen=True, slots=True)
class Classified(Generic[S]):
    """One round's own verdict, before hysteresis."""

    state: S
    detail: str = ""  # DownCause value, failed portal phase
    # False for a good round that still lost more than the threshold's share of its echoes
    # (within chance, so not bad): it never counts toward leaving a bad state.
    clean: bool = True


def down_cause(rnd: LinkRound) -> DownCause:
    """Why a link answered no echo, from what SNMP saw in the same round."""
    if rnd.interface_up is False and rnd.router_reachable is not False:
        return DownCause.INTERFACE_DOWN
    if rnd.router_rebooted:
        return DownCause.ROUTER_REBOOTED
    if rnd.router_reachable is False:
        return DownCause.ROUTER_UNREACHABLE
    return DownCause.NO_ECHO


# A round's loss is over its threshold only beyond chance: on a line that really loses
# `threshold` of its echoes, that many lost echoes (or more) come up less often than this.
LOSS_SIGNIFICANCE = 0.05


@functools.lru_cache(maxsize=1024)
def lost_beyond_chance(sent: int, threshold: float) -> int:
    """The fewest lost echoes of ``sent`` that say the loss is over ``threshold``.

    One lost echo of five is 20 %, ten times QCVN 34's 2 %, yet a line losing 1 % of its echoes
    loses one of five in one round out of twenty: judged on the ratio alone, a healthy line
    turns "lossy" every few minutes (issue 12: 1 % random loss for 10 minutes must open
    nothing). So a round is lossy when its lost echoes would come up with probability below
    LOSS_SIGNIFICANCE on a line losing exactly ``threshold`` (a one-sided binomial test): two of
    five or ten, four of fifty at 2 %. A line losing 20 % still shows it in most rounds of ten.
    """
    if sent <= 0:
        return 1
    if threshold <= 0:
        return 1
    if threshold >= 1:
        return sent + 1  # never lossy: every echo may be lost
    tail = 1.0  # P(X >= k), from k = 0 up
    for k in range(sent + 1):
        if tail < LOSS_SIGNIFICANCE:
            return k
        tail -= math.comb(sent, k) * threshold**k * (1 - threshold) ** (sent - k)
    return sent + 1  # not even every echo lost would be: such a round is never lossy


def loss_over(sent: int, received: int, threshold: float) -> bool:
    """Whether a round lost more than ``threshold`` of its echoes, beyond chance."""
    lost = sent - received
    ratio = lost / sent if sent else 1.0
    return ratio > threshold and lost >= lost_beyond_chance(sent, threshold)


def _clean(sent: int, received: int, threshold: float) -> bool:
    """Whether a round lost no more than ``threshold`` of its echoes, chance not allowed for."""
    return sent <= 0 or (sent - received) <= threshold * sent


def classify_link(rnd: LinkRound, policy: LinkPolicy) -> Classified[LinkState]:
    """Classify one link round: down, congested, lossy, slow or ok (first match wins)."""
    if rnd.received == 0:
        return Classified(LinkState.DOWN, down_cause(rnd).value)
    lossy = loss_over(rnd.sent, rnd.received, policy.loss_ratio)
    slow = rnd.rtt_median_s is not None and rnd.rtt_median_s > policy.rtt_s
    full = rnd.utilization_ratio is not None and rnd.utilization_ratio >= policy.utilization_ratio
    if (lossy or slow) and full:
        return Classified(LinkState.CONGESTED)
    if lossy:
        return Classified(LinkState.LOSSY)
    if slow:
        return Classified(LinkState.SLOW)
    return Classified(LinkState.OK, clean=_clean(rnd.sent, rnd.received, policy.loss_ratio))


def classify_portal(rnd: PortalRound, policy: PortalPolicy) -> Classified[PortalState]:
    """Classify one portal probe: failing (with its phase), slow or ok."""
    if not rnd.ok:
        return Classified(PortalState.FAILING, rnd.failed_phase or "")
    if rnd.total_s is not None and rnd.total_s > policy.slow_s:
        return Classified(PortalState.SLOW)
    return Classified(PortalState.OK)


def classify_node(rnd: NodeRound, policy: NodePolicy | None = None) -> Classified[NodeState]:
    """Classify one node round: down when unreachable or losing echoes as a link would.

    A node and the links behind it must be judged by the same rule: when an outage starts in
    the middle of a round, the node still answers some echoes while its links already lose
    some; were the node "up" while any echo came back, the links would be confirmed one round
    before it and ticketed one by one instead of as one upstream outage."""
    if not rnd.reachable:
        return Classified(NodeState.DOWN)
    threshold = (policy or NodePolicy()).loss_ratio
    lossy = (
        loss_over(rnd.sent, rnd.sent - round(rnd.loss_ratio * rnd.sent), threshold)
        if rnd.sent
        else rnd.loss_ratio > threshold
    )
    if lossy:
        return Classified(NodeState.DOWN, "loss")
    if not rnd.sent:
        return Classified(NodeState.UP)
    received = rnd.sent - round(rnd.loss_ratio * rnd.sent)
    return Classified(NodeState.UP, clean=_clean(rnd.sent, received, threshold))


def _most_specific_cause(old: str, new: str) -> str:
    return new if _CAUSE_RANK.get(new, 0) >= _CAUSE_RANK.get(old, 0) else old


def _latest_phase(old: str, new: str) -> str:
    return new or old


class _Streak(Generic[S]):
    """Consecutive rounds counted toward a state change (mutable, private to one subject)."""

    __slots__ = ("detail", "rounds", "since", "worst")

    def __init__(self) -> None:
        self.rounds = 0
        self.since: datetime | None = None
        self.worst: S | None = None
        self.detail = ""

    def reset(self) -> None:
        self.rounds = 0
        self.since = None
        self.worst = None
        self.detail = ""


class _Track(Generic[S]):
    """The hysteresis state of one subject."""

    __slots__ = (
        "bad",
        "detail",
        "good",
        "good_at",
        "last",
        "last_at",
        "recent",
        "since",
        "state",
    )

    def __init__(self, state: S, since: datetime, detail: str, last: Classified[S]) -> None:
        self.state: S = state
        self.since = since
        self.detail = detail
        self.last_at = since
        self.last: Classified[S] = last
        # The last enter_window rounds while good, toward entering a bad state.
        self.recent: deque[tuple[datetime, Classified[S]]] = deque()
        self.bad: _Streak[S] = _Streak()  # toward changing to a different bad state
        self.good: _Streak[S] = _Streak()  # toward leaving a bad state
        self.good_at: tuple[datetime, ...] = ()  # when the last two good rounds began


class _Rounds(Protocol):
    """How many rounds change a state: what LinkPolicy, PortalPolicy and NodePolicy all say."""

    @property
    def enter_rounds(self) -> int: ...

    @property
    def exit_rounds(self) -> int: ...

    @property
    def enter_window(self) -> int: ...


class _Hysteresis(Generic[S]):
    """The engine shared by the three evaluators; see the module docstring for the rules."""

    def __init__(
        self, good: S, rank: Mapping[S, int], prefer_detail: Callable[[str, str], str]
    ) -> None:
        self._good: S = good
        self._rank: Mapping[S, int] = rank
        self._prefer = prefer_detail
        self._tracks: dict[str, _Track[S]] = {}

    def observe(
        self,
        subject: str,
        at: datetime,
        verdict: Classified[S],
        rounds: _Rounds,
    ) -> Transition | None:
        track = self._tracks.get(subject)
        if track is None:
            track = _Track(self._good, at, "", verdict)
            self._tracks[subject] = track
        elif at < track.last_at:
            return None
        track.last_at = at
        track.last = verdict
        if verdict.state == self._good:
            track.good_at = (track.good_at[-1], at) if track.good_at else (at,)
        enter_rounds = max(1, rounds.enter_rounds)
        exit_rounds = max(1, rounds.exit_rounds)
        if track.state == self._good:
            return self._enter(subject, track, at, verdict, enter_rounds, rounds.enter_window)
        if verdict.state == self._good:
            if not verdict.clean:
                # Good, yet not clean: a line losing 20 % shows no loss beyond chance in about
                # one round of three; counted as good, its episode would close while it loses.
                track.good.reset()
                return None
            track.bad.reset()
            self._extend(track.good, at, verdict)
            if track.good.rounds < exit_rounds:
                return None
            return self._change(subject, track, track.good, at)
        track.good.reset()
        if verdict.state == track.state:
            # The current bad state holds: nothing to change toward.
            track.bad.reset()
            return None
        self._extend(track.bad, at, verdict)
        if track.bad.rounds < enter_rounds:
            return None
        return self._change(subject, track, track.bad, at)

    def _enter(
        self,
        subject: str,
        track: _Track[S],
        at: datetime,
        verdict: Classified[S],
        enter_rounds: int,
        enter_window: int,
    ) -> Transition | None:
        recent = track.recent
        recent.append((at, verdict))
        while len(recent) > max(enter_rounds, enter_window):
            recent.popleft()
        # A good round only ever lowers the window's bad count.
        if verdict.state == self._good:
            return None
        bad = [(when, seen) for when, seen in recent if seen.state != self._good]
        if len(bad) < enter_rounds:
            return None
        streak: _Streak[S] = _Streak()
        for when, seen in bad:
            self._extend(streak, when, seen)
        return self._change(subject, track, streak, at)

    def _extend(self, streak: _Streak[S], at: datetime, verdict: Classified[S]) -> None:
        streak.rounds += 1
        if streak.since is None:
            streak.since = at
        if streak.worst is None or self._rank[verdict.state] > self._rank[streak.worst]:
            streak.worst = verdict.state
            streak.detail = verdict.detail
        elif verdict.state == streak.worst:
            streak.detail = self._prefer(streak.detail, verdict.detail)

    def _change(
        self, subject: str, track: _Track[S], streak: _Streak[S], at: datetime
    ) -> Transition:
        # Both are set by _extend before any change is confirmed.
        assert streak.worst is not None
        assert streak.since is not None
        old = track.state
        track.state, track.since, track.detail = streak.worst, streak.since, streak.detail
        track.recent.clear()
        track.bad.reset()
        track.good.reset()
        return Transition(
            subject=subject,
            old=old.value,
            new=track.state.value,
            at=at,
            since=track.since,
            detail=track.detail,
        )

    def status(self, subject: str) -> Status[S] | None:
        track = self._tracks.get(subject)
        if track is None:
            return None
        return Status(
            subject=subject,
            state=track.state,
            since=track.since,
            detail=track.detail,
            last_at=track.last_at,
            last_round=track.last.state,
            last_detail=track.last.detail,
            good_at=track.good_at,
        )

    def unconfirmed(self, subject: str, state: S) -> bool:
        """Whether the subject's latest round was `state` while its judged state is not."""
        track = self._tracks.get(subject)
        return track is not None and track.last.state == state and track.state != state

    def statuses(self) -> dict[str, Status[S]]:
        out: dict[str, Status[S]] = {}
        for subject in sorted(self._tracks):
            status = self.status(subject)
            assert status is not None  # the subject was just listed
            out[subject] = status
        return out

    def restore(self, subject: str, state: S, since: datetime, detail: str) -> None:
        self._tracks[subject] = _Track(state, since, detail, Classified(state, detail))

    def forget(self, subject: str) -> None:
        self._tracks.pop(subject, None)


class _Evaluator(Generic[S]):
    """What the three evaluators share: the engine, and every subject's status."""

    _engine: _Hysteresis[S]

    def statuses(self) -> dict[str, Status[S]]:
        """Every subject's status (link, "portal@vantage" or node), ordered by subject."""
        return self._engine.statuses()

    def unconfirmed(self, subject: str, state: S) -> bool:
        """Whether the subject's latest round was `state` while its judged state is not (a
        change its hysteresis has not confirmed, or will not)."""
        return self._engine.unconfirmed(subject, state)


class LinkEvaluator(_Evaluator[LinkState]):
    """Per-link hysteresis over LinkRounds, with per-link policies (the commune's thresholds)."""

    def __init__(
        self, default: LinkPolicy | None = None, policies: Mapping[str, LinkPolicy] | None = None
    ) -> None:
        self._default = default or LinkPolicy()
        self._policies = dict(policies or {})
        self._engine: _Hysteresis[LinkState] = _Hysteresis(
            LinkState.OK, _LINK_RANK, _most_specific_cause
        )

    def policy(self, link: str) -> LinkPolicy:
        """The policy that applies to a link."""
        return self._policies.get(link, self._default)

    def observe(self, rnd: LinkRound) -> Transition | None:
        """Feed one round; return the transition it confirmed, if any."""
        policy = self.policy(rnd.link)
        verdict = classify_link(rnd, policy)
        return self._engine.observe(rnd.link, rnd.at, verdict, policy)

    def status(self, link: str) -> Status[LinkState] | None:
        """The current status of a link, or None before its first round."""
        return self._engine.status(link)

    def restore(self, link: str, state: LinkState, since: datetime, detail: str = "") -> None:
        """Resume a persisted state after a restart, so no transition is emitted again."""
        self._engine.restore(link, state, since, detail)

    def forget(self, link: str) -> None:
        """Drop a link removed from the inventory."""
        self._engine.forget(link)

    def set_policies(self, policies: Mapping[str, LinkPolicy]) -> None:
        """New per-link policies (a configuration reload): each link's next round is judged by
        its new thresholds; its state and the rounds counted so far stay."""
        self._policies = dict(policies)


class PortalEvaluator(_Evaluator[PortalState]):
    """Per portal and vantage point hysteresis over PortalRounds."""

    def __init__(self, policy: PortalPolicy | None = None) -> None:
        self.policy = policy or PortalPolicy()
        self._engine: _Hysteresis[PortalState] = _Hysteresis(
            PortalState.OK, _PORTAL_RANK, _latest_phase
        )

    def observe(self, rnd: PortalRound) -> Transition | None:
        """Feed one probe; return the transition it confirmed (subject "portal@vantage")."""
        verdict = classify_portal(rnd, self.policy)
        subject = portal_subject(rnd.portal, rnd.vantage)
        return self._engine.observe(subject, rnd.at, verdict, self.policy)

    def status(self, portal: str, vantage: str) -> Status[PortalState] | None:
        """The current status of a portal from one vantage point."""
        return self._engine.status(portal_subject(portal, vantage))

    def restore(
        self, portal: str, vantage: str, state: PortalState, since: datetime, detail: str = ""
    ) -> None:
        """Resume a persisted state after a restart."""
        self._engine.restore(portal_subject(portal, vantage), state, since, detail)

    def forget(self, portal: str, vantage: str) -> None:
        """Drop a portal or vantage point no longer probed."""
        self._engine.forget(portal_subject(portal, vantage))


class NodeEvaluator(_Evaluator[NodeState]):
    """Per-node hysteresis over NodeRounds (upstream nodes and reference targets)."""

    def __init__(self, policy: NodePolicy | None = None) -> None:
        self.policy = policy or NodePolicy()
        self._engine: _Hysteresis[NodeState] = _Hysteresis(NodeState.UP, _NODE_RANK, _latest_phase)

    def observe(self, rnd: NodeRound) -> Transition | None:
        """Feed one round; return the transition it confirmed, if any."""
        return self._engine.observe(rnd.node, rnd.at, classify_node(rnd, self.policy), self.policy)

    def status(self, node: str) -> Status[NodeState] | None:
        """The current status of a node."""
        return self._engine.status(node)

    def restore(self, node: str, state: NodeState, since: datetime) -> None:
        """Resume a persisted state after a restart."""
        self._engine.restore(node, state, since, "")

    def forget(self, node: str) -> None:
        """Drop a node no longer watched."""
        self._engine.forget(node)
