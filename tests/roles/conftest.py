"""The role tests' fixtures: a real nats-server and a client on it (tests/bus/nats_fixtures.py),
and `bus`: a nats-server of its own with the stream and buckets (tests/roles/feeding.py)."""

from tests.bus.nats_fixtures import js, nats_server, nc
from tests.roles.feeding import bus

__all__ = ["bus", "js", "nats_server", "nc"]
