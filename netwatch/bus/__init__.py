"""The message bus between NetWatch's processes: NATS JetStream (docs/bus.md).

server: the embedded nats-server; wire: the versioned observation format; setup: the stream and
the KV buckets; streams: the publisher and the durable consumer (and setup's names again);
lease: the core's leader lease. Imports netwatch.observations and the probes' result types,
never the web or alerting.

nats-py imports aiohttp at its top for its WebSocket transport only (``ws://`` URLs), which
NetWatch never uses: the bus is ``nats://``. aiohttp costs a process ~10 MB of RSS, and the
supervisor has no other use for it, so nats is imported here with aiohttp hidden when nothing
loaded aiohttp before (issue 10; tests/test_imports.py). A process that imports aiohttp for its
own use (the core, the HTTP probes) still gets it; nats's WebSocket transport is then off too,
unless nats was imported before this package.
"""

import sys


def _import_nats_without_aiohttp() -> None:
    if "nats" in sys.modules or "aiohttp" in sys.modules:
        return
    sys.modules["aiohttp"] = None  # type: ignore[assignment]  # `import aiohttp` fails: no ws
    try:
        import nats  # noqa: F401
    finally:
        del sys.modules["aiohttp"]


_import_nats_without_aiohttp()
