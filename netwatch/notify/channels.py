"""Delivery channels: SMTP (STARTTLS, AUTH), signed webhook and Telegram, with typed outcomes.

Every `send` returns `Delivered` or `Failed`; a failure says why and whether trying again later
can help (server errors, timeouts, refused connections, SMTP 4xx) or not (webhook 4xx, SMTP 5xx,
wrong password). Secrets (SMTP password, webhook secret, bot token) never appear in an outcome.

Webhook signature (how a receiver verifies a delivery):

1. Read the raw request body as bytes, before any JSON parsing.
2. Take the headers ``X-NetWatch-Timestamp`` (Unix seconds) and ``X-NetWatch-Signature``
   (``sha256=<hex>``).
3. Compute ``HMAC-SHA256(shared_secret, timestamp + "." + raw_body)`` as lowercase hex and compare
   it with the header value in constant time (``hmac.compare_digest``).
4. Refuse timestamps more than 5 minutes away from your clock: a captured request cannot be
   replayed later, because changing the timestamp breaks the signature.
5. De-duplicate on ``X-NetWatch-Delivery`` (also ``delivery_id`` in the body): delivery is
   at-least-once, so the same delivery may arrive twice (e.g. after a timeout on our side).
   The id is ASCII (`webhook_delivery_id`): ``<ticket>/<event>/<channel>/<contact>``, the
   contact as a slug of its name and a hash of it, so it is the same on every retry of one
   message and differs between two contacts of one receiver (even with names alike as slugs).

`verify_webhook` below does steps 2-4 for Python receivers.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import json
import re
import ssl
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

import aiohttp
import aiosmtplib

from netwatch.inventory.secrets import Secret
from netwatch.notify.clock import Clock
from netwatch.notify.documents import DocumentEmail, build_document_email
from netwatch.notify.messages import (
    CHAT_FORMAT,
    WEBHOOK_SCHEMA,
    ChannelKind,
    EmailContent,
    build_email,
)

SIGNATURE_HEADER = "X-NetWatch-Signature"
TIMESTAMP_HEADER = "X-NetWatch-Timestamp"
DELIVERY_HEADER = "X-NetWatch-Delivery"
DEFAULT_WEBHOOK_TOLERANCE_S = 300.0
_DETAIL_MAX_CHARS = 300


class FailureReason(enum.Enum):
    """Why a send did not deliver."""

    CONNECTION_REFUSED = "connection_refused"
    TIMEOUT = "timeout"  # no connection in time: not delivered
    UNANSWERED = "unanswered"  # sent, but no answer in time: maybe delivered (and processed)
    CONNECTION_ERROR = "connection_error"  # reset, disconnected, unreachable, DNS
    TLS_ERROR = "tls_error"  # handshake or certificate verification failed
    SERVER_ERROR = "server_error"  # HTTP 5xx
    RATE_LIMITED = "rate_limited"  # HTTP 429 / 408
    REJECTED = "rejected"  # HTTP 4xx (other than 408/429), 3xx
    AUTH_FAILED = "auth_failed"  # SMTP 5xx to AUTH: wrong user or password
    TEMPORARY_REJECT = "temporary_reject"  # SMTP 4xx
    PERMANENT_REJECT = "permanent_reject"  # SMTP 5xx
    PROTOCOL = "protocol"  # the server lacks what the config requires (STARTTLS, AUTH)
    BAD_PAYLOAD = "bad_payload"  # the outbox item is not a message this channel can send
    UNKNOWN_CHANNEL = "unknown_channel"  # no channel of that name is configured
    UNEXPECTED = "unexpected"  # a bug; retried so that nothing is lost


@dataclass(frozen=True, slots=True)
class Delivered:
    """The receiver confirmed it has the message."""

    detail: str = ""


@dataclass(frozen=True, slots=True)
class Failed:
    """The message was not delivered (this time)."""

    reason: FailureReason
    retryable: bool
    detail: str = ""
    retry_after_s: float | None = None  # the receiver's own hint (Telegram 429)


SendOutcome = Delivered | Failed


class Channel(Protocol):
    """Sends one rendered message to one recipient."""

    @property
    def kind(self) -> ChannelKind:
        """Which rendering this channel sends (see `messages.outbox_payload`)."""
        ...

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        """Deliver once; `delivery_id` is stable across retries of the same message."""
        ...


def _short(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text if len(text) <= _DETAIL_MAX_CHARS else text[: _DETAIL_MAX_CHARS - 1] + "…"


# --- SMTP -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """An SMTP submission server."""

    host: str
    port: int
    from_address: str
    username: str | None = None
    password: Secret | None = None
    starttls: bool = True  # required when True: never AUTH or send over plain text
    ca_file: Path | None = None  # a private CA (tests, internal relays); None: system CAs
    timeout_s: float = 30.0
    local_hostname: str | None = None


def _smtp_code_outcome(code: int, text: str, *, auth: bool = False) -> Failed:
    if 400 <= code < 500:
        return Failed(FailureReason.TEMPORARY_REJECT, True, text)
    if auth:
        return Failed(FailureReason.AUTH_FAILED, False, text)
    return Failed(FailureReason.PERMANENT_REJECT, False, text)


class SmtpChannel:
    """E-mail through an SMTP server with STARTTLS and AUTH (aiosmtplib)."""

    def __init__(self, config: SmtpConfig) -> None:
        self._config = config
        # Built once: reading the CA file is blocking work that belongs at load time.
        self._tls = ssl.create_default_context(
            cafile=str(config.ca_file) if config.ca_file else None
        )

    kind: Final = ChannelKind.EMAIL  # what it sends, whatever the instance

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        """Send one e-mail (a ticket notice, or a mail with files such as the monthly report);
        `delivery_id` is not needed: the Message-ID identifies a resend."""
        cfg = self._config
        content = EmailContent.from_payload(payload)
        if content is not None:
            message = build_email(content, cfg.from_address, recipient)
        else:
            documents = DocumentEmail.from_payload(payload)
            if documents is None:
                return Failed(FailureReason.BAD_PAYLOAD, False, "not an e-mail payload")
            message = build_document_email(documents, cfg.from_address, recipient)
        password = cfg.password.reveal() if cfg.password else None
        try:
            responses, _ = await aiosmtplib.send(
                message,
                sender=cfg.from_address,
                recipients=[recipient],
                hostname=cfg.host,
                port=cfg.port,
                username=cfg.username,
                password=password,
                start_tls=cfg.starttls,
                tls_context=self._tls if cfg.starttls else None,
                timeout=cfg.timeout_s,
                local_hostname=cfg.local_hostname,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            return _smtp_code_outcome(exc.code, _short(f"{exc.code} {exc.message}"), auth=True)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            text = _short("; ".join(f"{r.code} {r.message}" for r in exc.recipients))
            return _smtp_code_outcome(max(codes, default=550), text)
        except aiosmtplib.SMTPResponseException as exc:
            return _smtp_code_outcome(exc.code, _short(f"{exc.code} {exc.message}"))
        except aiosmtplib.SMTPTimeoutError as exc:
            return Failed(FailureReason.TIMEOUT, True, _short(exc.message))
        except aiosmtplib.SMTPConnectError as exc:
            return _connect_failure(exc, exc.message)
        except aiosmtplib.SMTPServerDisconnected as exc:
            return Failed(FailureReason.CONNECTION_ERROR, True, _short(exc.message))
        except aiosmtplib.SMTPNotSupported as exc:
            return Failed(FailureReason.PROTOCOL, False, _short(exc.message))
        except ssl.SSLError as exc:
            return Failed(FailureReason.TLS_ERROR, True, _short(str(exc)))
        except aiosmtplib.SMTPException as exc:
            return Failed(FailureReason.PROTOCOL, False, _short(exc.message))
        except TimeoutError:
            return Failed(FailureReason.TIMEOUT, True, f"no answer within {cfg.timeout_s} s")
        except OSError as exc:
            return _connect_failure(exc, str(exc))
        response = responses.get(recipient)
        return Delivered(f"{response.code} {response.message}" if response else "accepted")


def _connect_failure(exc: BaseException, text: str) -> Failed:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError):
            return Failed(FailureReason.CONNECTION_REFUSED, True, _short(text))
        if isinstance(cause, ssl.SSLError):
            return Failed(FailureReason.TLS_ERROR, True, _short(text))
        if isinstance(cause, TimeoutError):
            return Failed(FailureReason.TIMEOUT, True, _short(text))
        cause = cause.__cause__
    return Failed(FailureReason.CONNECTION_ERROR, True, _short(text))


# --- HTTP (webhook, Telegram) ---------------------------------------------------------------


def _http_exception_outcome(exc: Exception, *secrets: str) -> Failed:
    # Built from the exception type and the connector's own text (host and port, no path),
    # and scrubbed anyway: a request URL can carry a token (Telegram puts it in the path).
    name = type(exc).__name__
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return Failed(FailureReason.TLS_ERROR, True, _short(f"{name}: {exc}", *secrets))
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, ConnectionRefusedError):
            return Failed(FailureReason.CONNECTION_REFUSED, True, _short(str(exc), *secrets))
        return Failed(FailureReason.CONNECTION_ERROR, True, _short(str(exc), *secrets))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return Failed(FailureReason.TIMEOUT, True, _short(f"{name}: {exc}", *secrets))
    if isinstance(exc, TimeoutError):  # aiohttp's others subclass it; the total one is plain
        # Connected, so the request may have gone out whole and be processed right now.
        return Failed(FailureReason.UNANSWERED, True, f"{name}: no answer in time")
    return Failed(FailureReason.CONNECTION_ERROR, True, _short(f"{name}: {exc}", *secrets))


def _http_status_outcome(status: int, text: str) -> SendOutcome:
    if 200 <= status < 300:
        return Delivered(f"HTTP {status}")
    detail = _short(f"HTTP {status} {text}".strip())
    if status >= 500:
        return Failed(FailureReason.SERVER_ERROR, True, detail)
    if status in (408, 429):
        return Failed(FailureReason.RATE_LIMITED, True, detail)
    return Failed(FailureReason.REJECTED, False, detail)


# --- webhook --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WebhookConfig:
    """A receiver of signed JSON: one URL, one shared secret.

    `timeout_s` bounds the whole request (connection, body, answer): 30 s, what GitHub
    Enterprise and Grafana allow a receiver (github.com allows 10 s). `connect_timeout_s` bounds
    getting a connection; running out of it means not delivered, while running out of the
    whole means maybe delivered (`FailureReason.UNANSWERED`, bounded retries: outbox.py).
    """

    url: str
    secret: Secret
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0


class WebhookVerdict(enum.Enum):
    """What a receiver concludes about a delivery it got."""

    VALID = "valid"
    MISSING_HEADERS = "missing_headers"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    STALE = "stale"  # outside the timestamp tolerance: possibly a replay


def sign_webhook(secret: str | bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: 'sha256=' + HMAC-SHA256(secret, timestamp '.' body) in hex."""
    key = secret.encode() if isinstance(secret, str) else secret
    digest = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify_webhook(
    secret: str | bytes,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    now: datetime,
    tolerance_s: float = DEFAULT_WEBHOOK_TOLERANCE_S,
) -> WebhookVerdict:
    """Check a delivery's signature and freshness (the raw body, the two headers, your clock)."""
    if not signature or not timestamp:
        return WebhookVerdict.MISSING_HEADERS
    if not timestamp.isdigit() or not signature.startswith("sha256="):
        return WebhookVerdict.MALFORMED
    try:
        expected = sign_webhook(secret, timestamp, body)
    except UnicodeEncodeError:
        return WebhookVerdict.MALFORMED
    # Signature first, in constant time: freshness must not leak whether the MAC was right.
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return WebhookVerdict.BAD_SIGNATURE
    if abs(now.timestamp() - int(timestamp)) > tolerance_s:
        return WebhookVerdict.STALE
    return WebhookVerdict.VALID


