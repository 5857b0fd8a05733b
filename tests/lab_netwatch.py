"""NetWatch on a lab as the lab tests run it: short rounds whose echoes go out at once, alerting
every second (production waits 5 s between alerting ticks)."""

from __future__ import annotations

from functools import partial

from netwatch.engine import EngineOptions
from netwatch.web.app import create_app

QUICK_ROUNDS = EngineOptions(icmp_spacing_s=0.05, icmp_timeout_s=1.0, start_jitter_s=0.2)

# create_app with the lab tests' engine and alerting tick; give it config, inventory, data_dir.
quick_app = partial(create_app, options=QUICK_ROUNDS, alerting_tick_s=1.0)
