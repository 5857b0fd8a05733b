"""`netwatch probe`: one-off diagnostics print a table; the exit code says ok or not."""

from __future__ import annotations

import os
import socket

import pytest

from netwatch.cli import main


@pytest.mark.privileged
@pytest.mark.skipif(os.geteuid() != 0, reason="raw ICMP needs root; CI runs as root")
def test_ping_loopback_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "127.0.0.1", "-c", "3", "--interval", "0.05", "--timeout", "1"]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()[:2]
    assert header.split()[:4] == ["ADDRESS", "SENT", "RECV", "LOSS"]
    assert row.split()[:4] == ["127.0.0.1", "3", "3", "0.0%"]


def test_https_to_a_closed_port_fails_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends
    assert main(["probe", f"https://127.0.0.1:{port}/", "--timeout", "2"]) == 1
    out = capsys.readouterr().out.lower()
    assert "refused" in out


def test_bad_url_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "https://", "--timeout", "1"]) == 2
    assert "netwatch probe:" in capsys.readouterr().err
