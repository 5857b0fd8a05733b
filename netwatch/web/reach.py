"""What a caller may see and do: every province and ISP, or only some provinces, or one ISP.

A machine token (`netwatch token create … --province N | --isp ID`) or a person's account
(`netwatch user create … --role province|isp`) carries a `Reach`. The API and the provincial IT
view ask it of every commune, link, ticket and maintenance window they are about to show or
change; what lies outside is answered as if it did not exist (404, or left out of a list), so a
caller learns nothing of another province's or ISP's tickets — not even that an id is taken
(ticket ids are derived from public facts, and a 403 would confirm one). What a role may never
do (an ISP engineer planning maintenance, anyone but a national caller reloading the
configuration) is a 403. docs/security.md, "Accounts and scopes".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from alerts.model import LinkInfo, Topology
from alerts.subject import SubjectKind
from alerts.tickets import Ticket
from netwatch.inventory import Inventory
from netwatch.inventory.models import Commune
from netwatch.store import StoredWindow


class Role(enum.Enum):
    """Who a caller is, by what they look after."""

    NATIONAL = "national"  # everything
    PROVINCE = "province"  # provincial IT of one or several provinces
    ISP = "isp"  # an ISP's engineers: that ISP's circuits and tickets, across provinces


@dataclass(frozen=True, slots=True)
class Reach:
    """The provinces and ISP a caller sees; None: every one."""

    provinces: frozenset[int] | None = None
    isp: str | None = None

    @classmethod
    def of(cls, provinces: Iterable[int] | None, isp: str | None) -> Reach:
        """From a token's or account's stored restriction."""
        return cls(frozenset(provinces) if provinces else None, isp or None)

    @property
    def everything(self) -> bool:
        """Whether nothing is hidden from this caller."""
        return self.provinces is None and self.isp is None

    @property
    def role(self) -> Role:
        """The role such a reach belongs to."""
        if self.isp is not None:
            return Role.ISP
        return Role.PROVINCE if self.provinces is not None else Role.NATIONAL

    def sees(self, province: int | str | None, isp: str | None) -> bool:
        """Whether a thing in this province, of this ISP, is visible (None: of none)."""
        if self.provinces is not None and (province is None or int(province) not in self.provinces):
            return False
        return self.isp is None or isp == self.isp

    def sees_link(self, info: LinkInfo | None) -> bool:
        """Whether a link (from the topology) is visible."""
        return info is not None and self.sees(info.province, info.isp)

    def sees_commune(self, commune: Commune) -> bool:
        """Whether a commune is visible: in the provinces, and with a link of the ISP."""
        if self.provinces is not None and commune.province_code not in self.provinces:
            return False
        return self.isp is None or any(link.isp == self.isp for link in commune.links)

    def sees_ticket(self, topology: Topology, ticket: Ticket) -> bool:
        """Whether a ticket is visible: its link's (or upstream's links') province and ISP.

        A ticket of no province (a portal, NetWatch's own connectivity) is national only."""
        if self.everything:
            return True
        links = _ticket_links(topology, ticket)
        if self.isp is not None and ticket.key.kind in (SubjectKind.SITE, SubjectKind.AGENT):
            return False  # the commune's own (power, LAN, its agent): never an ISP's ticket
        if self.isp is not None:
            isps: set[str | None] = {info.isp for info in links} or {ticket.isp}
            if isps != {self.isp}:
                return False
        if self.provinces is not None:
            provinces = {int(info.province) for info in links}
            if not provinces or not provinces <= self.provinces:
                return False
        return True

    def sees_window(self, inventory: Inventory, topology: Topology, window: StoredWindow) -> bool:
        """Whether a maintenance window lies wholly in this reach (ISPs see none)."""
        return self.covers(inventory, topology, window.scope, window.target)

    def covers(self, inventory: Inventory, topology: Topology, kind: str, target: str) -> bool:
        """Whether a maintenance scope (kind, target) lies wholly in this reach: what a
        province's IT may plan or end. An ISP's engineers plan none (the province does)."""
        if self.everything:
            return True
        if self.isp is not None or self.provinces is None:
            return False
        if kind == "province":
            return target.isdigit() and int(target) in self.provinces
        if kind == "commune":
            commune = inventory.commune(target)
            return commune is not None and commune.province_code in self.provinces
        if kind == "link":
            return self.sees_link(topology.links.get(target))
        if kind == "upstream":
            under = _under_upstream(topology, target)
            return bool(under) and all(self.sees_link(info) for info in under)
        return False  # a whole ISP spans provinces: national only


def _under_upstream(topology: Topology, upstream: str) -> list[LinkInfo]:
    return [
        info
        for info in topology.links.values()
        if upstream in topology.upstream_chain(info.upstream)
    ]


def _ticket_links(topology: Topology, ticket: Ticket) -> list[LinkInfo]:
    key = ticket.key
    link = key.link_id
    if link is not None:
        info = topology.links.get(link)
        return [info] if info is not None else []
    if key.kind is SubjectKind.UPSTREAM:
        return _under_upstream(topology, key.name)
    if key.kind in (SubjectKind.SITE, SubjectKind.AGENT):  # a commune's centre or its agent
        return [info for info in topology.links.values() if info.commune == key.name]
    return []
