"""The bus tests' fixtures: a real nats-server and a client on it (tests/bus/nats_fixtures.py)."""

from tests.bus.nats_fixtures import js, nats_server, nc

__all__ = ["js", "nats_server", "nc"]
