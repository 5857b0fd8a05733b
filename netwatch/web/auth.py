"""Bearer tokens for the API: verified against the store, which keeps only their hashes.

Every /api/v1 route needs a token: `read` for the reads, `write` (which reads too) for the
changes; a token restricted to provinces or one ISP sees only those (netwatch.web.reach).

Failed authentications (a wrong bearer token, a wrong token on the admin login form) are
logged at WARNING with the client's address and the token's public id (never the token),
counted in `netwatch_auth_failures_total{kind}`, and limited by a token bucket per client
address and per token id (`AuthGuard`): after `FAILURE_BURST` failures at once, and beyond
`FAILURE_BURST` a minute, the client gets 429 with Retry-After before its credentials are even
looked at. The buckets and the counts are in the store (revision 0006), shared by every process
on the database: W web workers allow what one does, and the core's /metrics counts them all.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Protocol

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.tickets import Actor, ActorKind
from netwatch.store import ApiToken, TokenReason, User
from netwatch.store.tokens import TOKEN_ID_HEX, TOKEN_PREFIX
from netwatch.web.deps import require_runtime, runtime_or_none
from netwatch.web.reach import Reach, Role

log = logging.getLogger("netwatch.web.auth")

FAILURE_BURST = 10  # failures allowed at once, per address and per token id
FAILURE_RATE_PER_S = FAILURE_BURST / 60.0  # and refilled at this many a minute
TOTALS_TIMEOUT_S = 2.0  # /metrics waits this long at most for the store's totals
AUTH_KINDS = ("login", "bearer")


class AuthBuckets(Protocol):
    """Where the buckets and totals live: the store, shared by every process on it."""

    async def auth_buckets(self, keys: Sequence[str]) -> dict[str, tuple[float, float]]:
        """key -> (tokens left, counted at unix s), for the keys that have a bucket."""
        ...

    async def spend_auth_buckets(
        self, keys: Sequence[str], kind: str, now_s: float, burst: float, rate_per_s: float
    ) -> None:
        """Count one failure of `kind` against each key."""
        ...

    async def auth_failure_totals(self) -> dict[str, int]:
        """Failures ever counted, per kind."""
        ...


@dataclass
class AuthGuard:
    """Token buckets of failed authentications per key (address, token id), kept in the store
    (netwatch.store.auth) so that every web worker judges by all of them, on a wall clock
    (shared across processes; a test gives its own)."""

    clock: Callable[[], float] = time.time
    burst: float = FAILURE_BURST
    rate_per_s: float = FAILURE_RATE_PER_S
    totals: dict[str, int] = field(default_factory=dict)  # the last read, for /metrics
    _registered: bool = False

    async def retry_after(self, store: AuthBuckets, keys: list[str]) -> int | None:
        """Seconds until these keys may try again; None when they may now."""
        now = self.clock()
        worst = 0.0
        for tokens, at_s in (await store.auth_buckets(keys)).values():
            level = min(self.burst, tokens + (now - at_s) * self.rate_per_s)
            if level < 1:
                worst = max(worst, (1 - level) / self.rate_per_s)
        return max(1, math.ceil(worst)) if worst > 0 else None

    async def failed(self, store: AuthBuckets, keys: list[str], kind: str) -> None:
        """One failure of this kind for each key, and in the kind's total."""
        await store.spend_auth_buckets(keys, kind, self.clock(), self.burst, self.rate_per_s)
        self.totals[kind] = self.totals.get(kind, 0) + 1

    async def refresh(self, store: AuthBuckets) -> None:
        """Read every process's totals (before /metrics is rendered)."""
        self.totals = await store.auth_failure_totals()

    def attach(self, registry: CollectorRegistry) -> None:
        """Export `netwatch_auth_failures_total{kind}` from the totals in `registry` (once)."""
        if not self._registered:
            registry.register(_FailureCounter(self))
            self._registered = True


