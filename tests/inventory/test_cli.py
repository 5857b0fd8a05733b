"""`netwatch check-config`: summary on success, every error and exit 1 otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from netwatch.cli import main

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "examples" / "lam-dong.yaml"

# A link secret strong enough for the loader (netwatch.inventory.secrets.weak_secret).
STRONG = "9921c527c59c2d56534fbf20ed19f449"


def test_check_config_summarises(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NETWATCH_SNMP_COMMUNITY", "secret-community-value")
    monkeypatch.setenv("NETWATCH_SNMP_AUTH_KEY", "secret-auth-value")
    monkeypatch.setenv("NETWATCH_SNMP_PRIV_KEY", "secret-priv-value")
    for name in ("LINK_SECRET", "SMTP_PASSWORD", "WEBHOOK_SECRET", "TELEGRAM_TOKEN"):
        monkeypatch.setenv(f"NETWATCH_{name}", f"secret-{name.lower()}-{STRONG}")
    assert main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert f"{EXAMPLE}: OK" in out
    assert "provinces       1  Lâm Đồng" in out
    assert "communes        9" in out
    assert "links          11" in out
    assert "vnpt         VNPT Lâm Đồng: 9 links, 3 contact levels" in out
    assert "secret-" not in out


def test_check_config_without_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("NETWATCH_SNMP_COMMUNITY", "NETWATCH_SNMP_AUTH_KEY", "NETWATCH_SNMP_PRIV_KEY"):
        monkeypatch.delenv(name, raising=False)
    for name in ("LINK_SECRET", "SMTP_PASSWORD", "WEBHOOK_SECRET", "TELEGRAM_TOKEN"):
        monkeypatch.delenv(f"NETWATCH_{name}", raising=False)
    assert main(["check-config", str(EXAMPLE)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("7 errors in the configuration:")
    assert "environment variable NETWATCH_SNMP_AUTH_KEY is not set" in err
    assert main(["check-config", "--ignore-missing-secrets", str(EXAMPLE)]) == 0


def test_check_config_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["check-config", str(tmp_path / "nope.yaml")]) == 1
    assert f"{tmp_path / 'nope.yaml'}:1:1: no such file or folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["check-config", "--ignore-missing-secrets", str(EXAMPLE)],
        ["token", "create", "grafana", "--data-dir", "{tmp}"],
        ["token", "list", "--data-dir", "{tmp}"],
        ["--help"],
    ],
    ids=["check-config", "token-create", "token-list", "help"],
)
def test_a_reader_gone_early_ends_quietly_with_status_141(
    argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`netwatch … | head`: the pipe's reader is gone before NetWatch writes (its end is closed
    before the command starts, so every write fails). Like coreutils (killed by SIGPIPE: the
    shell says 141), not like a traceback; `--help` is argparse's, which ignores the error."""
    monkeypatch.setenv("NETWATCH_DATABASE_URL", "")
    if argv[:2] == ["token", "list"]:  # something to list
        assert main(["token", "create", "prometheus", "--data-dir", str(tmp_path)]) == 0
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "netwatch.cli", *(a.format(tmp=tmp_path) for a in argv)],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == (0 if argv == ["--help"] else 141)
