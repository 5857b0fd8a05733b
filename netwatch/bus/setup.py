"""Setting up JetStream for NetWatch: the OBSERVATIONS stream and the KV buckets, idempotently.

Every process that needs them calls ``ensure_stream`` / ``ensure_buckets`` at start (the
supervisor, a probe worker, a core: docs/bus.md, "who sets up the stream"). Kept apart from
netwatch.bus.streams so that the supervisor, which only sets up, imports nothing of the wire
format, the plan or the probes (issue 10: memory of each process; tests/test_imports.py).

Limits are chosen for a national deployment (docs/bus.md): measured 3.5 MB of stream per
minute of national rounds, so 4 hours (~850 MB) fit under the 1 GiB cap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import nats.js.errors
from nats.js import JetStreamContext, api
from nats.js.kv import KeyValue

__all__ = [
    "AGENTS",
    "AGENT_SUBJECTS",
    "LEADER_BUCKET",
    "OBSERVATIONS",
    "OBSERVATION_SUBJECTS",
    "STATE_BUCKET",
    "Buckets",
    "StreamLimits",
    "ensure_agent_stream",
    "ensure_buckets",
    "ensure_stream",
]

log = logging.getLogger("netwatch.bus")

OBSERVATIONS: Final = "OBSERVATIONS"
STATE_BUCKET: Final = "nw_state"
LEADER_BUCKET: Final = "nw_leader"
OBSERVATION_SUBJECTS: Final = "nw.obs.v1.>"
"""What the stream stores: every subject of the wire format (netwatch.bus.wire.OBS_PREFIX, not
imported here: the wire brings the plan and the probes with it; a test keeps the two equal)."""

AGENTS: Final = "AGENTS"
AGENT_SUBJECTS: Final = "nw.agent.v1.*.obs"
"""The commune agents' rounds (netwatch.agent.model.obs_subject; heartbeats and config requests
are live, never stored). A round forwarded again within the hour is stored once: the box resends
only a round whose PubAck it did not get, under the same ``Nats-Msg-Id`` (docs/agent-centre.md)."""
AGENT_DUPLICATE_WINDOW_S: Final = 3600.0
AGENT_MAX_AGE_S: Final = 7 * 86400.0
# The bytes bound comes first at national scale (3,321 agents x 2 rounds a minute): a few hours
# of rounds, far more than a core needs to catch up after a restart; the 7 days bind a province.
AGENT_MAX_BYTES: Final = 512 * 1024**2


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """Sizes of the stream and the buckets; the defaults fit a national deployment."""

    max_age_s: float = 4 * 3600.0  # a core down longer than this resumes from live data
    max_bytes: int = 1024**3
    duplicate_window_s: float = 300.0  # >= 2 rounds of the slowest kind (SNMP, 60 s) with room
    # Copies of the stream and of each bucket: 3 on a three-node cluster (distributed mode,
    # docs/architecture.md). None: whatever they have (1 when created), so that a process not
    # told the cluster's size (a probe worker, an old core) never changes it; a number is
    # applied to an existing stream or bucket too (JetStream adds or drops copies in place).
    replicas: int | None = None
    state_max_bytes: int = 256 * 1024**2
    state_max_value_bytes: int = 1024**2
    leader_ttl_s: float = 10.0  # a lease not renewed for this long expires


def _stream_config(limits: StreamLimits) -> api.StreamConfig:
    return api.StreamConfig(
        name=OBSERVATIONS,
        description="NetWatch observations from probe workers (docs/bus.md)",
        subjects=[OBSERVATION_SUBJECTS],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        discard=api.DiscardPolicy.OLD,
        max_age=limits.max_age_s,
        max_bytes=limits.max_bytes,
        duplicate_window=limits.duplicate_window_s,
        num_replicas=limits.replicas or 1,
        compression=api.StoreCompression.S2,
    )


_COMPARED: Final = (
    "subjects",
    "max_age",
    "max_bytes",
    "duplicate_window",
    "compression",
    "num_replicas",
)


async def ensure_stream(js: JetStreamContext, limits: StreamLimits | None = None) -> api.StreamInfo:
    """Create the OBSERVATIONS stream, or bring an existing one to these limits (idempotent:
    any number of processes may call it at start). Replicas change only when given."""
    lim = limits or StreamLimits()
    return await _ensure(js, _stream_config(lim), lim.replicas is None)


async def _ensure(
    js: JetStreamContext, config: api.StreamConfig, keep_replicas: bool
) -> api.StreamInfo:
    """Create the stream `config` names, or bring an existing one to `config` (its replicas
    kept when `keep_replicas`)."""
    name = config.name
    assert name is not None
    try:
        info = await js.stream_info(name)
    except nats.js.errors.NotFoundError:
        try:
            return await js.add_stream(config)
        except nats.js.errors.BadRequestError:  # another process created it meanwhile
            info = await js.stream_info(name)
    have = info.config
    if keep_replicas:  # not told: keep the copies it has
        config = config.evolve(num_replicas=have.num_replicas)
    if any(getattr(have, f) != getattr(config, f) for f in _COMPARED):
        log.info(
            "stream updated stream=%s replicas=%s->%s", name, have.num_replicas, config.num_replicas
        )
        return await js.update_stream(config)
    return info


def _agent_stream_config(limits: StreamLimits) -> api.StreamConfig:
    return api.StreamConfig(
        name=AGENTS,
        description="NetWatch commune agents' rounds (docs/agent-centre.md)",
        subjects=[AGENT_SUBJECTS],
        retention=api.RetentionPolicy.LIMITS,
        storage=api.StorageType.FILE,
        discard=api.DiscardPolicy.OLD,
        max_age=AGENT_MAX_AGE_S,
        max_bytes=AGENT_MAX_BYTES,
        duplicate_window=AGENT_DUPLICATE_WINDOW_S,
        num_replicas=limits.replicas or 1,
        compression=api.StoreCompression.S2,
    )


async def ensure_agent_stream(
    js: JetStreamContext, limits: StreamLimits | None = None
) -> api.StreamInfo:
    """Create the AGENTS stream, or bring an existing one to these limits (idempotent, like
    `ensure_stream`; replicas change only when given)."""
    lim = limits or StreamLimits()
    return await _ensure(js, _agent_stream_config(lim), lim.replicas is None)


async def _ensure_bucket(
    js: JetStreamContext, config: api.KeyValueConfig, replicas: int | None
) -> KeyValue:
    try:
        return await js.create_key_value(config)
    except nats.js.errors.BadRequestError as refused:
        # It exists with other settings (an older NetWatch's, other replicas): keep its data,
        # take new limits; its replicas change only when given.
        try:
            kv = await js.key_value(config.bucket)
        except nats.js.errors.BucketNotFoundError:
            raise refused from None  # refused for another reason (no room: max_file_store)
        info = await js.stream_info(f"KV_{config.bucket}")
        await js.update_stream(
            info.config.evolve(
                max_bytes=config.max_bytes,
                max_msg_size=config.max_value_size,
                max_age=config.ttl,
                num_replicas=replicas or info.config.num_replicas,
            )
        )
        return kv


@dataclass(frozen=True, slots=True)
class Buckets:
    """The KV buckets: the core's published state, and the leader lease."""

    state: KeyValue
    leader: KeyValue


def _bucket_config(
    bucket: str, description: str, limits: StreamLimits, **sizes: float | None
) -> api.KeyValueConfig:
    """A bucket keeping the latest value of each key, on disk, replicated like the stream."""
    config = api.KeyValueConfig(
        bucket=bucket,
        description=description,
        history=1,
        storage=api.StorageType.FILE,
        replicas=limits.replicas or 1,
    )
    return config.evolve(**sizes)


async def ensure_buckets(js: JetStreamContext, limits: StreamLimits | None = None) -> Buckets:
    """Create the buckets, or open them (idempotent)."""
    lim = limits or StreamLimits()
    state = await _ensure_bucket(
        js,
        _bucket_config(
            STATE_BUCKET,
            "NetWatch core's state and per-round page snapshots",
            lim,
            max_bytes=lim.state_max_bytes,
            max_value_size=lim.state_max_value_bytes,
        ),
        lim.replicas,
    )
    leader = await _ensure_bucket(
        js,
        _bucket_config(
            LEADER_BUCKET,
            "NetWatch core leader lease (expires unless renewed)",
            lim,
            ttl=lim.leader_ttl_s,
            max_value_size=1024,
        ),
        lim.replicas,
    )
    return Buckets(state, leader)
