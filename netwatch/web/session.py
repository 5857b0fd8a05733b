"""Signed session cookies for the provincial IT view, and the CSRF token of its forms.

Provincial IT staff log in with an API token made by `netwatch token create NAME --scope write`
(the store keeps only its SHA-256). The session is a cookie, not a server-side record:

    v1.{token_id}.{expires_unix}.{nonce}.{mac}

with mac = HMAC-SHA256(key, "netwatch-admin-session|v1|token_id|expires|nonce"). It names the
token, never contains it; every request checks the token is still known, unrevoked and has the
write scope, so revoking the token ends its sessions at once. The CSRF token of the forms is
HMAC(key, "netwatch-admin-csrf|" + nonce): tied to the session, checked in constant time, and
the cookie is SameSite=Strict and HttpOnly on top of it.

The key is derived from the notification link secret when one is configured (sessions survive a
restart and are valid on every instance sharing the configuration); otherwise it is a random key
made at start-up and sessions end with the process.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SESSION_COOKIE = "nw_admin"
SESSION_PATH = "/admin"
SESSION_TTL = timedelta(hours=8)
_VERSION = "v1"
_COOKIE = re.compile(
    r"^v1\.([0-9a-f]{8,64})\.([0-9]{1,11})\.([A-Za-z0-9_-]{16,64})\.([0-9a-f]{64})$"
)


class SessionReason(enum.Enum):
    """Why a session cookie was accepted or refused."""

    OK = "ok"
    MISSING = "missing"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Session:
    """A verified session: which token it was opened with, until when, and its form token."""

    token_id: str
    expires_at: datetime
    nonce: str
    csrf: str


@dataclass(frozen=True, slots=True)
class SessionCheck:
    """The result of SessionSigner.verify; session is set when reason is OK."""

    reason: SessionReason
    session: Session | None = None


class SessionSigner:
    """Issues and verifies session cookies and CSRF tokens with one secret key."""

    def __init__(self, key: bytes, ttl: timedelta = SESSION_TTL) -> None:
        if len(key) < 16:
            raise ValueError("the session key must have at least 16 bytes")
        self._key = key
        self.ttl = ttl

    @classmethod
    def from_link_secret(cls, secret: str) -> SessionSigner:
        """A signer whose key is derived from the link secret (domain-separated from links)."""
        key = hmac.new(secret.encode(), b"netwatch-admin-session-key", hashlib.sha256).digest()
        return cls(key)

    @classmethod
    def random(cls) -> SessionSigner:
        """A signer with a fresh random key: its sessions end with the process."""
        return cls(secrets.token_bytes(32))

    def _mac(self, token_id: str, exp: int, nonce: str) -> str:
        message = f"netwatch-admin-session|{_VERSION}|{token_id}|{exp}|{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def _csrf(self, nonce: str) -> str:
        message = f"netwatch-admin-csrf|{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def issue(self, token_id: str, now: datetime) -> tuple[str, Session]:
        """A new session for the token: the cookie value and the session it stands for."""
        exp = int((now + self.ttl).timestamp())
        nonce = secrets.token_urlsafe(18)
        cookie = f"{_VERSION}.{token_id}.{exp}.{nonce}.{self._mac(token_id, exp, nonce)}"
        session = Session(token_id, datetime.fromtimestamp(exp, UTC), nonce, self._csrf(nonce))
        return cookie, session

    def verify(self, cookie: str | None, now: datetime) -> SessionCheck:
        """Check a presented cookie: shape, then signature (constant time), then expiry."""
        if not cookie:
            return SessionCheck(SessionReason.MISSING)
        match = _COOKIE.match(cookie)
        if match is None:
            return SessionCheck(SessionReason.MALFORMED)
        token_id, exp_text, nonce, mac = match.groups()
        exp = int(exp_text)
        if not hmac.compare_digest(self._mac(token_id, exp, nonce), mac):
            return SessionCheck(SessionReason.BAD_SIGNATURE)
        expires_at = datetime.fromtimestamp(exp, UTC)
        if now >= expires_at:
            return SessionCheck(SessionReason.EXPIRED)
        return SessionCheck(
            SessionReason.OK, Session(token_id, expires_at, nonce, self._csrf(nonce))
        )

    @staticmethod
    def csrf_ok(session: Session, presented: str | None) -> bool:
        """Whether a form's CSRF field matches the session (constant time)."""
        return presented is not None and hmac.compare_digest(session.csrf, presented.strip())