_NOT_TOKEN = re.compile(r"[^A-Za-z0-9._:-]+")  # kept as is in an id part: RFC 9110 token chars


def _ascii_slug(text: str) -> str:
    """'Nguyễn Văn Đức' -> 'nguyen-van-duc': diacritics dropped, the rest joined by '-'."""
    folded = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return _NOT_TOKEN.sub("-", plain).strip("-").lower()


def webhook_delivery_id(dedup_key: str) -> str:
    """The ASCII id a receiver de-duplicates on, from the outbox item's key.

    The key is ``ticket/event/channel/recipient``, and a webhook's recipient is the contact's
    name (Vietnamese, non-ASCII: not for an HTTP header). The name becomes a slug (at most 24
    characters, for people reading logs) and 12 hex digits of its SHA-256 (what tells two
    contacts apart): ``NW-…/3/webhook:9f…/nguyen-van-duc-1a2b3c4d5e6f``. Deterministic, so a
    retry, or the same item sent again after a restart, carries the same id.
    """
    *head, recipient = dedup_key.split("/", 3)
    digest = hashlib.sha256(recipient.encode()).hexdigest()[:12]
    slug = _ascii_slug(recipient)[:24].strip("-")
    parts = [_NOT_TOKEN.sub("-", part) for part in head]
    return "/".join([*parts, f"{slug}-{digest}" if slug else digest])


