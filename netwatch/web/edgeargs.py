"""`netwatch run`'s options for the HTTP edge, without the edge itself.

The supervisor parses `netwatch run ...` too and must not import FastAPI or uvicorn to do so
(tests/test_imports.py): the options live here, argparse only; `netwatch.web.edge` uses the
same defaults.
"""

from __future__ import annotations

import argparse

__all__ = ["MAX_CONNECTIONS", "TRUSTED_PROXIES", "add_edge_arguments"]

MAX_CONNECTIONS = 1000  # beyond: 503 (uvicorn's limit_concurrency)
TRUSTED_PROXIES = "127.0.0.1"  # X-Forwarded-For/-Proto believed from these only


def add_edge_arguments(parser: argparse.ArgumentParser) -> None:
    """`--trusted-proxies` and `--max-connections` on `netwatch run`."""
    parser.add_argument(
        "--trusted-proxies",
        default=TRUSTED_PROXIES,
        help="addresses or networks (comma-separated, '*' for any) whose X-Forwarded-For and "
        "X-Forwarded-Proto are believed: the reverse proxy in front of NetWatch (default: "
        f"{TRUSTED_PROXIES}); https through it gets HSTS and secure cookies",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=MAX_CONNECTIONS,
        help="open connections and requests served at once per web process; beyond, 503 "
        f"(default: {MAX_CONNECTIONS})",
    )