class _FailureCounter(Collector):
    """The guard's totals as a counter: every process's failures, as the store counts them."""

    def __init__(self, guard: AuthGuard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(
            "netwatch_auth_failures",
            "Failed authentications (wrong admin login tokens, wrong bearer tokens), "
            "counted by every NetWatch process on this database",
            labels=["kind"],
        )
        totals = self._guard.totals
        for kind in sorted({*AUTH_KINDS, *totals}):
            family.add_metric([kind], totals.get(kind, 0))
        yield family


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


async def refresh_failure_totals(request: Request, store: AuthBuckets) -> None:
    """The guard's totals read again for /metrics; a failing store keeps the last ones."""
    guard = auth_guard(request)
    try:
        await asyncio.wait_for(guard.refresh(store), TOTALS_TIMEOUT_S)
    except Exception:  # the scrape goes on with what was read last
        log.debug("auth failure totals unavailable", exc_info=True)


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


NAME_PREFIX = "name:"  # a person's login in the buckets' keys: user:name:NAME


def guard_keys(request: Request, user: str) -> list[str]:
    """The buckets a request is limited by: its address, and the token id it names."""
    keys = [f"addr:{client_address(request)}"]
    if user != "-":
        keys.append(f"user:{user}")
    return keys


async def record_failure(
    request: Request, store: AuthBuckets, kind: str, user: str, reason: str
) -> None:
    """Log (WARNING), count and rate-limit one failed authentication."""
    await auth_guard(request).failed(store, guard_keys(request, user), kind)
    # `user` is a token's public id, or "name:NAME" for a person's login (never a password).
    name = user.removeprefix(NAME_PREFIX) if user.startswith(NAME_PREFIX) else "-"
    log.warning(
        "authentication failed: kind=%s address=%s token_id=%s user=%s reason=%s path=%s",
        kind,
        client_address(request),
        "-" if name != "-" else user,
        name,
        reason,
        request.url.path,
    )


READ_SCOPE = "read"
WRITE_SCOPE = "write"
SCOPES = (READ_SCOPE, WRITE_SCOPE)
# auto_error=False: a missing token must be our 401 with a clear message, not FastAPI's own.
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description=(
        "An API token made with `netwatch token create NAME --scope read` (or `--scope write`, "
        "which reads too), optionally restricted with `--province N` or `--isp ID`."
    ),
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
    """Who is calling: a machine token or a logged-in person, what they see (`reach`) and
    whether they may change things."""

    name: str
    reach: Reach
    can_write: bool
    token: ApiToken | None = None
    user: User | None = None

    @classmethod
    def of_token(cls, token: ApiToken) -> Caller:
        """A caller with this token's scopes and restriction."""
        return cls(
            token.name,
            Reach.of(token.provinces, token.isp),
            WRITE_SCOPE in token.scopes,
            token=token,
        )

    @classmethod
    def of_user(cls, user: User) -> Caller:
        """A person: every role acts on the tickets it sees (ISP engineers too)."""
        return cls(user.name, Reach.of(user.provinces, user.isp), True, user=user)

    @property
    def role(self) -> Role:
        """National, province or ISP."""
        return self.reach.role

    @property
    def actor(self) -> Actor:
        """Who the ticket's log names: an ISP's engineer, or provincial IT."""
        kind = ActorKind.ISP if self.role is Role.ISP else ActorKind.PROVINCIAL_IT
        return Actor(kind, self.name)

    @property
    def created_by(self) -> str:
        """How the store names this caller in what it writes."""
        return f"user:{self.name}" if self.user is not None else f"token:{self.name}"

    def require_role(self, *roles: Role) -> None:
        """403 unless the caller has one of these roles."""
        if self.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise HTTPException(
                403, f"this needs a {allowed} caller; this one is {self.role.value}"
            )


async def _bearer_caller(
    request: Request, credentials: HTTPAuthorizationCredentials | None, scope: str
) -> Caller:
    """The token's caller: 401 without a valid token, 429 after too many failures, 403
    without the scope (a write token reads too)."""
    if credentials is None:
        raise HTTPException(
            401, "missing API token: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    # After the 401: a caller without a token learns that first, even while NetWatch starts.
    store = require_runtime(request).store
    user = token_id_of(credentials.credentials)
    retry = await auth_guard(request).retry_after(store, guard_keys(request, user))
    if retry is not None:
        raise HTTPException(
            429,
            "too many failed authentications from this address; try again later",
            headers={"Retry-After": str(retry)},
        )
    check = await store.verify_token(credentials.credentials)
    if not check.ok or check.info is None:
        await record_failure(request, store, "bearer", user, check.reason.value)
        raise HTTPException(
            401, _REFUSED.get(check.reason, "invalid API token"), headers=_CHALLENGE
        )
    granted = set(check.info.scopes)
    if scope not in granted and not (scope == READ_SCOPE and WRITE_SCOPE in granted):
        raise HTTPException(403, f"API token lacks the {scope!r} scope")
    return Caller.of_token(check.info)


async def require_read(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a read endpoint: a token with the read (or write) scope."""
    return await _bearer_caller(request, credentials, READ_SCOPE)


async def require_write(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller of a write endpoint: 401 without a valid token, 403 without the scope."""
    return await _bearer_caller(request, credentials, WRITE_SCOPE)


ReadCaller = Annotated[Caller, Depends(require_read)]
WriteCaller = Annotated[Caller, Depends(require_write)]
