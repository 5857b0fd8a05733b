"""Reloading the configuration from the web: `POST /api/v1/config/reload`, and SIGHUP.

`enable_reload(app, config)` (called by `netwatch run` for the single process, the alerting
core and the web workers) makes the app's lifespan build a `netwatch.reload.Reloader` for its
runtime, publish each reloaded runtime on ``app.state.runtime`` (the pages rebuild from it), and
with ``sighup=True`` reload on SIGHUP. Without it the route answers 409.

Under the supervisor (`netwatch run` without --role: ``supervisor`` is its pid) one process
alone must not reload: the route checks the file, and if it is good asks the supervisor
(SIGHUP), which checks it again and passes SIGHUP to every child; the answer is 202.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from netwatch.inventory import ConfigError, ConfigIssue, load_inventory_isolated
from netwatch.reload import Reloader, ReloadOutcome, load_checked
from netwatch.runtime import Runtime
from netwatch.web.auth import WriteCaller
from netwatch.web.reach import Role

log = logging.getLogger("netwatch.web.reload")


@dataclass(frozen=True, slots=True)
class ReloadSettings:
    """How this app reloads its configuration."""

    config: Path
    sighup: bool = False  # reload on SIGHUP (the process's main thread runs the event loop)
    supervisor: int | None = None  # under the supervisor, its pid: ask it (SIGHUP), not alone


def enable_reload(
    app: FastAPI, config: Path | str, *, sighup: bool = False, supervisor: int | None = None
) -> None:
    """Let this app reload its configuration (the API route, and SIGHUP if asked)."""
    app.state.reload_settings = ReloadSettings(Path(config), sighup, supervisor)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """After the app's own lifespan published the runtime: the reloader, and SIGHUP."""
    settings: ReloadSettings | None = getattr(app.state, "reload_settings", None)
    runtime: Runtime | None = getattr(app.state, "runtime", None)
    if settings is None or runtime is None:
        yield
        return
    reloader = Reloader(settings.config, runtime)
    reloader.on_reloaded.append(lambda new: setattr(app.state, "runtime", new))
    app.state.reloader = reloader
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[Any]] = set()

    def on_sighup() -> None:
        log.info("SIGHUP: reloading the configuration file=%s", settings.config)
        task = loop.create_task(reloader.reload(), name="netwatch-reload")
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    handled = settings.sighup and threading.current_thread() is threading.main_thread()
    if handled:
        loop.add_signal_handler(signal.SIGHUP, on_sighup)
    try:
        yield
    finally:
        if handled:
            loop.remove_signal_handler(signal.SIGHUP)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


router = APIRouter(prefix="/api/v1", lifespan=_lifespan)


class IssueView(BaseModel):
    """One mistake in the configuration, where an editor shows it."""

    file: str
    line: int
    column: int
    path: str  # the field, e.g. communes[2].links[0].isp ("" for the file itself)
    message: str


class ReloadAnswer(BaseModel):
    """The outcome of a reload."""

    status: str  # applied | refused | requested (the supervisor reloads every process)
    errors: list[IssueView] = []
    added: list[str] = []  # subject keys now measured
    removed: list[str] = []  # subject keys no longer measured
    changed: list[str] = []  # measured differently (address, credentials, labels, check)
    tickets_closed: list[str] = []  # resolved as removed from monitoring
    communes: int | None = None


def _issues(issues: tuple[ConfigIssue, ...] | list[ConfigIssue]) -> list[IssueView]:
    return [
        IssueView(
            file=i.position.file,
            line=i.position.line,
            column=i.position.column,
            path=i.path,
            message=i.message,
        )
        for i in issues
    ]


def _answer(outcome: ReloadOutcome) -> tuple[int, ReloadAnswer]:
    if not outcome.ok:
        return 422, ReloadAnswer(status="refused", errors=_issues(outcome.issues))
    diff = outcome.diff
    return 200, ReloadAnswer(
        status="applied",
        added=sorted(k.encoded for k in diff.added) if diff else [],
        removed=sorted(k.encoded for k in diff.removed) if diff else [],
        changed=sorted(k.encoded for k in diff.changed) if diff else [],
        tickets_closed=list(outcome.closed),
        communes=outcome.communes,
    )


@router.post(
    "/config/reload",
    tags=["configuration"],
    summary="Reload the configuration file",
    response_model=ReloadAnswer,
    responses={
        202: {
            "model": ReloadAnswer,
            "description": "Under the supervisor: the file is good, every process reloads it",
        },
        401: {"description": "Missing, unknown or revoked API token"},
        403: {"description": "The token lacks the write scope, or is restricted (national only)"},
        409: {"description": "This process does not reload its configuration"},
        422: {
            "model": ReloadAnswer,
            "description": "The file has mistakes; the running configuration stays",
        },
    },
)
async def reload_config(request: Request, caller: WriteCaller) -> JSONResponse:
    """Read the configuration file again and apply it; a bad file changes nothing and every
    mistake comes back with its file, line and column (422). Communes added are probed from
    the next round; removed ones stop, their open tickets resolved as removed from monitoring.
    Under the supervisor the file is checked here, then every process reloads it (202).
    National callers only: the file is every province's and ISP's."""
    caller.require_role(Role.NATIONAL)
    log.info("configuration reload asked by=%s", caller.created_by)
    status, body = await perform_reload(request.app)
    return JSONResponse(body.model_dump(), status)


async def perform_reload(app: FastAPI) -> tuple[int, ReloadAnswer]:
    """Reload as the API route and the admin view's button do: (HTTP status, answer); 409
    (HTTPException) when this process does not reload its configuration."""
    settings: ReloadSettings | None = getattr(app.state, "reload_settings", None)
    reloader: Reloader | None = getattr(app.state, "reloader", None)
    if settings is None or reloader is None:
        raise HTTPException(409, "this NetWatch process does not reload its configuration")
    if settings.supervisor is not None:
        loaded = await asyncio.to_thread(load_checked, settings.config, load_inventory_isolated)
        if isinstance(loaded, ConfigError):
            return 422, ReloadAnswer(status="refused", errors=_issues(loaded.issues))
        os.kill(settings.supervisor, signal.SIGHUP)
        return 202, ReloadAnswer(status="requested", communes=len(loaded.communes))
    return _answer(await reloader.reload())
