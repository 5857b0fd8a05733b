"""The centre's agent tests use a real nats-server (tests/bus/nats_fixtures.py)."""

from tests.bus.nats_fixtures import js, nats_server, nc

__all__ = ["js", "nats_server", "nc"]
