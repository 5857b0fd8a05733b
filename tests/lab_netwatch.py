"""NetWatch on a lab as the lab tests run it: short rounds whose echoes go out at once, alerting
every second (production waits 5 s between alerting ticks)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from netwatch.engine import EngineOptions
from netwatch.inventory import Inventory
from netwatch.lab import Lab
from netwatch.notify.outbox import RetryPolicy
from netwatch.web.app import create_app

QUICK_ROUNDS = EngineOptions(icmp_spacing_s=0.05, icmp_timeout_s=1.0, start_jitter_s=0.2)


def quick_app(
    lab: Lab,
    inventory: Inventory,
    data_dir: Path,
    *,
    database_url: str | None = None,
    retry: RetryPolicy | None = None,
) -> FastAPI:
    """NetWatch on the lab's config with `inventory`, quick rounds, alerting every second."""
    return create_app(
        lab.paths.config_file,
        inventory=inventory,
        options=QUICK_ROUNDS,
        data_dir=data_dir,
        database_url=database_url,
        alerting_tick_s=1.0,
        retry=retry,
    )
