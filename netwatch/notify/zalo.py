"""Zalo ZNS: ticket notices as template messages of a Zalo Official Account (docs/zalo.md).

One request per message, as Zalo documents it: ``POST {api}/message/template`` with the header
``access_token`` and the JSON body ``{"phone", "template_id", "template_data", "tracking_id"}``;
the answer is ``{"error": 0, "message": "Success", "data": {"msg_id": ...}}``, or a negative
``error`` with its ``message`` (Zalo's table: https://zalo.cloud/zns/guidelines/handle-error-code).
``tracking_id`` is the outbox item's key, the same on every retry, so a message sent twice (the
at-least-once window of outbox.py) can be matched on Zalo's side.

Outcomes, as the other channels classify theirs:

- delivered: ``error`` 0;
- tried again later: no answer, refused connection, HTTP 5xx and 429, Zalo's "unknown error,
  try again later" (-100), its quota and payment codes (-115, -137), the OA's and the template's
  daily limits (-144, -147), the night-time rule (-133), and codes NetWatch does not know (a
  notice is never dropped on a guess);
- given up (logged as ``notify.gave_up`` with the code and Zalo's message, counted in
  ``netwatch_outbox_given_up_total{channel="zalo"}``): a phone number Zalo refuses or without a
  Zalo account (-108, -118, -119), a template not approved or data it refuses (-109, -111,
  -112, -131, -132), a user who refuses the OA's messages (-114, -139), and the rest of Zalo's
  table of request and configuration errors;
- an invalid or expired access token (-124): a new one is taken with the refresh token
  (``POST {oauth}/v4/oa/access_token``, header ``secret_key``, form ``app_id``, ``grant_type=
  refresh_token``, ``refresh_token``), once, and the message is sent again with it. Zalo hands
  out a new refresh token with each access token and takes each refresh token once only, so
  the new pair is kept for the next refresh, and written to ``token_file`` when one is
  configured: a restart then starts from the pair it had, not from the spent one in the
  environment (the file names which configured token its pair descends from, so putting a new
  refresh token in the environment, after authorizing the app again, starts over from it).

Tokens never appear in an outcome or a log line, and neither does the template data (it names
the commune and the ISP's circuit; the signed ticket link is never part of it).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import aiohttp

from netwatch.inventory.secrets import Secret
from netwatch.notify.channels import (
    Delivered,
    Failed,
    FailureReason,
    SendOutcome,
    _http_exception_outcome,
    _http_status_outcome,
    _OverHttp,
    _short,
)
from netwatch.notify.messages import ZNS_FORMAT, ChannelKind

_log = logging.getLogger(__name__)

ZNS_PATH = "/message/template"
OA_TOKEN_PATH = "/v4/oa/access_token"  # noqa: S105 (a path, not a password)
# A bound of our own: no length limit for tracking_id could be read in Zalo's documentation, and
# the ids in its examples are short; a longer key is shortened (`tracking_id`).
TRACKING_ID_MAX_CHARS = 48

# Zalo's codes (https://zalo.cloud/zns/guidelines/handle-error-code; docs/zalo.md says which
# rows were read where). The token codes: -124 is ZNS's "Access token invalid"; -216 and -220
# are what integrators' code treats as an invalid and an expired (or removed) OA token.
TOKEN_ERRORS: Final = frozenset({-124, -216, -220})
QUOTA_ERRORS: Final = frozenset({-115, -137, -144, -147})  # paid for or waited out: retried
TEMPORARY_ERRORS: Final = frozenset({-100, -133})  # unknown error (retry later); night time
# Request and configuration errors: the same request fails the same way however often it goes.
PERMANENT_ERRORS: Final = frozenset(range(-143, -100)) - QUOTA_ERRORS - TEMPORARY_ERRORS - {-124}


@dataclass(frozen=True, slots=True)
class ZaloConfig:
    """A Zalo Official Account's credentials and where its APIs are (tests: a loopback peer)."""

    access_token: Secret | None
    refresh_token: Secret | None = None
    app_id: str | None = None
    secret_key: Secret | None = None
    api_base_url: str = "https://business.openapi.zalo.me"
    oauth_base_url: str = "https://oauth.zaloapp.com"
    timeout_s: float = 15.0
    token_file: Path | None = None  # where the refreshed pair is kept across restarts

    @property
    def can_refresh(self) -> bool:
        """Whether a new access token can be taken when Zalo says the old one is no good."""
        return None not in (self.refresh_token, self.app_id, self.secret_key)


def tracking_id(dedup_key: str) -> str:
    """The outbox key as Zalo's tracking_id (the same on every retry of one message); a key
    longer than Zalo takes keeps its head and ends with a hash of the whole."""
    if len(dedup_key) <= TRACKING_ID_MAX_CHARS:
        return dedup_key
    digest = hashlib.sha256(dedup_key.encode()).hexdigest()[:16]
    return f"{dedup_key[: TRACKING_ID_MAX_CHARS - 17]}~{digest}"


