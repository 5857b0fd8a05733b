"""A leader lease in the ``nw_leader`` KV bucket: one holder at a time, taken over on expiry.

The bucket's TTL (``StreamLimits.leader_ttl_s``, 10 s) is the lease: the holder renews with a
compare-and-set on the key's revision (every ``ttl / 3`` is the rule), and a holder that stops
renewing (SIGKILL, a frozen host, a lost link) loses the key when the server expires it; a
standby's ``try_acquire`` (create-if-absent) then succeeds. Every acquisition has a larger
revision than the one before (the stream's sequence), so the revision is a fencing token: a
core that stores it with its writes lets the store refuse a deposed leader's late write.

The KV lease is the choice for the core when no PostgreSQL is there (the embedded, SQLite
default); with PostgreSQL the advisory lock of netwatch.store.leader works as well. docs/bus.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import nats.js.errors
from nats.js.kv import KeyValue

__all__ = ["Lease"]


@dataclass(slots=True)
class Lease:
    """This process's claim on one lease key."""

    kv: KeyValue  # the nw_leader bucket (streams.ensure_buckets)
    holder: str  # who we are: host and pid, shown to people ("core@host-a:4242")
    key: str = "core"
    revision: int | None = None  # set while we hold it: the fencing token

    @property
    def held(self) -> bool:
        """True after a successful acquire or renew, until a renew fails or a release."""
        return self.revision is not None

    async def try_acquire(self) -> bool:
        """Take the lease if nobody holds it; True when we hold it now."""
        try:
            self.revision = await self.kv.create(self.key, self.holder.encode())
        except nats.js.errors.KeyWrongLastSequenceError:
            self.revision = None
            return False
        return True

    async def renew(self) -> bool:
        """Extend the lease; False (and not held any more) when it expired or another took it."""
        if self.revision is None:
            return False
        try:
            self.revision = await self.kv.update(self.key, self.holder.encode(), last=self.revision)
        except (nats.js.errors.KeyWrongLastSequenceError, nats.js.errors.KeyNotFoundError):
            self.revision = None
            return False
        return True

    async def holder_now(self) -> str | None:
        """Who holds the lease (None: nobody), for status pages and logs."""
        try:
            entry = await self.kv.get(self.key)
        except nats.js.errors.KeyNotFoundError:
            return None
        return entry.value.decode() if entry.value else None

    async def release(self) -> None:
        """Give the lease up at once (a clean stop), so a standby need not wait for the TTL."""
        if self.revision is None:
            return
        with contextlib.suppress(nats.js.errors.KeyWrongLastSequenceError):  # not ours any more
            await self.kv.delete(self.key, last=self.revision)
        self.revision = None
