"""Loading the inventory in a forked child: the same inventory, the same errors, secrets kept."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from netwatch.inventory import (
    ConfigError,
    Divisions,
    Secret,
    isolated,
    load_inventory,
    load_inventory_isolated,
)
from tests.inventory.test_loader import ENV, EXAMPLE, write


@pytest.fixture(scope="module")
def divisions() -> Divisions:
    return Divisions()


def test_the_child_loads_the_very_inventory_the_parent_would(divisions: Divisions) -> None:
    in_place = load_inventory(EXAMPLE, environ=ENV, divisions=divisions)
    received = load_inventory_isolated(EXAMPLE, environ=ENV, divisions=divisions)
    assert received == in_place
    assert received.model_dump() == in_place.model_dump()


def test_secrets_cross_the_pipe_with_their_values_and_nowhere_else(divisions: Divisions) -> None:
    inventory = load_inventory_isolated(EXAMPLE, environ=ENV, divisions=divisions)
    secrets = [
        value
        for credential in inventory.snmp_credentials.values()
        for value in vars(credential).values()
        if isinstance(value, Secret)
    ]
    assert secrets, "the example has SNMP secrets"
    assert {s.reveal() for s in secrets} <= set(ENV.values())
    with pytest.raises(TypeError, match="not picklable"):
        pickle.dumps(secrets[0])  # only the loader's private pipe carries them


def test_config_errors_come_back_with_every_issue(tmp_path: Path, divisions: Divisions) -> None:
    bad = write(
        tmp_path,
        """
        communes:
          - code: 99999999
            links: [{id: a, isp: nobody, circuit: C, bandwidth_mbps: 0, path: tslcd}]
        """,
    )
    with pytest.raises(ConfigError) as in_place:
        load_inventory(bad, environ=ENV, divisions=divisions)
    with pytest.raises(ConfigError) as received:
        load_inventory_isolated(bad, environ=ENV, divisions=divisions)
    assert received.value.issues == in_place.value.issues
    assert str(received.value) == str(in_place.value)


def test_a_missing_file_is_a_config_error_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_inventory_isolated(tmp_path / "absent.yaml", environ=ENV)


def test_a_child_that_dies_without_an_answer_means_loading_in_place(
    monkeypatch: pytest.MonkeyPatch, divisions: Divisions, caplog: pytest.LogCaptureFixture
) -> None:
    def dies(*_: object) -> None:
        os._exit(3)

    monkeypatch.setattr(isolated, "_child", dies)
    inventory = load_inventory_isolated(EXAMPLE, environ=ENV, divisions=divisions)
    assert inventory == load_inventory(EXAMPLE, environ=ENV, divisions=divisions)
    assert "without an answer (status 3)" in caplog.text
