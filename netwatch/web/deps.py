"""The one way a request handler reaches the running NetWatch: `RuntimeDep`.

The app's lifespan (netwatch.web.app) enters `netwatch.runtime.open_runtime` and puts the
finished runtime on ``app.state.runtime``; until then (or without a lifespan) the dependency
raises `NotReady`, a 503. The app answers it in one place, as each family of pages always did:
JSON for the API, a page for the admin view (netwatch.web.app's NotReady handler).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from netwatch.runtime import Runtime

STARTING = "NetWatch is starting; try again in a few seconds"


class NotReady(HTTPException):
    """The runtime is not built yet (or no longer): 503, try again shortly."""

    def __init__(self) -> None:
        super().__init__(503, STARTING)


def runtime_or_none(request: Request) -> Runtime | None:
    """The running NetWatch, or None while it is starting (the one place that asks)."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    return runtime


def require_runtime(request: Request) -> Runtime:
    """The running NetWatch; NotReady (503) while it is starting."""
    runtime = runtime_or_none(request)
    if runtime is None:
        raise NotReady
    return runtime


RuntimeDep = Annotated[Runtime, Depends(require_runtime)]
"""A route parameter of this type receives the finished runtime (or the route answers 503)."""
