"""The API fuzzed from its own OpenAPI schema by schemathesis (issue 15, "Fuzz").

A real NetWatch behind the HTTP edge under uvicorn on loopback, with a ticket and a maintenance
window to read, and a read and write token: every operation of /openapi.json gets a bounded number of
generated requests (valid and not). No answer may be a 5xx, and every answer must match the
schema of its status. Examples are bounded and derandomized, so the run is short and the same
every time; a failure prints the request that caused it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from netwatch.inventory import Inventory, load_inventory
from netwatch.web.edge import EdgeOptions
from tests.web.conftest import CONFIG, LINK_SECRET
from tests.web.edge_server import Edge, serving

EXAMPLES_PER_OPERATION = 50


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[Edge, str]]:
    """The served NetWatch with something in it, and a national read and write token (every
    /api/v1 route needs one: without it every operation would only meet the 401)."""
    path = tmp_path / "netwatch.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    inventory: Inventory = load_inventory(path, environ={"NETWATCH_LINK_SECRET": LINK_SECRET})
    with serving(tmp_path, inventory, EdgeOptions()) as edge:
        token = edge.token(("read", "write"))
        auth = {"Authorization": f"Bearer {token}"}
        window = {
            "scope": {"commune": "24848"},
            "start": "2026-12-01T08:00",
            "end": "2026-12-01T10:00",
            "reason": "Nâng cấp thiết bị",
        }
        created = httpx.post(edge.base + "/api/v1/maintenance", json=window, headers=auth)
        assert created.status_code == 201, created.text
        yield edge, token


def test_no_operation_answers_5xx_or_off_schema(fuzzed: tuple[Edge, str]) -> None:
    edge, token = fuzzed
    raw = httpx.get(edge.base + "/openapi.json").json()
    schema = schemathesis.openapi.from_dict(raw)
    headers = {"Authorization": f"Bearer {token}"}
    checks = [not_a_server_error, response_schema_conformance]
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the schema lost its operations"
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)))
        def exchange(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=edge.base, headers=headers, checks=checks)

        exchange()
