"""Reusable lab helpers for any test package: `from tests.lab.fixtures import built_lab`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwatch.lab import Lab, capabilities_ok

TOOLS = ("ip", "tc", "nft", "snmpd", "snmpget", "fping", "setsid")


def lab_skip_reason() -> str | None:
    """Why a lab cannot be built here, or None when it can."""
    if not capabilities_ok():
        return "the lab needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to build network namespaces"
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"the lab needs these tools: {', '.join(missing)} (scripts/bootstrap.sh)"
    return None


def built_lab(index: int, communes: int, state_dir: Path) -> Iterator[Lab]:
    """Build a lab, yield it, and always remove it (also when the test or the build fails).

    Use it in a fixture with `yield from built_lab(...)`; each test package uses its own
    index (prefix 10.(88+index).0.0/16), so packages never tear down each other's lab.
    """
    reason = lab_skip_reason()
    if reason is not None:
        pytest.skip(reason)
    lab = Lab(index, state_dir)
    try:
        lab.up(communes=communes)
        yield lab
    finally:
        lab.down()


def restored(lab: Lab) -> Iterator[Lab]:
    """The lab for one test, with every fault undone after it: `yield from restored(lab)`."""
    try:
        yield lab
    finally:
        lab.restore()
