"""The words for a ticket's path trace, shared by the messages and the ticket pages.

One sentence says where the path stops ("Đường đi dừng sau: POP VNPT số 1 (10.103.1.1)"), or
that it reached the subject; the hop lines are the MTR table in words.

What the ISP is shown never includes the traced address itself (the commune's monitored
address, or the node's): docs/isp-and-admin-pages.md. ``hide_target`` takes it out of a path
(the hop keeps its inventory name); the routers on the way keep their addresses, which is what
tells the ISP where its network drops the traffic.
"""

from __future__ import annotations

from dataclasses import replace

from alerts.model import PathHop, PathTrace


def hide_target(path: PathTrace) -> PathTrace:
    """The path without the traced address: no ``target``, the target's hop by name only."""
    hops = tuple(replace(h, address=None) if h.address == path.target else h for h in path.hops)
    return replace(path, target="", hops=hops)


def hops_json(path: PathTrace) -> list[dict[str, object]]:
    """The hops as JSON: the stored evidence and the webhook body say them alike."""
    return [
        {
            "ttl": hop.ttl,
            "address": hop.address,
            "name": hop.name,
            "rtt_s": hop.rtt_s,
            "sent": hop.sent,
            "received": hop.received,
        }
        for hop in path.hops
    ]


def hop_label(hop: PathHop) -> str:
    """'POP VNPT số 1 (10.103.1.1)'; the address or the name alone when that is all there is."""
    if not hop.received:
        return "*"
    if hop.name and hop.address:
        return f"{hop.name} ({hop.address})"
    return hop.name or hop.address or "*"


def format_rtt(seconds: float, *, vi: bool) -> str:
    """'0,05 ms' / '12.3 ms': enough digits for a LAN hop and for a slow line."""
    ms = seconds * 1000
    text = f"{ms:.2f}" if ms < 10 else f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"
    return f"{text.replace('.', ',') if vi else text} ms"


def path_summary(path: PathTrace, *, vi: bool) -> str:
    """Where the path stops, in one sentence (or that it got through)."""
    if path.reached:
        last = path.hops[-1] if path.hops else None
        label = hop_label(last) if last is not None else "*"
        where = label if label != "*" else path.target
        if vi:
            return f"Đường đi thông suốt đến {where or 'đích'}: đích đã phản hồi."
        return f"The path gets through to {where or 'the target'}: the target answered."
    last = path.last_hop()
    if last is None:
        if vi:
            return "Đường đi dừng ngay sau NetWatch: không chặng nào phản hồi."
        return "The path stops right after NetWatch: no hop answered."
    if vi:
        return f"Đường đi dừng sau: {hop_label(last)}"
    return f"The path stops after: {hop_label(last)}"


def hop_line(hop: PathHop, *, vi: bool) -> str:
    """'2. 10.103.1.1 — POP VNPT số 1 — 0,02 ms (3/3 phản hồi)'."""
    if not hop.received:
        silent = "không phản hồi" if vi else "no answer"
        return f"{hop.ttl}. * — {silent} (0/{hop.sent})"
    parts = [f"{hop.ttl}. {hop.address}" if hop.address else f"{hop.ttl}. {hop.name or '?'}"]
    if hop.name and hop.address:
        parts.append(hop.name)
    if hop.rtt_s is not None:
        parts.append(format_rtt(hop.rtt_s, vi=vi))
    answered = "phản hồi" if vi else "answered"
    return " — ".join(parts) + f" ({hop.received}/{hop.sent} {answered})"


def path_arrows(path: PathTrace) -> str:
    """The hops on one line for chat: '10.103.0.2 → POP VNPT số 1 (10.103.1.1) → *'."""
    return " → ".join(hop_label(hop) for hop in path.hops)
