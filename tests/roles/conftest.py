"""A real nats-server per test, as in tests/bus."""

from tests.bus.conftest import js, nats_server, nc

__all__ = ["js", "nats_server", "nc"]
