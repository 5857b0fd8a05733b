"""The centre's answer to an agent's configuration request: its own commune's part only (the
subject decides, and the hub lets a box ask only for its own commune), an error reply for a
commune without an agent, and the reloaded inventory's part after a reload."""

from __future__ import annotations

from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client

from netwatch.agent import wire
from netwatch.inside.cfg import ConfigResponder
from netwatch.inside.config import agent_config
from netwatch.inventory import load_inventory
from tests.agent.centre import INVENTORY, WITHOUT_AGENT, running_leaf, write_inventory
from tests.agent.test_centre_hub import TOKEN, Centre, centre
from tests.inventory.test_loader import ENV

__all__ = ["centre"]


def _inventory(folder: Path, text: str = INVENTORY):  # type: ignore[no-untyped-def]
    folder.mkdir(parents=True, exist_ok=True)
    return load_inventory(write_inventory(folder, text), environ=ENV)


async def test_each_commune_gets_its_own_part_and_reloads_are_followed(
    nc: Client, tmp_path: Path
) -> None:
    inventory = _inventory(tmp_path / "a")
    responder = ConfigResponder(inventory)
    sub = await responder.serve(nc)
    try:
        reply = await nc.request("nw.agent.v1.24848.cfg", b"", timeout=2.0)
        config = wire.decode_config(reply.data)
        assert (config.commune, config.agent) == ("24848", "24848-agent")
        assert [p.source for p in config.paths] == ["10.110.10.130"]  # not 24846's
        assert config == agent_config(inventory, "24848")
        refused = await nc.request(f"nw.agent.v1.{WITHOUT_AGENT}.cfg", b"", timeout=2.0)
        assert refused.headers is not None
        assert refused.headers["Nats-Service-Error-Code"] == "404"
        assert "has no `agent:` section" in refused.headers["Nats-Service-Error"]
        with pytest.raises(wire.AgentWireError):
            wire.decode_config(refused.data)  # the box keeps its last good config
        # Reloaded: the next request gets the new part, with a new revision.
        changed = INVENTORY.replace("10.110.10.130", "10.110.10.140")
        responder.reload(_inventory(tmp_path / "b", changed))
        again = wire.decode_config((await nc.request("nw.agent.v1.24848.cfg", b"")).data)
        assert [p.source for p in again.paths] == ["10.110.10.140"]
        assert again.revision != config.revision
    finally:
        await sub.unsubscribe()


async def test_through_the_hub_a_box_can_ask_only_for_its_own_commune(
    centre: Centre, tmp_path: Path
) -> None:
    secret = await centre.add("24848-agent", "24848")
    hub_nc = await nats.connect(centre.server.url, user="netwatch", password=TOKEN)
    sub = await ConfigResponder(_inventory(tmp_path / "inv")).serve(hub_nc)
    try:
        async with running_leaf(tmp_path / "box", centre.leaf_url, "24848-agent", secret) as box:
            box_nc = await nats.connect(box, inbox_prefix=b"_INBOX_24848")
            try:
                await box_nc.flush()
                for _ in range(50):  # the hub's interest reaches the box's server
                    try:
                        reply = await box_nc.request("nw.agent.v1.24848.cfg", b"", timeout=0.5)
                        break
                    except (nats.errors.NoRespondersError, nats.errors.TimeoutError):
                        continue
                assert wire.decode_config(reply.data).commune == "24848"
                with pytest.raises((nats.errors.NoRespondersError, nats.errors.TimeoutError)):
                    await box_nc.request("nw.agent.v1.24846.cfg", b"", timeout=1.0)
            finally:
                await box_nc.close()
    finally:
        await sub.unsubscribe()
        await hub_nc.close()
