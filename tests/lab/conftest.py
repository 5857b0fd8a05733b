"""Fixtures for tests that need a real lab network (root only; lab index 1 = 10.89.0.0/16)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from netwatch.lab import Lab

from .fixtures import built_lab, restored

# Lab index reserved for tests/lab: prefix 10.89.0.0/16, namespaces nwl1-* (another index with
# NETWATCH_TEST_LAB_INDEX, for sessions that share the machine and own other indices).
LAB_INDEX = int(os.environ.get("NETWATCH_TEST_LAB_INDEX", "1"))
LAB_COMMUNES = 3


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A built lab shared by the tests of one module; removed when the module ends."""
    yield from built_lab(LAB_INDEX, LAB_COMMUNES, tmp_path_factory.mktemp(f"lab{LAB_INDEX}"))


@pytest.fixture
def clean_lab(lab: Lab) -> Iterator[Lab]:
    """The shared lab, with every fault undone after the test."""
    yield from restored(lab)