def zns_request(
    payload: Mapping[str, object], phone: str, delivery_id: str
) -> dict[str, object] | None:
    """The JSON body for an outbox payload (None: not a ZNS payload)."""
    template_id, data = payload.get("template_id"), payload.get("template_data")
    if payload.get("format") != ZNS_FORMAT or not isinstance(template_id, str):
        return None
    if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
        return None
    return {
        "phone": phone,
        "template_id": template_id,
        "template_data": dict(data),
        "tracking_id": tracking_id(delivery_id),
    }


def zns_outcome(status: int, answer: object) -> tuple[SendOutcome, bool]:
    """What an answer of ZNS's send API means, and whether it says the token is no good."""
    if not isinstance(answer, dict) or not isinstance(answer.get("error"), int):
        outcome = _http_status_outcome(status, "(not a ZNS answer)")
        if isinstance(outcome, Delivered):  # 2xx without an error code: not a delivery
            return Failed(
                FailureReason.SERVER_ERROR, True, f"HTTP {status} (not a ZNS answer)"
            ), False
        return outcome, False
    code: int = answer["error"]
    message = str(answer.get("message", ""))
    if code == 0 and 200 <= status < 300:
        data = answer.get("data")
        msg_id = data.get("msg_id") if isinstance(data, dict) else None
        return Delivered(f"msg_id={msg_id}"), False
    detail = _short(f"ZNS {code} {message}".strip())
    if code in TOKEN_ERRORS:
        return Failed(FailureReason.AUTH_FAILED, False, detail), True
    if code in QUOTA_ERRORS:
        return Failed(FailureReason.RATE_LIMITED, True, detail), False
    if code in TEMPORARY_ERRORS or status >= 500:
        return Failed(FailureReason.SERVER_ERROR, True, detail), False
    if code in PERMANENT_ERRORS:
        return Failed(FailureReason.REJECTED, False, detail), False
    # A code missing from the table above: kept and retried rather than dropped on a guess.
    return Failed(FailureReason.SERVER_ERROR, True, f"{detail} (code unknown to NetWatch)"), False


