"""Reloading the configuration of a running NetWatch (SIGHUP, or `POST /api/v1/config/reload`).

The file is read and validated again; a bad one changes nothing (the old configuration keeps
running) and every mistake is reported with its file, line and column. A good one is applied
to the live parts of the runtime, in place, so what did not change keeps its state:

* the plan is compiled again and compared with the running one (`netwatch.plan.diff_plans`);
* health takes the new topology and thresholds and forgets the subjects that left
  (`HealthMonitor.reload`); alerting resolves their tickets as "removed from monitoring", never
  as recovered (`Alerting.reload`, `alerts.tickets.TicketBook.unmonitor`);
* the metrics, the per-link history and the path tracer follow the new plan; the engine starts
  its rounds again on it (added targets are probed from the next round, removed ones no more);
* the bus feed's plan index (a core or web worker) through `Runtime.plan_hooks`, and what
  follows the inventory itself (the commune agents' metrics) through `Runtime.inventory_hooks`;
* then a new `Runtime` value (the same parts, the new inventory and plan) is handed to
  `on_reloaded`: the web publishes it, and the pages rebuild from it.

What is not reloaded (a restart takes it): the store, the listen addresses, the notification
channels (SMTP server, webhook secret, Telegram bot, Zalo tokens), and probe kinds that had no
target at all when the process started (their clients were never opened).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from alerts.tickets import Unmonitored
from netwatch.inventory import ConfigError, ConfigIssue, Inventory, load_inventory_isolated
from netwatch.plan import PlanDiff, compile_plan, diff_plans
from netwatch.runtime import Runtime

log = logging.getLogger("netwatch.reload")

Loader = Callable[[Path], Inventory]


@dataclass(frozen=True, slots=True)
class ReloadOutcome:
    """What one reload did: applied, or refused with every mistake found."""

    ok: bool
    at: datetime
    issues: tuple[ConfigIssue, ...] = ()  # the file's mistakes (ok False)
    diff: PlanDiff | None = None  # what is measured differently (ok True)
    closed: tuple[str, ...] = ()  # tickets resolved as removed from monitoring
    communes: int = 0  # in the configuration now running


def load_checked(path: Path, load: Loader = load_inventory_isolated) -> Inventory | ConfigError:
    """The inventory of `path`, or the ConfigError listing every mistake (never raised: a
    file that cannot even be read is a mistake at its first line)."""
    try:
        return load(path)
    except ConfigError as exc:
        return exc


class Reloader:
    """Reloads one runtime's configuration from its file; one reload at a time."""

    def __init__(
        self,
        path: Path | str,
        runtime: Runtime,
        *,
        load: Loader = load_inventory_isolated,
    ) -> None:
        self.path = Path(path)
        self.runtime = runtime
        self._load = load
        self._lock = asyncio.Lock()
        # Called with the new runtime value once a reload is applied (the web publishes it).
        self.on_reloaded: list[Callable[[Runtime], None]] = []
        self.last: ReloadOutcome | None = None
        self.last_success_at: datetime | None = None
        self.outcomes = {"success": 0, "failure": 0}
        runtime.registry.register(ReloadMetrics(self))

    async def reload(self) -> ReloadOutcome:
        """Read the file again and apply it, or keep the running configuration and say why."""
        async with self._lock:
            started = time.monotonic()
            # Off the event loop: a national file takes seconds to read and validate.
            loaded = await asyncio.to_thread(load_checked, self.path, self._load)
            now = datetime.now(UTC)
            if isinstance(loaded, ConfigError):
                outcome = ReloadOutcome(False, now, issues=tuple(loaded.issues))
                log.error(
                    "configuration not reloaded, the running one stays file=%s errors=%d",
                    self.path,
                    len(loaded.issues),
                )
                for issue in loaded.issues:
                    log.error("configuration error %s", issue)
            else:
                outcome = await self._apply(loaded, now)
                self.last_success_at = now
                log.warning(
                    "configuration reloaded file=%s communes=%d added=%d removed=%d "
                    "changed=%d tickets_closed=%d took_s=%.2f",
                    self.path,
                    outcome.communes,
                    len(outcome.diff.added) if outcome.diff else 0,
                    len(outcome.diff.removed) if outcome.diff else 0,
                    len(outcome.diff.changed) if outcome.diff else 0,
                    len(outcome.closed),
                    time.monotonic() - started,
                )
            self.last = outcome
            self.outcomes["success" if outcome.ok else "failure"] += 1
            return outcome

    async def _apply(self, inventory: Inventory, now: datetime) -> ReloadOutcome:
        rt = self.runtime
        plan = compile_plan(inventory)
        diff = diff_plans(rt.plan, plan)
        # Health forgets the removed subjects and alerting is told at once (no await between):
        # an evaluation running meanwhile closes them as removed, never as recovered.
        removed = rt.health.reload(inventory, now)
        rt.alerting.unmonitor_soon(removed)
        rt.collector.reload(plan)
        rt.ops.reload(inventory, plan)
        rt.history.add_links([t.link.id for t in plan.icmp if t.link is not None])
        if rt.utilization is not None:
            rt.utilization.add_links([i.link.id for job in plan.snmp for i in job.interfaces])
        for hook in rt.plan_hooks:
            hook(plan)
        for inventory_hook in rt.inventory_hooks:
            inventory_hook(inventory)
        await rt.engine.reload(plan)
        actions = await rt.alerting.reload(inventory, removed, now)
        closed = tuple(sorted({a.ticket.id for a in actions if isinstance(a, Unmonitored)}))
        self.runtime = dataclasses.replace(rt, inventory=inventory, plan=plan)
        for publish in self.on_reloaded:
            publish(self.runtime)
        return ReloadOutcome(True, now, diff=diff, closed=closed, communes=len(inventory.communes))


class ReloadMetrics(Collector):
    """The outcome of configuration reloads, for Prometheus (docs/configuration.md)."""

    def __init__(self, reloader: Reloader) -> None:
        self._reloader = reloader

    def collect(self) -> Iterator[Metric]:
        r = self._reloader
        success = GaugeMetricFamily(
            "netwatch_config_reload_success",
            "1 if the last configuration reload was applied, 0 if it was refused (bad file)",
        )
        success.add_metric([], 0.0 if r.last is not None and not r.last.ok else 1.0)
        last = GaugeMetricFamily(
            "netwatch_config_last_reload_timestamp_seconds",
            "When the configuration was last reloaded (applied or refused), Unix time",
        )
        if r.last is not None:
            last.add_metric([], r.last.at.timestamp())
        applied = GaugeMetricFamily(
            "netwatch_config_last_reload_success_timestamp_seconds",
            "When a configuration reload was last applied, Unix time",
        )
        if r.last_success_at is not None:
            applied.add_metric([], r.last_success_at.timestamp())
        total = CounterMetricFamily(
            "netwatch_config_reloads", "Configuration reloads by outcome", labels=("outcome",)
        )
        for outcome, count in sorted(r.outcomes.items()):
            total.add_metric([outcome], count)
        yield from (success, last, applied, total)
