"""The hub's door for agents, against real nats-servers: the agent's own leaf nats-server logs
in with its key; its own commune's rounds are stored in AGENTS, another commune's refused; a
forged secret, an unknown agent, a tampered box and a revoked key are refused, logged with the
agent id and counted (netwatch_agent_refusals_total{reason})."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import nats
import nats.errors
import nats.js.errors
import pytest
from nats.js import JetStreamContext

from netwatch.bus.server import NatsServer, NatsServerOptions, running_nats_server
from netwatch.bus.setup import AGENTS, ensure_agent_stream
from netwatch.inside.hub import AgentHub, HubMetrics
from netwatch.store import Store, open_store
from tests.agent.centre import raw_leaf_publish, running_leaf

TOKEN = "test-token-for-the-hub"


async def _until(check: Callable[[], bool], timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


class Centre:
    def __init__(self, server: NatsServer, store: Store, hub: AgentHub, js: JetStreamContext):
        self.server, self.store, self.hub, self.js = server, store, hub, js
        self.secrets: dict[str, str] = {}

    @property
    def leaf_url(self) -> str:
        assert self.server.leafnode_url is not None
        return self.server.leafnode_url

    async def add(self, agent: str, commune: str) -> str:
        issued = await self.store.add_agent_key(agent, commune, datetime.now(UTC))
        self.secrets[agent] = issued.secret
        await self.hub.sync()
        return issued.secret

    async def stored(self) -> int:
        return (await self.js.stream_info(AGENTS)).state.messages


@pytest.fixture
async def centre(tmp_path: Path) -> AsyncIterator[Centre]:
    opts = NatsServerOptions(data_dir=tmp_path, token=TOKEN, agent_listen="127.0.0.1:-1")
    async with running_nats_server(opts) as server:
        store = await open_store(None, data_dir=tmp_path / "store")
        nc = await nats.connect(server.url, user="netwatch", password=TOKEN)
        hub = AgentHub(store, opts.nats_dir, TOKEN, every_s=0.2)
        try:
            js = nc.jetstream()
            await ensure_agent_stream(js)
            await hub.open(server.url)
            yield Centre(server, store, hub, js)
        finally:
            await hub.close()
            await nc.close()
            await store.close()


async def _publish(url: str, commune: str, subject_commune: str, msg_id: str) -> bool:
    """Publish one round from the box's side (its client on its own nats-server); True when
    the hub's stream acknowledged it."""
    nc = await nats.connect(url, inbox_prefix=f"_INBOX_{commune}".encode())
    try:
        ack = await nc.jetstream().publish(
            f"nw.agent.v1.{subject_commune}.obs",
            b"round",
            timeout=2.0,
            headers={"Nats-Msg-Id": msg_id},
        )
        return ack.stream == AGENTS
    except (nats.errors.TimeoutError, nats.errors.NoRespondersError, nats.js.errors.Error):
        return False
    finally:
        await nc.close()