class ZaloChannel(_OverHttp):
    """ZNS template messages of one Official Account (recipient: the phone, 84xxxxxxxxx)."""

    def __init__(
        self,
        config: ZaloConfig,
        session: aiohttp.ClientSession,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(session, ssl_context)
        self._config = config
        self._access = config.access_token.reveal() if config.access_token else None
        self._refresh = config.refresh_token.reveal() if config.refresh_token else None
        # One refresh at a time: Zalo's refresh token is single-use, so two sends finding the
        # token expired at once must not both spend it.
        self._refreshing = asyncio.Lock()
        self._file_read = config.token_file is None
        self.refreshes = 0  # access tokens taken with the refresh token since start-up

    kind: Final = ChannelKind.ZALO  # what it sends, whatever the instance

    def _secrets(self) -> tuple[str, ...]:
        found = (self._access, self._refresh, self._config.secret_key)
        return tuple(s.reveal() if isinstance(s, Secret) else s for s in found if s)

    async def send(
        self, recipient: str, payload: Mapping[str, object], delivery_id: str
    ) -> SendOutcome:
        """Send one template message to the phone `recipient`; `delivery_id` is its tracking id."""
        body = zns_request(payload, recipient, delivery_id)
        if body is None:
            return Failed(FailureReason.BAD_PAYLOAD, False, "not a ZNS payload")
        if not self._file_read:
            await self._read_token_file()
        token = self._access
        if token is None:  # only a refresh token configured: take the first access token
            got = await self._refreshed(None)
            if isinstance(got, Failed):
                return got
            token = got
        outcome, expired = await self._post(token, body)
        if not expired:
            return outcome
        if not self._config.can_refresh:
            detail = f"{outcome.detail}; no refresh_token configured to take a new one"
            return Failed(FailureReason.AUTH_FAILED, False, _short(detail))
        got = await self._refreshed(token)
        if isinstance(got, Failed):
            return got
        outcome, expired = await self._post(got, body)
        if expired:  # a brand-new token refused: the OA or the app is not allowed ZNS
            return Failed(FailureReason.AUTH_FAILED, False, f"{outcome.detail} (after a refresh)")
        return outcome

    async def _post(self, token: str, body: dict[str, object]) -> tuple[SendOutcome, bool]:
        url = f"{self._config.api_base_url.rstrip('/')}{ZNS_PATH}"
        headers = {"access_token": token, "User-Agent": "NetWatch"}
        answered = await self._post_for_json(url, headers, json_body=body)
        if isinstance(answered, Failed):
            return answered, False
        return zns_outcome(*answered)

    async def _post_for_json(
        self,
        url: str,
        headers: dict[str, str],
        *,
        json_body: dict[str, object] | None = None,
        data: dict[str, str] | None = None,
    ) -> tuple[int, object] | Failed:
        """POST to Zalo: its status and JSON answer (None when not JSON), or why not at all."""
        timeout = aiohttp.ClientTimeout(total=self._config.timeout_s)
        try:
            async with self._session.post(
                url,
                json=json_body,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                ssl=self._ssl,
            ) as response:
                try:
                    answer = await response.json(content_type=None)
                except ValueError:
                    answer = None
                return response.status, answer
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _http_exception_outcome(exc, *self._secrets())

    async def _refreshed(self, stale: str | None) -> str | Failed:
        """A usable access token: the one another send just took, or a new one from Zalo."""
        async with self._refreshing:
            if self._access is not None and self._access != stale:
                return self._access
            if not self._config.can_refresh or self._refresh is None:
                return Failed(FailureReason.AUTH_FAILED, False, "no access token to send with")
            outcome = await self._take_token(self._refresh)
            if isinstance(outcome, Failed):
                _log.warning(
                    "notify.zalo_token_refresh_failed reason=%s detail=%s",
                    outcome.reason.value,
                    outcome.detail,
                )
                return outcome
            self._access, self._refresh = outcome
            self.refreshes += 1
            _log.info("notify.zalo_token_refreshed refreshes=%d", self.refreshes)
            await self._write_token_file()
            return self._access

    def _origin(self) -> str:
        """Which configured refresh token the kept pair descends from (a hash: the file must
        not hold the spent token itself)."""
        configured = self._config.refresh_token.reveal() if self._config.refresh_token else ""
        return hashlib.sha256(configured.encode()).hexdigest()

    async def _read_token_file(self) -> None:
        async with self._refreshing:
            if self._file_read:
                return
            self._file_read = True
            path = self._config.token_file
            assert path is not None
            try:
                text = await asyncio.to_thread(path.read_text, "utf-8")
            except FileNotFoundError:
                return
            except OSError as exc:
                _log.warning("notify.zalo_token_file_unreadable path=%s error=%s", path, exc)
                return
            try:
                kept = json.loads(text)
            except ValueError:
                kept = None
            if not isinstance(kept, dict) or not all(
                isinstance(kept.get(k), str) and kept[k]
                for k in ("origin", "access_token", "refresh_token")
            ):
                _log.warning("notify.zalo_token_file_ignored path=%s: not a token file", path)
                return
            if kept["origin"] != self._origin():
                _log.info(
                    "notify.zalo_token_file_ignored path=%s: the configured refresh token "
                    "changed since it was written",
                    path,
                )
                return
            self._access, self._refresh = kept["access_token"], kept["refresh_token"]

    async def _write_token_file(self) -> None:
        path = self._config.token_file
        if path is None or self._access is None or self._refresh is None:
            return
        document = {
            "origin": self._origin(),
            "access_token": self._access,
            "refresh_token": self._refresh,
            "refreshed_at": datetime.now(UTC).isoformat(),
        }
        try:
            await asyncio.to_thread(_write_private, path, json.dumps(document, indent=2))
        except OSError as exc:
            # Sending goes on with the pair in memory; a restart before the next successful
            # write starts from an older pair, which Zalo may refuse (docs/zalo.md).
            _log.warning("notify.zalo_token_file_not_written path=%s error=%s", path, exc)

    async def _take_token(self, refresh: str) -> tuple[str, str] | Failed:
        """Zalo's OAuth v4: a refresh token for a new access token (and a new refresh token)."""
        cfg = self._config
        secret = cfg.secret_key.reveal() if cfg.secret_key else ""
        url = f"{cfg.oauth_base_url.rstrip('/')}{OA_TOKEN_PATH}"
        form = {"app_id": cfg.app_id or "", "grant_type": "refresh_token", "refresh_token": refresh}
        answered = await self._post_for_json(url, {"secret_key": secret}, data=form)
        if isinstance(answered, Failed):
            return answered
        status, answer = answered
        # {"access_token", "refresh_token", "expires_in"}, or {"error": <negative>,
        # "error_name", "error_description"} (an expired or already used refresh token).
        if isinstance(answer, dict):
            access, new_refresh = answer.get("access_token"), answer.get("refresh_token")
            if 200 <= status < 300 and isinstance(access, str) and access:
                return access, new_refresh if isinstance(
                    new_refresh, str
                ) and new_refresh else refresh
            if status < 500 and status != 429 and answer.get("error") is not None:
                why = answer.get("error_description") or answer.get("error_name") or ""
                detail = _short(
                    f"token refresh refused: {answer.get('error')} {why}".strip(), *self._secrets()
                )
                return Failed(FailureReason.AUTH_FAILED, False, detail)
        outcome = _http_status_outcome(status, "(token refresh: not an OAuth answer)")
        if isinstance(outcome, Delivered):
            return Failed(
                FailureReason.SERVER_ERROR, True, "token refresh: no access_token in the answer"
            )
        return Failed(outcome.reason, outcome.retryable, f"token refresh: {outcome.detail}")


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically, readable by its owner only (it holds tokens)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
