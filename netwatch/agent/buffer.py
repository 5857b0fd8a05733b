"""The box's bookkeeping on disk: the round counter, how far the buffer was forwarded, the drops.

The rounds themselves live in JetStream (stream ``AGENT_BUFFER`` on the box's own nats-server,
netwatch.agent.leaf); beside it, ``<data_dir>/state.json`` keeps three numbers:

* ``next_seq``: the next round's ``seq``. It is written (and synced) *before* the round is
  measured, so a seq is never used twice, even when the box loses power mid-round (a seq may
  be skipped then; the centre orders by seq and does not need them dense);
* ``forwarded``: the stream sequence of the last round the centre acknowledged. Rounds up to it
  are purged from the stream, so what the stream holds is exactly what is still to send;
* ``dropped_total``: rounds the stream discarded (its byte bound or age, oldest first) before
  they were forwarded: the stream's first sequence jumped past ``forwarded + 1``.

Writes are atomic (a temporary file, fsync, rename, fsync of the folder): after a power cut the
file is the old one or the new one, never half of each.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

__all__ = [
    "BUFFER_MAX_AGE",
    "BUFFER_STREAM",
    "BUFFER_SUBJECT",
    "BoxState",
    "BufferStats",
    "atomic_write",
    "buffer_stats",
    "ensure_buffer",
]

log = logging.getLogger("netwatch.agent.buffer")

BUFFER_STREAM: Final = "AGENT_BUFFER"
BUFFER_SUBJECT: Final = "nwa.buf"
BUFFER_MAX_AGE: Final = timedelta(days=7)  # >= 72 h; the byte bound usually comes first
_DUPLICATE_WINDOW_S: Final = 120.0


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a power cut leaves the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


@dataclass(slots=True)
class BoxState:
    """The three numbers of ``state.json`` (module docstring), saved on every change."""

    path: Path
    next_seq: int = 1
    forwarded: int = 0
    dropped_total: int = 0

    @classmethod
    def load(cls, data_dir: Path) -> BoxState:
        """The state on disk, or a fresh one (seq 1) when there is none."""
        path = data_dir / "state.json"
        state = cls(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as exc:
            # Atomic writes make this a disk fault; the buffer's last msg id still saves seq.
            log.error("box state unreadable, starting from the buffer's own numbers: %s", exc)
            return state
        with contextlib.suppress(TypeError, ValueError):
            state.next_seq = max(1, int(raw["next_seq"]))
            state.forwarded = max(0, int(raw["forwarded"]))
            state.dropped_total = max(0, int(raw["dropped_total"]))
        return state

    def save(self) -> None:
        """Write the state (atomically, synced)."""
        body = {
            "next_seq": self.next_seq,
            "forwarded": self.forwarded,
            "dropped_total": self.dropped_total,
        }
        atomic_write(self.path, json.dumps(body).encode())

    def take_seq(self) -> int:
        """The next round's seq, persisted as used before it is handed out."""
        seq = self.next_seq
        self.next_seq = seq + 1
        self.save()
        return seq


@dataclass(frozen=True, slots=True)
class BufferStats:
    """What the buffer holds that the centre has not acknowledged yet."""

    messages: int
    bytes: int
    oldest_at: datetime | None
    first_seq: int  # the stream's first sequence (last + 1 when empty)
    last_seq: int


def stream_config(max_bytes: int) -> StreamConfig:
    """AGENT_BUFFER: limits retention, bounded in bytes and age, oldest discarded first."""
    return StreamConfig(
        name=BUFFER_STREAM,
        subjects=[BUFFER_SUBJECT],
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        max_bytes=max_bytes,
        max_age=BUFFER_MAX_AGE.total_seconds(),
        duplicate_window=_DUPLICATE_WINDOW_S,
        num_replicas=1,
    )


async def ensure_buffer(js: JetStreamContext, max_bytes: int) -> None:
    """Create AGENT_BUFFER, or bring its limits in line with the settings (rounds kept)."""
    config = stream_config(max_bytes)
    try:
        info = await js.stream_info(BUFFER_STREAM)
    except nats.js.errors.NotFoundError:
        await js.add_stream(config)
        log.info("buffer stream created max_bytes=%d", max_bytes)
        return
    if info.config.max_bytes != max_bytes or info.config.max_age != config.max_age:
        await js.update_stream(config)
        log.info("buffer stream limits updated max_bytes=%d", max_bytes)


async def buffer_stats(js: JetStreamContext, forwarded: int) -> BufferStats:
    """The buffer's unforwarded rounds (everything up to ``forwarded`` is purged or purging)."""
    state = (await js.stream_info(BUFFER_STREAM)).state
    first = max(state.first_seq, forwarded + 1)
    messages = max(0, state.last_seq - first + 1) if state.messages else 0
    oldest: datetime | None = None
    if messages:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            msg = await js.get_msg(BUFFER_STREAM, seq=first, subject=BUFFER_SUBJECT, next=True)
            oldest = msg.time.astimezone(UTC) if msg.time else None
    return BufferStats(
        messages=min(messages, state.messages),
        bytes=state.bytes,
        oldest_at=oldest,
        first_seq=state.first_seq,
        last_seq=state.last_seq,
    )
