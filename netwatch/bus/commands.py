"""Requests between processes over core NATS (not JetStream): asked, answered or not, never
stored. One so far: an ICMP worker asking for a suspect link's router poll (docs/bus.md,
"Probe workers").

``nw.cmd.v1.snmp.poll``: the request is a msgpack map ``{"v": 1, "router": "router:24848"}``
(the router's ``SubjectKey.encoded``). The SNMP worker owning that router polls it at once,
publishes the poll on its province's ``.snmp.fast`` subject, and answers
``{"v": 1, "router": ..., "shard": I, "ok": bool, "failure": str|None, "batch": bytes}``
(``batch``: the same poll as one wire message, so the asking worker's local judge sees it too).
A worker that does not own the router does not answer; no answer within the asker's timeout
(or no SNMP worker at all: "no responders") means no router poll, as without SNMP.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from netwatch.bus.wire import WireError

__all__ = [
    "SNMP_POLL",
    "PollReply",
    "decode_poll_reply",
    "decode_poll_request",
    "encode_poll_reply",
    "encode_poll_request",
    "snmp_queue_group",
]

SNMP_POLL: Final = "nw.cmd.v1.snmp.poll"
_VERSION: Final = 1


def snmp_queue_group(index: int, count: int) -> str:
    """The queue group of SNMP workers of one shard: every shard gets each request once (one of
    its replicas does), the owner of the router answers."""
    return f"snmp-{index}-of-{count}"


def encode_poll_request(router: str) -> bytes:
    """A poll request for one router (its encoded subject key)."""
    return bytes(msgpack.packb({"v": _VERSION, "router": router}, use_bin_type=True))


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
    return bytes(
        msgpack.packb(
            {
                "v": _VERSION,
                "router": reply.router,
                "shard": reply.shard,
                "ok": reply.ok,
                "failure": reply.failure,
                "batch": reply.batch,
            },
            use_bin_type=True,
        )
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
