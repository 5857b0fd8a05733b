"""Expiring signed links to one ticket: what lets an ISP engineer act without an account.

A link is ``{public_url}/t/{ticket_id}?exp={unix}&sig={hex}`` with ``sig`` the first 32 hex
digits (128 bits) of HMAC-SHA256(link_secret, "{ticket_id}.{exp}"). The ticket id and the expiry
are both under the signature, so changing either one invalidates the link; the signature is
compared in constant time, and checked before the expiry so that "expired" is only ever said of
a link NetWatch really issued.

Each link has an id, `link_id(ticket_id, exp, sig)`: a hash of the signed link, safe to show
and to store. The store records a link when a notice carries it and stamps its first use;
provincial IT can revoke that one link (REVOKED), opened or not, leaving the ticket's other
links valid. A link may act (acknowledge, note, resolve) only for `link_act_hours` after it was
issued (VIEW_ONLY afterwards); it may show the ticket until it expires.

The signature is a credential: `RedactLinkSecrets` replaces it with "[redacted]" in the access
log lines uvicorn writes (installed on the `uvicorn.access` logger by `install_log_redaction`).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

from netwatch.inventory.models import Notifications

SIGNATURE_HEX = 32
_EXP = re.compile(r"^[0-9]{1,11}$")  # up to year 5138: fromtimestamp never overflows
_SIG = re.compile(rf"^[0-9a-f]{{{SIGNATURE_HEX}}}$")


class LinkReason(enum.Enum):
    """Why a presented link was accepted or refused."""

    OK = "ok"
    MALFORMED = "malformed"  # exp or sig missing or not of the right shape
    BAD_SIGNATURE = "bad_signature"  # forged, or the ticket id or expiry was altered
    EXPIRED = "expired"  # a genuine link past its expiry
    REVOKED = "revoked"  # a genuine link provincial IT revoked
    VIEW_ONLY = "view_only"  # a genuine link past its time to act: it may only show the ticket


@dataclass(frozen=True, slots=True)
class SignedLink:
    """A link to one ticket, valid until expires_at."""

    url: str
    ticket_id: str
    exp: int  # unix seconds
    sig: str

    @property
    def expires_at(self) -> datetime:
        """The expiry as an aware UTC time."""
        return datetime.fromtimestamp(self.exp, UTC)


@dataclass(frozen=True, slots=True)
class LinkCheck:
    """The result of LinkSigner.verify; expires_at is set when exp could be read."""

    reason: LinkReason
    expires_at: datetime | None = None

    @property
    def ok(self) -> bool:
        """Whether the link is accepted."""
        return self.reason is LinkReason.OK


class LinkSigner:
    """Signs and verifies ticket links with the inventory's link secret."""

    def __init__(self, public_url: str, secret: str, valid_s: float) -> None:
        if not secret:
            raise ValueError("the link secret must not be empty")
        if valid_s <= 0:
            raise ValueError("valid_s must be positive")
        self._public_url = public_url.rstrip("/")
        self._key = secret.encode()
        self.valid_s = valid_s

    @classmethod
    def from_notifications(cls, notifications: Notifications) -> LinkSigner:
        """The signer the inventory's notifications section describes."""
        return cls(
            notifications.public_url,
            notifications.link_secret.reveal(),
            notifications.link_valid_days * 86400,
        )

    def signature(self, ticket_id: str, exp: int) -> str:
        """The signature of (ticket_id, exp)."""
        message = f"{ticket_id}.{exp}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:SIGNATURE_HEX]

    def sign(self, ticket_id: str, now: datetime) -> SignedLink:
        """A link to the ticket valid for valid_s from now."""
        exp = int(now.timestamp() + self.valid_s)
        sig = self.signature(ticket_id, exp)
        query = urlencode({"exp": exp, "sig": sig})
        url = f"{self._public_url}{ticket_path(ticket_id)}?{query}"
        return SignedLink(url=url, ticket_id=ticket_id, exp=exp, sig=sig)

    def verify(
        self, ticket_id: str, exp: str | int | None, sig: str | None, now: datetime
    ) -> LinkCheck:
        """Check a presented link: signature first (constant time), then expiry."""
        exp_text = str(exp) if exp is not None else ""
        sig_text = (sig or "").strip().lower()
        if not _EXP.match(exp_text) or not _SIG.match(sig_text):
            return LinkCheck(LinkReason.MALFORMED)
        exp_s = int(exp_text)
        expected = self.signature(ticket_id, exp_s)
        if not hmac.compare_digest(expected, sig_text):
            return LinkCheck(LinkReason.BAD_SIGNATURE)
        expires_at = datetime.fromtimestamp(exp_s, UTC)
        if now >= expires_at:
            return LinkCheck(LinkReason.EXPIRED, expires_at)
        return LinkCheck(LinkReason.OK, expires_at)


def ticket_path(ticket_id: str) -> str:
    """The path of a ticket's page, relative to the public URL."""
    return f"/t/{quote(ticket_id, safe='')}"


def link_id(ticket_id: str, exp: int, sig: str) -> str:
    """The id of one issued link: a hash of it (not the signature, which is a credential)."""
    text = f"netwatch-link-id|{ticket_id}|{exp}|{sig.strip().lower()}"
    return hashlib.sha256(text.encode()).hexdigest()[:20]


# sig=... (or a signature in a JSON-ish or form text) in whatever a log line carries.
_SIG_IN_TEXT = re.compile(r"(\bsig=)[^&\s\"']+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    """The text with every link signature replaced by [redacted]."""
    return _SIG_IN_TEXT.sub(rf"\1{REDACTED}", text)


class RedactLinkSecrets(logging.Filter):
    """Drops nothing; rewrites a record's message and arguments without link signatures."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact, then let the record through."""
        if isinstance(record.msg, str) and "sig=" in record.msg.lower():
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple) and any(
            isinstance(a, str) and "sig=" in a.lower() for a in record.args
        ):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        return True


ACCESS_LOGGER = "uvicorn.access"


def install_log_redaction(logger_name: str = ACCESS_LOGGER) -> None:
    """Put RedactLinkSecrets on the access logger (once; uvicorn's dictConfig keeps it)."""
    logger = logging.getLogger(logger_name)
    if not any(isinstance(f, RedactLinkSecrets) for f in logger.filters):
        logger.addFilter(RedactLinkSecrets())