def webhook_body(payload: Mapping[str, object], delivery_id: str) -> bytes | None:
    """The exact bytes POSTed for an outbox payload (None: not a webhook payload)."""
    body = payload.get("body")
    if payload.get("format") != WEBHOOK_SCHEMA or not isinstance(body, Mapping):
        return None
    document = {**body, "delivery_id": delivery_id}
    return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


class _OverHttp:
    """A channel that sends through the shared aiohttp session, with TLS checked against
    `ssl_context` (a private CA) or, without one, the system CAs."""

    def __init__(
        self, session: aiohttp.ClientSession, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self._session = session
        self._ssl: ssl.SSLContext | bool = ssl_context if ssl_context is not None else True


class WebhookChannel(_OverHttp):
    """POSTs the notice as JSON, signed with HMAC-SHA256 (see the module docstring)."""

    def __init__(
        self,
        config: WebhookConfig,
        session: aiohttp.ClientSession,
        clock: Clock,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(session, ssl_context)
        self._config = config
        self._clock = clock

    kind: Final = ChannelKind.WEBHOOK  # what it sends, whatever the instance

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        """POST once; `recipient` is only a label, the URL is the channel's."""
        delivery_id = webhook_delivery_id(delivery_id)
        raw = webhook_body(payload, delivery_id)
        if raw is None:
            return Failed(FailureReason.BAD_PAYLOAD, False, "not a webhook payload")
        secret = self._config.secret.reveal()
        timestamp = str(int(self._clock.now().timestamp()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "NetWatch",
            SIGNATURE_HEADER: sign_webhook(secret, timestamp, raw),
            TIMESTAMP_HEADER: timestamp,
            DELIVERY_HEADER: delivery_id,
        }
        timeout = aiohttp.ClientTimeout(
            total=self._config.timeout_s, connect=self._config.connect_timeout_s
        )
        try:
            # No redirects: a 3xx means the configured URL is wrong, and following it would
            # hand the signed body to wherever it points.
            async with self._session.post(
                self._config.url,
                data=raw,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                ssl=self._ssl,
            ) as response:
                text = (await response.text(errors="replace"))[:200]
                return _http_status_outcome(response.status, text)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _http_exception_outcome(exc, secret)


# --- Telegram -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    """A Telegram bot; the API base URL is configurable so tests can use a local server."""

    token: Secret
    api_base_url: str = "https://api.telegram.org"
    timeout_s: float = 10.0


class TelegramChannel(_OverHttp):
    """Chat messages through the Telegram Bot API `sendMessage` (recipient: the chat id)."""

    def __init__(
        self,
        config: TelegramConfig,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(session, ssl_context)
        self._config = config

    kind: Final = ChannelKind.TELEGRAM  # what it sends, whatever the instance

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        """Send one plain-text message to the chat `recipient`."""
        text = payload.get("text")
        if payload.get("format") != CHAT_FORMAT or not isinstance(text, str):
            return Failed(FailureReason.BAD_PAYLOAD, False, "not a chat payload")
        token = self._config.token.reveal()
        url = f"{self._config.api_base_url.rstrip('/')}/bot{token}/sendMessage"
        body = {"chat_id": recipient, "text": text, "link_preview_options": {"is_disabled": True}}
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            async with self._session.post(
                url, json=body, timeout=timeout, allow_redirects=False, ssl=self._ssl
            ) as response:
                status = response.status
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _http_exception_outcome(exc, token)
        return _telegram_outcome(status, answer, token)


def _telegram_outcome(status: int, answer: object, token: str) -> SendOutcome:
    # Bot API answers {"ok": bool, "result"?: ..., "description"?: str,
    # "parameters"?: {"retry_after": int}} (https://core.telegram.org/bots/api#making-requests).
    if not isinstance(answer, dict):
        return _http_status_outcome(status, "(not a Bot API answer)")
    description = str(answer.get("description", ""))
    if status == 200 and answer.get("ok") is True:
        result = answer.get("result")
        message = result.get("message_id") if isinstance(result, dict) else None
        return Delivered(f"message_id={message}")
    outcome = _http_status_outcome(status, _short(description, token))
    if isinstance(outcome, Delivered):  # 2xx without ok: not a delivery we can trust
        return Failed(FailureReason.SERVER_ERROR, True, _short(description, token))
    parameters = answer.get("parameters")
    retry_after = parameters.get("retry_after") if isinstance(parameters, dict) else None
    if isinstance(retry_after, int | float) and not isinstance(retry_after, bool):
        return Failed(outcome.reason, outcome.retryable, outcome.detail, float(retry_after))
    return outcome
