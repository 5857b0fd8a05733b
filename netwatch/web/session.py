"""Server-side sessions for the provincial IT view, its CSRF tokens, and the login form's CSRF.

Provincial IT staff log in with an API token made by `netwatch token create NAME --scope write`
(the store keeps only its SHA-256). The session is a row in the store (netwatch.store.auth),
the cookie only its random id:

    v2.{session_id}            (256 random bits; the store keeps SHA-256(session_id))

Logout deletes the row, so a copied or replayed cookie names nothing from then on; every
request also checks the token is still known, unrevoked and has the write scope, so revoking
the token ends its sessions at once. The CSRF token of the forms is random per session and kept
with it; it is accepted only from the POSTed form body (or the X-CSRF-Token header), never from
the query string, and compared in constant time. The cookie is HttpOnly and SameSite=Strict, and
Secure unless the configured public URL is plain http on loopback (`cookie_secure`).

The login form has its own CSRF check (a login CSRF would log a victim into the attacker's
session): GET /admin/login sets a pre-session cookie with a random nonce, and the form carries
HMAC(key, nonce); the key is derived by HKDF-SHA256 from the link secret with its own label
(never the link key itself). Without a link secret the key is fixed and public: the check is a
plain double-submit (the HttpOnly, SameSite=Strict cookie and the field must agree), so that it
holds across web workers.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

SESSION_COOKIE = "nw_admin"
LOGIN_CSRF_COOKIE = "nw_login"
SESSION_PATH = "/admin"
SESSION_TTL = timedelta(hours=8)
LOGIN_CSRF_TTL_S = 3600
_VERSION = "v2"
_COOKIE = re.compile(r"^v2\.([A-Za-z0-9_-]{40,64})$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_HKDF_SALT = b"netwatch-hkdf-salt-v1"
LOGIN_CSRF_LABEL = b"netwatch admin login-csrf key v2"


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: which token (or person) it was opened with, until when, and its form
    token."""

    token_id: str | None
    expires_at: datetime
    csrf: str
    user_name: str | None = None


def hkdf_sha256(secret: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 (RFC 5869) of `secret` for the purpose named by `info`."""
    prk = hmac.new(_HKDF_SALT, secret, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


def session_id_of(cookie: str | None) -> str | None:
    """The session id a cookie carries, if it has the right shape."""
    if not cookie:
        return None
    match = _COOKIE.match(cookie)
    return match.group(1) if match else None


def cookie_value(session_id: str) -> str:
    """The cookie that carries a session id."""
    return f"{_VERSION}.{session_id}"


def csrf_ok(expected: str, presented: str | None) -> bool:
    """Whether a presented CSRF token matches (constant time)."""
    return presented is not None and hmac.compare_digest(
        expected.encode(), presented.strip().encode()
    )


def cookie_secure(public_url: str | None) -> bool:
    """Whether session cookies get `Secure`: always, unless NetWatch's public URL is plain http
    on a loopback address (a developer's machine, the lab). Not decided from the request's
    scheme: behind a TLS-terminating proxy NetWatch itself sees http."""
    if public_url is None:
        return True
    parts = urlsplit(public_url)
    if parts.scheme != "http":
        return True
    host = (parts.hostname or "").lower()
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


class SessionSigner:
    """The key of the login form's CSRF token (signed double-submit)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("the key must have at least 16 bytes")
        self._key = key

    @classmethod
    def from_link_secret(cls, secret: str) -> SessionSigner:
        """A key derived from the link secret by HKDF with its own label (not the link key)."""
        return cls(hkdf_sha256(secret.encode(), LOGIN_CSRF_LABEL))

    @classmethod
    def unkeyed(cls) -> SessionSigner:
        """A fixed, public key (no link secret configured): a plain double-submit check."""
        return cls(hkdf_sha256(b"", LOGIN_CSRF_LABEL))

    @classmethod
    def random(cls) -> SessionSigner:
        """A fresh random key: its login forms end with the process."""
        return cls(secrets.token_bytes(32))

    @staticmethod
    def new_nonce() -> str:
        """The pre-session cookie's value."""
        return secrets.token_urlsafe(24)

    @staticmethod
    def nonce_ok(nonce: str | None) -> bool:
        """Whether a pre-session cookie has the shape of one NetWatch set."""
        return bool(nonce) and _NONCE.match(nonce or "") is not None

    def login_csrf(self, nonce: str) -> str:
        """The login form's CSRF field for a pre-session nonce."""
        message = f"netwatch-admin-login-csrf|{nonce}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def login_csrf_ok(self, nonce: str | None, presented: str | None) -> bool:
        """Whether the login form's field belongs to the browser's pre-session cookie."""
        if nonce is None or not self.nonce_ok(nonce):
            return False
        return csrf_ok(self.login_csrf(nonce), presented)
