"""`netwatch agent-key`: an agent's credential made (secret printed once, only its bcrypt hash
stored), listed, refused for a commune without an agent, revoked."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from netwatch.cli import main
from netwatch.store import open_store
from netwatch.store.agents import AgentCredential, secret_matches
from tests.agent.centre import WITHOUT_AGENT, write_inventory


def _keys(data: Path) -> list[AgentCredential]:
    async def read() -> list[AgentCredential]:
        store = await open_store(None, data_dir=data)
        try:
            return await store.list_agent_keys()
        finally:
            await store.close()

    return asyncio.run(read())


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.inventory.test_loader import ENV

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("env")
def test_add_prints_the_secret_once_and_stores_only_its_bcrypt_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_inventory(tmp_path)
    data = tmp_path / "data"
    base = ["--data-dir", str(data)]
    assert main(["agent-key", "add", "24848", "--config", str(config), *base]) == 0
    out = capsys.readouterr()
    secret = out.out.strip()
    assert secret.startswith("nwa_")
    assert len(secret) > 40
    assert "24848-agent" in out.err
    (key,) = _keys(data)
    assert (key.agent, key.commune, key.active) == ("24848-agent", "24848", True)
    assert key.secret_bcrypt.startswith("$2b$")
    assert secret not in key.secret_bcrypt
    assert secret_matches(secret, key.secret_bcrypt)
    # A second key for an active agent is refused (revoke first); listing shows no secret.
    assert main(["agent-key", "add", "24848", "--config", str(config), *base]) == 1
    assert "revoke it first" in capsys.readouterr().err
    assert main(["agent-key", "list", *base]) == 0
    listed = capsys.readouterr().out
    assert "24848-agent  commune=24848" in listed
    assert "active" in listed
    assert secret not in listed
    assert "$2b$" not in listed
    # Revoked: listed as such; a new key may then be made, with another secret.
    assert main(["agent-key", "revoke", "24848-agent", *base]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["agent-key", "revoke", "24848-agent", *base]) == 0
    assert "was revoked" in capsys.readouterr().out
    (key,) = _keys(data)
    assert not key.active
    assert main(["agent-key", "add", "24848", "--config", str(config), *base]) == 0
    second = capsys.readouterr().out.strip()
    (key,) = _keys(data)
    assert key.active
    assert second != secret
    assert secret_matches(second, key.secret_bcrypt)
    assert not secret_matches(secret, key.secret_bcrypt)


@pytest.mark.usefixtures("env")
def test_add_wants_a_commune_with_an_agent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_inventory(tmp_path)
    base = ["--data-dir", str(tmp_path / "data")]
    assert main(["agent-key", "add", WITHOUT_AGENT, "--config", str(config), *base]) == 1
    assert "has no `agent:` section" in capsys.readouterr().err
    assert main(["agent-key", "add", "99999", "--config", str(config), *base]) == 1
    assert "no commune 99999" in capsys.readouterr().err
    assert main(["agent-key", "revoke", "nobody-agent", *base]) == 1
    capsys.readouterr()
    bad = ["agent-key", "add", "24848", "--agent", "a.b c", "--config", str(config), *base]
    assert main(bad) == 2
    assert "letters, digits" in capsys.readouterr().err
    assert _keys(tmp_path / "data") == []


@pytest.mark.usefixtures("env")
def test_add_takes_another_agent_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_inventory(tmp_path)
    data = tmp_path / "data"
    cmd = ["agent-key", "add", "24846", "--agent", "box-2", "--config", str(config)]
    assert main([*cmd, "--data-dir", str(data)]) == 0
    capsys.readouterr()
    assert [(k.agent, k.commune) for k in _keys(data)] == [("box-2", "24846")]
