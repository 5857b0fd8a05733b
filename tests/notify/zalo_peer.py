"""A stand-in for Zalo's APIs on loopback: ZNS's send endpoint and the OA's OAuth v4 token
endpoint, with the request and answer shapes Zalo documents (docs/zalo.md), recording what
they received."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .http_peer import serving_anywhere

ACCESS_TOKEN = "zalo-access-token-0001-AbCdEf"
REFRESH_TOKEN = "zalo-refresh-token-0001-GhIjKl"
APP_ID = "4291763606161179100"
SECRET_KEY = "zalo-app-secret-MnOpQr"
HANG = "hang"  # a scripted step: take the request and answer only once released


@dataclass
class ZnsCall:
    """One request to POST /message/template."""

    access_token: str | None
    body: dict[str, Any]


@dataclass
class TokenCall:
    """One request to POST /v4/oa/access_token."""

    secret_key: str | None
    content_type: str
    form: dict[str, str]


@dataclass
class FakeZalo:
    """Answers like Zalo: -124 to a token it did not hand out, scripted answers next, else
    success with a msg_id. The token endpoint takes the current refresh token once (Zalo's are
    single-use) and hands out a new pair."""

    access_token: str = ACCESS_TOKEN
    refresh_token: str = REFRESH_TOKEN
    # Scripted steps, one per request: (status, JSON answer), (status, text: a gateway's page)
    # or HANG.
    script: list[tuple[int, dict[str, Any] | str] | str] = field(default_factory=list)
    calls: list[ZnsCall] = field(default_factory=list)
    delivered: list[ZnsCall] = field(default_factory=list)
    token_calls: list[TokenCall] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    base_url: str = ""

    async def template(self, request: web.Request) -> web.Response:
        call = ZnsCall(request.headers.get("access_token"), await request.json())
        self.calls.append(call)
        if call.access_token != self.access_token:
            return web.json_response({"error": -124, "message": "Access token invalid"})
        if self.script:
            step = self.script.pop(0)
            if step == HANG:
                await self.release.wait()
                return web.json_response({"error": -100, "message": "Unknown error"})
            assert isinstance(step, tuple)
            status, answer = step
            if isinstance(answer, str):
                return web.Response(text=answer, status=status, content_type="text/html")
            return web.json_response(answer, status=status)
        self.delivered.append(call)
        return web.json_response(
            {
                "error": 0,
                "message": "Success",
                "data": {
                    "msg_id": f"a1b2c3d4e5f6{len(self.delivered):04d}",
                    "sent_time": "1795000000000",
                    "quota": {"dailyQuota": "500", "remainingQuota": "499"},
                },
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        self.token_calls.append(
            TokenCall(request.headers.get("secret_key"), request.content_type, form)
        )
        if request.headers.get("secret_key") != SECRET_KEY or form.get("app_id") != APP_ID:
            return web.json_response(
                {"error": -14002, "error_name": "Invalid app", "error_description": "bad app"}
            )
        if (
            form.get("grant_type") != "refresh_token"
            or form.get("refresh_token") != self.refresh_token
        ):
            return web.json_response(
                {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_description": "Refresh token is invalid or expired",
                }
            )
        n = len(self.token_calls)
        self.access_token = f"zalo-access-token-{n + 1:04d}-new"
        self.refresh_token = f"zalo-refresh-token-{n + 1:04d}-new"
        return web.json_response(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_in": "90000",
            }
        )


@contextlib.asynccontextmanager
async def zalo_api() -> AsyncIterator[FakeZalo]:
    """The stand-in, serving on a free loopback port until the block ends."""
    api = FakeZalo()
    app = web.Application()
    app.router.add_post("/message/template", api.template)
    app.router.add_post("/v4/oa/access_token", api.token)
    async with serving_anywhere(app) as base_url:
        api.base_url = base_url
        try:
            yield api
        finally:
            api.release.set()  # a hung request answers, so the server stops at once
