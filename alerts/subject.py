"""Who a measurement, a state, an incident or a ticket is about: one typed key, one codec.

A subject used to be a string such as ``"link:24848/vnpt-tslcd"`` built and re-parsed in a dozen
places. Now the plan builds each :class:`SubjectKey` once (netwatch/plan.py); observations,
health, incidents, tickets, the store and the pages carry that value; and this module is the only
one that turns a key into its stored text or back (``key.encoded`` / ``SubjectKey.parse``). The
stored texts are the ones the database has always held, so no data moves:

=========  ===============================  ==========================================
kind       stored form                      what
=========  ===============================  ==========================================
link       ``link:24848/vnpt-tslcd``        a commune's WAN link (its :data:`LinkId`)
upstream   ``upstream:pop-1``               an upstream node (district POP)
reference  ``reference:10.0.0.1``           one of NetWatch's own reference targets
portal     ``portal:dvcqg``                 a portal (all vantage points)
router     ``router:24848``                 a commune router polled by SNMP
device     ``device:24848/10.1.0.5``        a front-office device (shown, not ticketed)
monitor    ``monitor``                      NetWatch's own connectivity
site       ``site:24848``                   a commune centre as a whole (power or LAN)
agent      ``agent:24848``                  a commune's agent box (its own health)
=========  ===============================  ==========================================

The state history names its subjects as alerts/ evaluators do: a link by its :data:`LinkId`
(``24848/vnpt-tslcd``), a node by its key (``upstream:pop-1``), a portal per vantage point
(``dvcqg@central``, :func:`portal_subject`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import ClassVar, NewType

# A link as alerts/ names it: "24848/vnpt-tslcd" (commune code / link id). Typed so that a link
# id is never confused with a subject key or any other string; free at run time.
LinkId = NewType("LinkId", str)


def link_id(commune: str, link: str) -> LinkId:
    """The id of one link of one commune: '24848/vnpt-tslcd'."""
    return LinkId(f"{commune}/{link}")


def portal_subject(portal: str, vantage: str) -> str:
    """The state-history subject of one portal seen from one vantage point: 'dvcqg@central'."""
    return f"{portal}@{vantage}"


def portal_of_subject(subject: str) -> str:
    """The portal id of a :func:`portal_subject` ('dvcqg@central' -> 'dvcqg')."""
    return subject.rsplit("@", 1)[0]


class SubjectKind(enum.Enum):
    """What kind of thing a subject is; the value is the stored form's prefix."""

    LINK = "link"
    UPSTREAM = "upstream"
    REFERENCE = "reference"
    PORTAL = "portal"
    ROUTER = "router"
    DEVICE = "device"
    MONITOR = "monitor"
    SITE = "site"  # a commune centre as a whole (issue 11: power or LAN)
    AGENT = "agent"  # a commune's agent box


_KINDS = {k.value: k for k in SubjectKind}


@dataclass(frozen=True, slots=True, eq=False)
class SubjectKey:
    """A subject's identity: its kind and its name within the kind.

    Equal, hashed and ordered by its stored form, so a set or a sort of keys behaves exactly as
    one of the strings did. Build keys once (the plan does) and pass them on: building one costs
    a string format. The hash is computed once: the hot path (the latest state, the metrics,
    health's bad set) looks keys up by the thousand every round.
    """

    kind: SubjectKind
    name: str  # "24848/vnpt-tslcd", "pop-1", "dvcqg", "" for the monitor
    encoded: str = field(init=False, repr=False)  # the stored form; what equality compares
    _hash: int = field(init=False, repr=False)

    MONITOR: ClassVar[SubjectKey]

    def __post_init__(self) -> None:
        kind = self.kind
        text = kind.value if kind is SubjectKind.MONITOR else f"{kind.value}:{self.name}"
        object.__setattr__(self, "encoded", text)
        object.__setattr__(self, "_hash", hash(text))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, SubjectKey):
            return NotImplemented
        return self.encoded == other.encoded

    def __str__(self) -> str:
        return self.encoded

    def __lt__(self, other: SubjectKey) -> bool:
        return self.encoded < other.encoded

    @classmethod
    def parse(cls, text: str) -> SubjectKey:
        """The key of a stored form (inverse of ``encoded``); ValueError for anything else."""
        prefix, sep, name = text.partition(":")
        kind = _KINDS.get(prefix)
        if kind is SubjectKind.MONITOR and not sep:
            return cls.MONITOR
        if kind is None or kind is SubjectKind.MONITOR or not sep or not name:
            raise ValueError(f"not a subject key: {text!r}")
        return cls(kind, name)

    @classmethod
    def link(cls, link: LinkId) -> SubjectKey:
        """The key of a link ('link:24848/vnpt-tslcd')."""
        return cls(SubjectKind.LINK, link)

    @classmethod
    def upstream(cls, upstream: str) -> SubjectKey:
        """The key of an upstream node ('upstream:pop-1')."""
        return cls(SubjectKind.UPSTREAM, upstream)

    @classmethod
    def reference(cls, address: str) -> SubjectKey:
        """The key of a reference target ('reference:10.0.0.1')."""
        return cls(SubjectKind.REFERENCE, address)

    @classmethod
    def portal(cls, portal: str) -> SubjectKey:
        """The key of a portal ('portal:dvcqg')."""
        return cls(SubjectKind.PORTAL, portal)

    @classmethod
    def router(cls, commune: str) -> SubjectKey:
        """The key of a commune's router ('router:24848')."""
        return cls(SubjectKind.ROUTER, commune)

    @classmethod
    def device(cls, commune: str, address: str) -> SubjectKey:
        """The key of a front-office device ('device:24848/10.1.0.5')."""
        return cls(SubjectKind.DEVICE, f"{commune}/{address}")

    @classmethod
    def site(cls, commune: str) -> SubjectKey:
        """The key of a commune centre as a whole ('site:24848')."""
        return cls(SubjectKind.SITE, commune)

    @classmethod
    def agent(cls, commune: str) -> SubjectKey:
        """The key of a commune's agent box ('agent:24848')."""
        return cls(SubjectKind.AGENT, commune)

    @property
    def commune(self) -> str | None:
        """The commune a link, site, agent, router or device key is about; None otherwise."""
        if self.kind in (SubjectKind.SITE, SubjectKind.AGENT, SubjectKind.ROUTER):
            return self.name
        if self.kind in (SubjectKind.LINK, SubjectKind.DEVICE):
            return self.name.split("/", 1)[0]
        return None

    @property
    def link_id(self) -> LinkId | None:
        """The link of a link key; None for any other kind."""
        return LinkId(self.name) if self.kind is SubjectKind.LINK else None

    @property
    def is_node(self) -> bool:
        """An upstream node or a reference target (judged by the node evaluator)."""
        return self.kind is SubjectKind.UPSTREAM or self.kind is SubjectKind.REFERENCE


SubjectKey.MONITOR = SubjectKey(SubjectKind.MONITOR, "")
