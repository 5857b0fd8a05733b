"""Page helpers the ISP pages and the provincial IT view share: reading a form (or JSON) body,
and answering with a page that must not be cached or leak its address.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

from fastapi import Request, Response

from netwatch.web.i18n import Lang
from netwatch.web.layout import page_response

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