async def test_an_agent_publishes_for_its_own_commune_only(
    centre: Centre, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = await centre.add("24848-agent", "24848")
    await centre.add("24846-agent", "24846")
    assert "24848-agent" in centre.hub.users_file.read_text()
    async with running_leaf(tmp_path / "box", centre.leaf_url, "24848-agent", secret) as box:
        await _until(lambda: "24848-agent" in centre.hub.connected.values())
        assert await _publish(box, "24848", "24848", "24848-agent:1")
        # Another commune's subject: the box's own server applies the hub's permissions and
        # never sends it; nothing is stored.
        assert not await _publish(box, "24848", "24846", "24848-agent:2")
        assert await centre.stored() == 1
        # The hub sends the box nothing but its own inbox: another commune's inbox stays away.
        hub_nc = await nats.connect(centre.server.url, user="netwatch", password=TOKEN)
        box_nc = await nats.connect(box)
        try:
            mine = await box_nc.subscribe("_INBOX_24848.probe")
            theirs = await box_nc.subscribe("_INBOX_24846.probe")
            other = await box_nc.subscribe("nw.obs.v1.>")
            await box_nc.flush()
            await asyncio.sleep(0.5)  # the interest reaches the hub
            for subject in ("_INBOX_24848.probe", "_INBOX_24846.probe", "nw.obs.v1.24.icmp"):
                await hub_nc.publish(subject, b"x")
            await hub_nc.flush()
            assert (await mine.next_msg(timeout=3.0)).data == b"x"
            for sub in (theirs, other):
                with pytest.raises(nats.errors.TimeoutError):
                    await sub.next_msg(timeout=0.5)
        finally:
            await box_nc.close()
            await hub_nc.close()
    # A tampered box sending another commune's round by hand: refused, closed, logged, counted.
    with caplog.at_level(logging.WARNING, logger="netwatch.inside.hub"):
        said = await raw_leaf_publish(
            centre.leaf_url, "24848-agent", secret, "nw.agent.v1.24846.obs"
        )
        assert b"Permissions Violation" in said
        await _until(lambda: centre.hub.refusals["permission"] == 1)
    assert await centre.stored() == 1
    assert "agent refused agent=24848-agent reason=permission" in caplog.text


async def test_forged_unknown_and_revoked_keys_are_refused_logged_and_counted(
    centre: Centre, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = await centre.add("24848-agent", "24848")
    caplog.set_level(logging.INFO, logger="netwatch.inside.hub")
    forged = "nwa_" + "A" * 43
    async with running_leaf(tmp_path / "forged", centre.leaf_url, "24848-agent", forged):
        await _until(lambda: centre.hub.refusals["bad_secret"] >= 1)
    async with running_leaf(tmp_path / "unknown", centre.leaf_url, "99999-agent", forged):
        await _until(lambda: centre.hub.refusals["unknown_agent"] >= 1)
    assert "agent refused agent=24848-agent reason=bad_secret" in caplog.text
    assert "agent refused agent=99999-agent reason=unknown_agent" in caplog.text
    assert await centre.stored() == 0
    # The real key works; revoked, its live connection is closed and it cannot come back.
    async with running_leaf(tmp_path / "box", centre.leaf_url, "24848-agent", secret) as box:
        await _until(lambda: "24848-agent" in centre.hub.connected.values())
        assert await _publish(box, "24848", "24848", "24848-agent:1")
        await centre.store.revoke_agent_key("24848-agent", datetime.now(UTC))
        assert await centre.hub.sync()
        assert "24848-agent" not in centre.hub.users_file.read_text()
        await _until(lambda: centre.hub.refusals["revoked"] >= 1)
        assert "24848-agent" not in centre.hub.connected.values()
        assert not await _publish(box, "24848", "24848", "24848-agent:2")
    assert await centre.stored() == 1
    assert "agent refused agent=24848-agent reason=revoked" in caplog.text
    # The metric Prometheus reads.
    samples = {
        s.labels["reason"]: s.value
        for f in HubMetrics(centre.hub).collect()
        if f.name == "netwatch_agent_refusals"
        for s in f.samples
    }
    assert samples["revoked"] >= 1
    assert samples["bad_secret"] >= 1
    assert samples["unknown_agent"] >= 1


async def test_a_key_revoked_while_the_core_was_down_is_cut_off_when_it_comes_back(
    centre: Centre, tmp_path: Path
) -> None:
    secret = await centre.add("24848-agent", "24848")
    async with running_leaf(tmp_path / "box", centre.leaf_url, "24848-agent", secret) as box:
        await _until(lambda: "24848-agent" in centre.hub.connected.values())
        await centre.hub.close()  # the core stops; the server and the box's link stay up
        await centre.store.revoke_agent_key("24848-agent", datetime.now(UTC))
        assert await _publish(box, "24848", "24848", "24848-agent:1")
        restarted = AgentHub(centre.store, centre.hub.users_file.parent, TOKEN)
        await restarted.open(centre.server.url)
        try:
            assert await restarted.sync()
            assert restarted.kicked == 1
            await _until(lambda: restarted.refusals["revoked"] >= 1)
            assert not await _publish(box, "24848", "24848", "24848-agent:2")
        finally:
            await restarted.close()
    assert await centre.stored() == 1


async def test_swapped_leafnode_permissions_refuse_the_agent_everything(
    centre: Centre, tmp_path: Path
) -> None:
    """Why render_users writes publish/subscribe as it does: for a leafnode user they read as
    for a client. Swapped (subscribe = its commune's subjects), the box's own rounds and its
    config requests are refused too: nothing of the agent's gets in."""
    secret = await centre.add("24848-agent", "24848")
    text = centre.hub.users_file.read_text()
    swapped = text.replace("publish:", "SWAP:").replace("subscribe:", "publish:")
    swapped = swapped.replace("SWAP:", "subscribe:")
    assert swapped != text
    centre.hub.users_file.write_text(swapped)
    await centre.hub._reload()
    async with running_leaf(tmp_path / "box", centre.leaf_url, "24848-agent", secret) as box:
        await _until(lambda: "24848-agent" in centre.hub.connected.values())
        assert not await _publish(box, "24848", "24848", "24848-agent:1")
    assert await centre.stored() == 0
