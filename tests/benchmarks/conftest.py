"""The benchmark helpers' fixtures: a real nats-server and a client on it (tests/bus/nats_fixtures.py)."""

from tests.bus.nats_fixtures import nats_server, nc

__all__ = ["nats_server", "nc"]
