"""Bearer tokens for the write API: verified against the store, which keeps only their hashes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from alerts.tickets import Actor, ActorKind
from netwatch.store import ApiToken, TokenReason
from netwatch.web.deps import require_runtime

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
    check = await store.verify_token(credentials.credentials, WRITE_SCOPE)
    if check.reason is TokenReason.MISSING_SCOPE:
        raise HTTPException(403, f"API token lacks the {WRITE_SCOPE!r} scope")
    if not check.ok or check.info is None:
        raise HTTPException(
            401, _REFUSED.get(check.reason, "invalid API token"), headers=_CHALLENGE
        )
    return Caller(check.info)


WriteCaller = Annotated[Caller, Depends(require_write)]
