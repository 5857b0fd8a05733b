"""Requests between processes over core NATS (not JetStream): asked, answered or not, never
stored. Two: an ICMP worker asking for a suspect link's router poll (docs/bus.md, "Probe
workers"), and a web worker handing a person's ticket action to the leading core.

``nw.cmd.v1.snmp.poll``: the request is a msgpack map ``{"v": 1, "router": "router:24848"}``
(the router's ``SubjectKey.encoded``). The SNMP worker owning that router polls it at once,
publishes the poll on its province's ``.snmp.fast`` subject, and answers
``{"v": 1, "router": ..., "shard": I, "ok": bool, "failure": str|None, "batch": bytes}``
(``batch``: the same poll as one wire message, so the asking worker's local judge sees it too).
A worker that does not own the router does not answer; no answer within the asker's timeout
(or no SNMP worker at all: "no responders") means no router poll, as without SNMP.

``nw.cmd.v1.ticket.action``: a person acknowledges, resolves or notes a ticket on a web worker
(netwatch.roles.web), which owns no ticket book. The request is ``{"v": 1, "ticket": "T-...",
"action": "acknowledge"|"resolve"|"note", "actor": {"kind": "isp"|"provincial_it"|"system",
"name": str}, "at": ISO 8601 with offset, "text": str}``. Every core subscribes; only the core
that leads alerting at that moment answers: ``{"v": 1, "outcome": "done"}``, or ``{"v": 1,
"outcome": "refused", "refusal": "already_acknowledged"|...}`` (alerts.tickets.Refusal's
values: the same refusal a local action gets). No answer in time, or no core at all ("no
responders"): nobody leads, the web answers 503 "standby" as a standby instance does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

import msgpack

from alerts.tickets import Actor, ActorKind, Refusal
from netwatch.bus.wire import WireError

__all__ = [
    "SNMP_POLL",
    "TICKET_ACTION",
    "PollReply",
    "TicketAction",
    "TicketReply",
    "decode_poll_reply",
    "decode_poll_request",
    "decode_ticket_action",
    "decode_ticket_reply",
    "encode_poll_reply",
    "encode_poll_request",
    "encode_ticket_action",
    "encode_ticket_reply",
    "snmp_queue_group",
]

SNMP_POLL: Final = "nw.cmd.v1.snmp.poll"
TICKET_ACTION: Final = "nw.cmd.v1.ticket.action"
_VERSION: Final = 1


def snmp_queue_group(index: int, count: int) -> str:
    """The queue group of SNMP workers of one shard: every shard gets each request once (one of
    its replicas does), the owner of the router answers."""
    return f"snmp-{index}-of-{count}"


def _pack(body: dict[str, Any]) -> bytes:
    """A command map of this version, as msgpack."""
    return bytes(msgpack.packb({"v": _VERSION, **body}, use_bin_type=True))


def encode_poll_request(router: str) -> bytes:
    """A poll request for one router (its encoded subject key)."""
    return _pack({"router": router})


def _map(payload: bytes) -> dict[str, Any]:
    try:
        data = msgpack.unpackb(payload, raw=False)
    except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise WireError(f"not msgpack: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("v"), int):
        raise WireError("not a command map")
    return data


def decode_poll_request(payload: bytes) -> str:
    """The router key asked for; WireError when unreadable."""
    router = _map(payload).get("router")
    if not isinstance(router, str):
        raise WireError("poll request without a router")
    return router


@dataclass(frozen=True, slots=True)
class PollReply:
    """What the SNMP worker answered."""

    router: str
    shard: int
    ok: bool  # the router answered the poll
    failure: str | None  # the SnmpFailure value when it did not
    batch: bytes  # the poll as one wire message (kind snmp, fast)


def encode_poll_reply(reply: PollReply) -> bytes:
    """The answer to a poll request."""
    return _pack(
        {
            "router": reply.router,
            "shard": reply.shard,
            "ok": reply.ok,
            "failure": reply.failure,
            "batch": reply.batch,
        }
    )


def decode_poll_reply(payload: bytes) -> PollReply:
    """A poll answer; WireError when unreadable."""
    data = _map(payload)
    try:
        return PollReply(
            router=str(data["router"]),
            shard=int(data["shard"]),
            ok=bool(data["ok"]),
            failure=None if data.get("failure") is None else str(data["failure"]),
            batch=bytes(data.get("batch") or b""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"bad poll reply: {exc!r}") from exc


# -- ticket actions -----------------------------------------------------------------------------

ActionName = Literal["acknowledge", "resolve", "note"]
_ACTIONS: Final[tuple[ActionName, ...]] = ("acknowledge", "resolve", "note")


@dataclass(frozen=True, slots=True)
class TicketAction:
    """A person's change to a ticket, to be applied by the leading core."""

    ticket: str
    action: ActionName
    actor: Actor
    at: datetime  # when the person acted (aware)
    text: str


def encode_ticket_action(action: TicketAction) -> bytes:
    """The request for one ticket action."""
    return _pack(
        {
            "ticket": action.ticket,
            "action": action.action,
            "actor": {"kind": action.actor.kind.value, "name": action.actor.name},
            "at": action.at.isoformat(),
            "text": action.text,
        }
    )


def _action_name(value: object) -> ActionName:
    for name in _ACTIONS:
        if value == name:
            return name
    raise WireError(f"unknown ticket action {value!r}")


def decode_ticket_action(payload: bytes) -> TicketAction:
    """A ticket action request; WireError when unreadable."""
    data = _map(payload)
    try:
        actor = data["actor"]
        at = datetime.fromisoformat(str(data["at"]))
        if at.tzinfo is None:
            raise ValueError("a naive time")
        return TicketAction(
            ticket=str(data["ticket"]),
            action=_action_name(data["action"]),
            actor=Actor(ActorKind(actor["kind"]), str(actor["name"])),
            at=at,
            text=str(data.get("text") or ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"bad ticket action: {exc!r}") from exc


@dataclass(frozen=True, slots=True)
class TicketReply:
    """The leading core's answer: done, or refused and why."""

    refusal: Refusal | None = None  # None: done

    @property
    def done(self) -> bool:
        """Whether the change was made."""
        return self.refusal is None


def encode_ticket_reply(reply: TicketReply) -> bytes:
    """The answer to a ticket action."""
    if reply.refusal is not None:
        return _pack({"outcome": "refused", "refusal": reply.refusal.value})
    return _pack({"outcome": "done"})


def decode_ticket_reply(payload: bytes) -> TicketReply:
    """A ticket action's answer; WireError when unreadable."""
    data = _map(payload)
    outcome = data.get("outcome")
    if outcome == "done":
        return TicketReply()
    if outcome == "refused":
        try:
            return TicketReply(Refusal(data.get("refusal")))
        except ValueError as exc:
            raise WireError(f"unknown refusal: {exc}") from exc
    raise WireError(f"unknown ticket action outcome {outcome!r}")
