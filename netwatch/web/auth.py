"""Bearer tokens for the write API: verified against the store, which keeps only their hashes.

Failed authentications (a wrong bearer token, a wrong token on the admin login form) are
logged at WARNING with the client's address and the token's public id (never the token),
counted in `netwatch_auth_failures_total{kind}`, and limited by a token bucket per client
address and per token id (`AuthGuard`): after `FAILURE_BURST` failures at once, and beyond
`FAILURE_BURST` a minute, the client gets 429 with Retry-After before its credentials are even
looked at. The buckets are per process, in memory.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry, Counter

from alerts.tickets import Actor, ActorKind
from netwatch.store import ApiToken, TokenReason
from netwatch.store.tokens import TOKEN_ID_HEX, TOKEN_PREFIX
from netwatch.web.deps import require_runtime, runtime_or_none

log = logging.getLogger("netwatch.web.auth")

FAILURE_BURST = 10  # failures allowed at once, per address and per token id
FAILURE_RATE_PER_S = FAILURE_BURST / 60.0  # and refilled at this many a minute
MAX_BUCKETS = 10_000  # tracked keys at most (full buckets are forgotten first)
AUTH_KINDS = ("login", "bearer")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


@dataclass
class AuthGuard:
    """Token buckets of failed authentications per key (address, token id), on a clock."""

    clock: Callable[[], float] = time.monotonic
    burst: float = FAILURE_BURST
    rate_per_s: float = FAILURE_RATE_PER_S
    _buckets: dict[str, _Bucket] = field(default_factory=dict)
    _counter: Counter | None = None

    def _level(self, key: str, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            return _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        return bucket

    def retry_after(self, keys: list[str]) -> int | None:
        """Seconds until these keys may try again; None when they may now."""
        now = self.clock()
        worst = 0.0
        for key in keys:
            bucket = self._level(key, now)
            if bucket.tokens < 1:
                worst = max(worst, (1 - bucket.tokens) / self.rate_per_s)
        return max(1, math.ceil(worst)) if worst > 0 else None

    def failed(self, keys: list[str]) -> None:
        """One failure for each key."""
        now = self.clock()
        for key in keys:
            bucket = self._level(key, now)
            bucket.tokens -= 1
            self._buckets[key] = bucket
        if len(self._buckets) > MAX_BUCKETS:
            for key in [k for k, b in self._buckets.items() if b.tokens >= self.burst - 1]:
                del self._buckets[key]
            while len(self._buckets) > MAX_BUCKETS:
                del self._buckets[next(iter(self._buckets))]

    def attach(self, registry: CollectorRegistry) -> None:
        """Count failures in `registry` (once)."""
        if self._counter is None:
            self._counter = Counter(
                "netwatch_auth_failures",
                "Failed authentications: wrong admin login tokens, wrong bearer tokens",
                ["kind"],
                registry=registry,
            )
            for kind in AUTH_KINDS:
                self._counter.labels(kind)

    def count(self, kind: str) -> None:
        """Count one failure of this kind."""
        if self._counter is not None:
            self._counter.labels(kind).inc()


def auth_guard(request: Request) -> AuthGuard:
    """The app's guard (made on first use; a test may put its own, with a fake clock)."""
    guard: AuthGuard | None = getattr(request.app.state, "auth_guard", None)
    if guard is None:
        guard = AuthGuard()
        request.app.state.auth_guard = guard
    runtime = runtime_or_none(request)
    if runtime is not None:
        guard.attach(runtime.registry)
    return guard


def client_address(request: Request) -> str:
    """The client's address as uvicorn saw it (after its trusted proxies)."""
    return request.client.host if request.client is not None else "-"


def token_id_of(token: str) -> str:
    """The public id of a presented token, or "-" when it has no such shape (never the rest)."""
    sep = len(TOKEN_PREFIX) + TOKEN_ID_HEX
    head = token[len(TOKEN_PREFIX) : sep]
    if token.startswith(TOKEN_PREFIX) and len(head) == TOKEN_ID_HEX and head.isalnum():
        return head
    return "-"


def guard_keys(request: Request, user: str) -> list[str]:
    """The buckets a request is limited by: its address, and the token id it names."""
    keys = [f"addr:{client_address(request)}"]
    if user != "-":
        keys.append(f"user:{user}")
    return keys


def record_failure(request: Request, kind: str, user: str, reason: str) -> None:
    """Log (WARNING), count and rate-limit one failed authentication."""
    guard = auth_guard(request)
    guard.failed(guard_keys(request, user))
    guard.count(kind)
    log.warning(
        "authentication failed: kind=%s address=%s token_id=%s reason=%s path=%s",
        kind,
        client_address(request),
        user,
        reason,
        request.url.path,
    )


WRITE_SCOPE = "write"
# auto_error=False: a missing token must be our 401 with a clear message, not FastAPI's own.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token made with `netwatch token create NAME --scope write`.",
)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="netwatch"'}
_REFUSED = {
    TokenReason.MALFORMED: "invalid API token: not a NetWatch token (nw_…)",
    TokenReason.UNKNOWN: "invalid API token: no such token",
    TokenReason.MISMATCH: "invalid API token: no such token",
    TokenReason.REVOKED: "API token revoked",
}


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling the write API: the token's public part, and the ticket-log actor."""

    token: ApiToken

    @property
    def actor(self) -> Actor:
        """Provincial IT, named after the token."""
        return Actor(ActorKind.PROVINCIAL_IT, self.token.name)

    @property
    def created_by(self) -> str:
        """How the store names this caller in what it writes."""
        return f"token:{self.token.name}"


async def require_write(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a write endpoint: 401 without a valid token, 403 without the scope."""
    if credentials is None:
        raise HTTPException(
            401, "missing API token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    # After the 401: a caller without a token learns that first, even while NetWatch starts.
    store = require_runtime(request).store
    user = token_id_of(credentials.credentials)
    retry = auth_guard(request).retry_after(guard_keys(request, user))
    if retry is not None:
        raise HTTPException(
            429,
            "too many failed authentications from this address; try again later",
            headers={"Retry-After": str(retry)},
        )
    check = await store.verify_token(credentials.credentials, WRITE_SCOPE)
    if check.reason is TokenReason.MISSING_SCOPE:
        raise HTTPException(403, f"API token lacks the {WRITE_SCOPE!r} scope")
    if not check.ok or check.info is None:
        record_failure(request, "bearer", user, check.reason.value)
        raise HTTPException(
            401, _REFUSED.get(check.reason, "invalid API token"), headers=_CHALLENGE
        )
    return Caller(check.info)


WriteCaller = Annotated[Caller, Depends(require_write)]
