"""The centre's answer to an agent asking for its configuration (``nw.agent.v1.<c>.cfg``).

Every core subscribes in one queue group (``netwatch-agent-cfg``), so each request is answered
once, by any core (a standby's inventory is the same file). The commune is read from the
*subject*, which the hub lets an agent use only for its own commune (netwatch.bus.hub): an agent
can never be handed another commune's part. The answer is
``netwatch.agent.wire.encode_config(agent_config(inventory, commune))``; a commune without an
agent (or not in the inventory) gets an error reply instead: headers ``Nats-Service-Error`` (the
reason) and ``Nats-Service-Error-Code`` (404), the payload a msgpack map ``{"v": 1, "t": "err",
"d": {"error": reason}}``, which the box's ``decode_config`` refuses (it keeps its last good
configuration). Answers are built once per inventory and commune; a reload (SIGHUP, the API)
replaces the inventory (`Runtime.inventory_hooks`) and the next request gets the new one.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Final

import msgpack
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from netwatch.agent import wire
from netwatch.agent.model import SUBJECT_PREFIX, PortalConfig
from netwatch.inside.config import AgentConfigError, agent_config, portal_configs
from netwatch.inventory import Inventory

__all__ = ["CONFIG_QUEUE", "ConfigResponder"]

log = logging.getLogger("netwatch.inside.cfg")

CONFIG_QUEUE: Final = "netwatch-agent-cfg"
CONFIG_SUBJECTS: Final = f"{SUBJECT_PREFIX}.*.cfg"


class ConfigResponder:
    """Answers agents' configuration requests from the current inventory."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory
        self._answers: dict[str, tuple[bytes, dict[str, str] | None]] = {}
        self._portals: dict[str, PortalConfig] | None = None
        self.answered = 0
        self.refused = 0

    def reload(self, inventory: Inventory) -> None:
        """A reloaded inventory: answer from it from now on."""
        self._inventory = inventory
        self._answers = {}
        self._portals = None

    def answer(self, commune: str) -> tuple[bytes, dict[str, str] | None]:
        """The payload and headers (None: a configuration) for `commune`'s agent."""
        cached = self._answers.get(commune)
        if cached is not None:
            return cached
        try:
            if self._portals is None:  # the portals' CA files read once per inventory
                with contextlib.suppress(AgentConfigError):  # said per commune below
                    self._portals = portal_configs(self._inventory)
            result: tuple[bytes, dict[str, str] | None] = (
                wire.encode_config(agent_config(self._inventory, commune, self._portals)),
                None,
            )
        except AgentConfigError as exc:
            reason = str(exc)
            body = msgpack.packb({"v": wire.VERSION, "t": "err", "d": {"error": reason}})
            headers = {"Nats-Service-Error": reason, "Nats-Service-Error-Code": "404"}
            result = (bytes(body), headers)
        self._answers[commune] = result
        return result

    async def serve(self, nc: NatsClient) -> Subscription:
        """Subscribe in the queue group and answer until unsubscribed."""

        async def on_request(msg: Msg) -> None:
            parts = msg.subject.split(".")
            if len(parts) != 5 or not msg.reply:
                return
            payload, headers = self.answer(parts[3])
            if headers is None:
                self.answered += 1
            else:
                self.refused += 1
                log.warning(
                    "agent config refused commune=%s: %s", parts[3], headers["Nats-Service-Error"]
                )
            await nc.publish(msg.reply, payload, headers=headers)

        return await nc.subscribe(CONFIG_SUBJECTS, queue=CONFIG_QUEUE, cb=on_request)
