"""The core's keeper of the agents' door (docs/agent-centre.md): who may connect, who was refused.

* **Users from the credential table.** Every ``every_s`` (and at start) the active credentials
  are read from the store and rendered into the hub's users file (netwatch.bus.hub); when that
  changes, nats-server is told to reload (SIGHUP to the pid in its pid file) and, once its
  configuration load time moved, every live leafnode connection of an agent no longer in the
  file is closed (``$SYS.REQ.SERVER.<id>.KICK``): a reload does not re-check leafnode
  connections (measured on 2.15), so a revoked box would otherwise keep forwarding until its
  next reconnect.
* **Refusals, from the server's own advisories** on its system account, not from its log file
  nor its monitoring endpoint. Chosen because the advisories name the *authenticated* user of
  every connection (the log's permission-violation line gives only a connection number, and
  ``/leafz`` neither the user nor connections already closed), they are JSON with a versioned
  type, pushed as they happen (no tailing, no log rotation to follow), and the kick above needs
  the system account anyway. Followed: ``$SYS.SERVER.*.CLIENT.AUTH.ERR`` (a leafnode login
  refused: ``bad_secret`` for a known agent, ``revoked``, ``unknown_agent``) and
  ``$SYS.ACCOUNT.*.DISCONNECT`` (a leafnode closed for a violation: ``permission``; nats-server
  closes a leaf that publishes outside its permissions, and the box's own nats-server never
  sends such a message: it applies the hub's permissions itself, so this is a tampered box).
  Each refusal is counted (``netwatch_agent_refusals_total{reason}``) and logged with the agent
  id, the first of each agent and reason at once, then at most once a minute with the count.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from netwatch.bus.hub import SYSTEM_USER, USERS_FILE, AgentUser, render_users, write_users
from netwatch.store.agents import AgentCredential

__all__ = ["REASONS", "AgentHub", "HubMetrics"]

log = logging.getLogger("netwatch.inside.hub")

REASONS: Final = ("bad_secret", "revoked", "unknown_agent", "permission")
_LEAF: Final = "Leafnode"
_LOG_EVERY_S: Final = 60.0
_RELOAD_WAIT_S: Final = 5.0


_USER_LINE: Final = re.compile(r'\{user: "([^"]+)"')


def _users_in(path: Path) -> set[str]:
    """The users a users file names (an earlier core's rendering)."""
    try:
        return set(_USER_LINE.findall(path.read_text(encoding="utf-8")))
    except OSError:
        return set()


@dataclass(slots=True)
class _Throttle:
    last: dict[tuple[str, str], float] = field(default_factory=dict)
    since: dict[tuple[str, str], int] = field(default_factory=dict)


class AgentHub:
    """Keeps the hub's agent users in step with the store and counts refusals."""

    def __init__(
        self,
        store: Any,  # netwatch.store.Store (list_agent_keys)
        nats_dir: Path,
        token: str,
        *,
        every_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._dir = nats_dir
        self._token = token
        self._every_s = every_s
        self._clock = clock
        self.refusals: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.connected: dict[int, str] = {}  # leafnode connection id -> agent
        self.active: dict[str, AgentCredential] = {}
        self._known: dict[str, AgentCredential] = {}
        self._throttle = _Throttle()
        self._nc: NatsClient | None = None
        self._server_id: str | None = None
        self._applied: str | None = None  # the users text the server has loaded
        self.syncs = 0  # rendered and reloaded
        self.kicked = 0

    @property
    def users_file(self) -> Path:
        """The file nats-server's authorization includes."""
        return self._dir / USERS_FILE

    async def open(self, url: str) -> None:
        """Connect as the system user and follow the advisories."""
        self._nc = await nats.connect(
            url,
            user=SYSTEM_USER,
            password=self._token,
            name="netwatch-agent-hub",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
        )
        await self._nc.subscribe("$SYS.SERVER.*.CLIENT.AUTH.ERR", cb=self._on_auth_error)
        await self._nc.subscribe("$SYS.ACCOUNT.*.CONNECT", cb=self._on_connect)
        await self._nc.subscribe("$SYS.ACCOUNT.*.DISCONNECT", cb=self._on_disconnect)
        await self._nc.flush()

    async def close(self) -> None:
        """Stop following (the users file stays as it is)."""
        nc, self._nc = self._nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5.0)

    async def run(self, stop: asyncio.Event) -> None:
        """Sync now, then every `every_s` until `stop`."""
        while not stop.is_set():
            try:
                await self.sync()
            except Exception:  # the store or the bus is down: try again next time
                log.exception("agent users not synced")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._every_s)

    async def sync(self) -> bool:
        """Render the users from the store; reload the server and close removed agents'
        connections when they changed. True when something changed."""
        keys = await self._store.list_agent_keys()
        self._known = {k.agent: k for k in keys}
        active = {k.agent: k for k in keys if k.active}
        users = [AgentUser(k.agent, k.commune, k.secret_bcrypt) for k in active.values()]
        for user in users:
            if (problem := user.problem()) is not None:
                log.error("agent left out of the hub's users agent=%r: %s", user.agent, problem)
        text = render_users(self._token, users)
        if text == self._applied:
            return False
        if self._applied is None:
            # This process's first sync: the server admits whoever the file names now (written
            # by an earlier core, or empty at the server's start).
            self.active = {a: k for a, k in self._known.items() if a in _users_in(self.users_file)}
        removed = set(self.active) - set(active)
        changed = {a for a, k in active.items() if a in self.active and self.active[a] != k}
        write_users(self.users_file, text)
        await self._reload()  # raises when the server cannot be asked: the next sync retries
        self._applied = text
        self.syncs += 1
        self.active = active
        log.info("agent users loaded agents=%d removed=%s", len(active), ",".join(sorted(removed)))
        # A replaced key (revoked, then added again) must log in again with the new secret.
        await self._kick(removed | changed)
        return True

    async def _varz(self) -> dict[str, Any]:
        assert self._nc is not None
        reply = await self._nc.request("$SYS.REQ.SERVER.PING.VARZ", b"{}", timeout=2.0)
        data: dict[str, Any] = json.loads(reply.data)
        self._server_id = data["server"]["id"]
        return data

    async def _reload(self) -> None:
        """SIGHUP the server and wait until it loaded the new configuration."""
        before = (await self._varz())["data"].get("config_load_time") if self._nc else None
        pid_file = self._dir / "nats-server.pid"
        try:
            os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
        except (OSError, ValueError) as exc:
            raise RuntimeError(f"nats-server not reloaded (pid file {pid_file}): {exc!r}") from exc
        if self._nc is None:
            return
        deadline = self._clock() + _RELOAD_WAIT_S
        while self._clock() < deadline:
            with contextlib.suppress(nats.errors.Error, ValueError, KeyError):
                if (await self._varz())["data"].get("config_load_time") != before:
                    return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"nats-server did not reload its users within {_RELOAD_WAIT_S:.0f} s")

    async def _kick(self, agents: Iterable[str]) -> None:
        """Close the live leafnode connections of these agents (and of any leafnode whose
        agent this process never learnt: it connected before this core started; it logs in
        again at once if it may)."""
        gone = set(agents)
        if not gone or self._nc is None:
            return
        reply = await self._nc.request("$SYS.REQ.SERVER.PING.LEAFZ", b"{}", timeout=2.0)
        data = json.loads(reply.data)
        server = data["server"]["id"]
        for leaf in data.get("data", {}).get("leafs", []):
            cid = int(leaf["id"])
            agent = self.connected.get(cid)
            if agent is not None and agent not in gone:
                continue
            await self._nc.request(
                f"$SYS.REQ.SERVER.{server}.KICK", json.dumps({"cid": cid}).encode(), timeout=2.0
            )
            self.kicked += 1
            log.warning("agent connection closed agent=%s cid=%d: key revoked", agent, cid)

    # -- advisories ------------------------------------------------------------------------

    @staticmethod
    def _client(msg: Msg) -> tuple[dict[str, Any], dict[str, Any]] | None:
        try:
            data = json.loads(msg.data)
            client = data["client"]
        except (ValueError, KeyError, TypeError):
            return None
        if not isinstance(client, dict) or client.get("kind") != _LEAF:
            return None
        return data, client

    async def _on_connect(self, msg: Msg) -> None:
        parsed = self._client(msg)
        if parsed is None:
            return
        _, client = parsed
        agent = str(client.get("user", ""))
        self.connected[int(client.get("id", 0))] = agent
        known = self._known.get(agent)
        log.info(
            "agent connected agent=%s commune=%s address=%s",
            agent,
            known.commune if known else "?",
            client.get("host"),
        )

    async def _on_disconnect(self, msg: Msg) -> None:
        parsed = self._client(msg)
        if parsed is None:
            return
        data, client = parsed
        agent = self.connected.pop(int(client.get("id", 0)), None) or str(client.get("user", ""))
        reason = str(data.get("reason", ""))
        if "Violation" in reason:
            self._refused(agent, "permission", client, reason)
        else:
            log.info("agent disconnected agent=%s reason=%s", agent, reason)

    async def _on_auth_error(self, msg: Msg) -> None:
        parsed = self._client(msg)
        if parsed is None:
            return
        data, client = parsed
        agent = str(client.get("user", ""))
        known = self._known.get(agent)
        if known is None:
            why = "unknown_agent"
        elif not known.active:
            why = "revoked"
        else:
            why = "bad_secret"
        self._refused(agent, why, client, str(data.get("reason", "")))

    def _refused(self, agent: str, why: str, client: dict[str, Any], detail: str) -> None:
        self.refusals[why] = self.refusals.get(why, 0) + 1
        key = (agent, why)
        t = self._throttle
        now = self._clock()
        last = t.last.get(key)
        if last is not None and now - last < _LOG_EVERY_S:
            t.since[key] = t.since.get(key, 0) + 1
            return
        more = t.since.pop(key, 0)
        t.last[key] = now
        log.warning(
            "agent refused agent=%s reason=%s address=%s detail=%s%s",
            agent or "?",
            why,
            client.get("host"),
            detail,
            f" ({more} more since the last line)" if more else "",
        )


class HubMetrics(Collector):
    """The hub's agent series on the core's /metrics."""

    def __init__(self, hub: AgentHub) -> None:
        self._hub = hub

    def collect(self) -> Iterable[Metric]:
        refusals = CounterMetricFamily(
            "netwatch_agent_refusals",
            "Agent connections or messages the hub refused, by reason",
            labels=["reason"],
        )
        for reason, n in sorted(self._hub.refusals.items()):
            refusals.add_metric([reason], n)
        yield refusals
        yield GaugeMetricFamily(
            "netwatch_agent_keys_active", "Agents with an active key", value=len(self._hub.active)
        )
        yield GaugeMetricFamily(
            "netwatch_agent_leafnodes",
            "Agents' leafnode connections to the hub now",
            value=len(self._hub.connected),
        )
