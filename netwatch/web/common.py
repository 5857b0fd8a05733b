"""Helpers the ISP pages, the provincial IT view and the API share: reading a form (or JSON)
body, answering with a page that must not be cached or leak its address, and one POST route per
manual action on a ticket.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, Response

from netwatch.web.i18n import Lang
from netwatch.web.layout import page_response
from netwatch.web.views import ManualAction

MAX_BODY_BYTES = 16_384


async def read_fields(request: Request) -> dict[str, str] | str:
    """The query and body fields (body wins), or why the body cannot be read."""
    fields = dict(request.query_params)
    raw = await request.body()
    if not raw:
        return fields
    if len(raw) > MAX_BODY_BYTES:
        return f"the request body is larger than {MAX_BODY_BYTES} bytes"
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the request body is not UTF-8"
    if content_type == "application/json":
        try:
            data = json.loads(text)
        except ValueError:
            return "the request body is not valid JSON"
        if not isinstance(data, dict) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in data.values()
        ):
            return "the JSON body must be an object of strings (exp, sig, name, text)"
        fields.update({str(k): str(v) for k, v in data.items()})
    elif content_type in ("application/x-www-form-urlencoded", ""):
        fields.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    else:
        return "send the fields as a form or as JSON"
    return fields


def private_page(request: Request, html: str, lang: Lang, status_code: int = 200) -> Response:
    """A page that must not be cached or leak its address (signed links, sessions)."""
    response = page_response(request, html, lang, status_code=status_code)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


# A manual action, and what the API's documentation says of its route: (action, summary, text).
ActionDoc = tuple[ManualAction, str, str]


def add_action_routes(
    router: APIRouter,
    path: str,
    actions: Sequence[ActionDoc],
    endpoint: Callable[[ManualAction], Callable[..., Awaitable[Any]]],
    *,
    name: str,
    **options: Any,
) -> None:
    """A POST route per action, at `path` and named `name` with {action} filled in (the
    action's value), each answered by `endpoint(action)`; `options` go to every route."""
    for action, summary, description in actions:
        router.add_api_route(
            path.format(action=action.value),
            endpoint(action),
            methods=["POST"],
            name=name.format(action=action.value),
            summary=summary,
            description=description,
            **options,
        )
