"""Issue 15, findings 4 and 9c: a guessable link secret or a plain-http webhook is refused when
the configuration is loaded (check-config, and `netwatch run`'s start-up), with its position."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from netwatch.cli import main
from netwatch.inventory import ConfigError, load_inventory
from netwatch.web.app import create_app

STRONG = "9921c527c59c2d56534fbf20ed19f449423f7b64"
CONFIG = """
isps:
  vnpt:
    name: VNPT
    contacts:
      - {level: 1, name: NOC VNPT, webhook: "@HOOK@"}
notifications:
  public_url: https://netwatch.lamdong.example
  link_secret: {env: NW_TEST_LINK_SECRET}
  webhook_secret: {env: NW_TEST_WEBHOOK_SECRET}
communes:
  - code: 24848
    links:
      - {id: vnpt-tslcd, isp: vnpt, circuit: C-1, bandwidth_mbps: 100, path: tslcd, address: 127.0.0.1}
"""


def _config(tmp_path: Path, webhook: str = "https://noc.vnpt.example/hook") -> Path:
    path = tmp_path / "netwatch.yaml"
    path.write_text(textwrap.dedent(CONFIG).lstrip().replace("@HOOK@", webhook), "utf-8")
    return path


def _env(secret: str) -> dict[str, str]:
    return {"NW_TEST_LINK_SECRET": secret, "NW_TEST_WEBHOOK_SECRET": "webhook-hmac-key"}


def _errors(path: Path, secret: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_inventory(path, environ=_env(secret))
    return [str(issue).replace(str(path), "F") for issue in caught.value.issues]


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("x", "is 1 bytes long; at least 32 are needed"),
        ("change-me-a-long-random-string", "is a placeholder shipped with NetWatch"),
        ("CHANGE-ME-a-long-random-string-0123456789", "is a placeholder shipped with NetWatch"),
        ("a" * 64, "has too little randomness"),
        ("abababababababababababababababab", "has too little randomness"),
        ("test-link-secret-0123456789", "is 27 bytes long"),
    ],
)
def test_a_weak_link_secret_is_refused_with_its_position(
    tmp_path: Path, secret: str, why: str
) -> None:
    (error,) = _errors(_config(tmp_path), secret)
    assert error.startswith(
        "F:8:16: notifications.link_secret: the link secret (environment variable "
        "NW_TEST_LINK_SECRET) "
    )
    assert why in error
    assert "openssl rand -hex 32" in error
    if len(secret) > 1:
        assert secret not in error  # never the secret itself


def test_a_strong_secret_loads(tmp_path: Path) -> None:
    loaded = load_inventory(_config(tmp_path), environ=_env(STRONG))
    assert loaded.notifications is not None


def test_check_config_and_start_up_refuse_the_shipped_placeholder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _config(tmp_path)
    monkeypatch.setenv("NW_TEST_WEBHOOK_SECRET", "webhook-hmac-key")
    monkeypatch.setenv("NW_TEST_LINK_SECRET", "change-me-a-long-random-string")
    assert main(["check-config", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:8:16: notifications.link_secret:" in err
    assert "placeholder" in err
    # --ignore-missing-secrets checks the file without the secrets: nothing to judge.
    monkeypatch.delenv("NW_TEST_LINK_SECRET")
    assert main(["check-config", "--ignore-missing-secrets", str(path)]) == 0
    # `netwatch run` builds the app from the file: it does not start with a guessable secret.
    monkeypatch.setenv("NW_TEST_LINK_SECRET", "x")
    with pytest.raises(ConfigError, match="link_secret"):
        create_app(path, probing=False, data_dir=tmp_path)


@pytest.mark.parametrize(
    "webhook",
    ["http://noc.vnpt.example/hook", "http://10.68.0.5:8080/hook", "http://[2001:db8::1]/x"],
)
def test_a_plain_http_webhook_is_refused(tmp_path: Path, webhook: str) -> None:
    (error,) = _errors(_config(tmp_path, webhook), STRONG)
    assert error.startswith("F:5:45: isps.vnpt.contacts[0].webhook: webhooks must use https://")


@pytest.mark.parametrize(
    "webhook",
    ["https://noc.vnpt.example/hook", "http://127.0.0.1:8099/hook", "http://localhost/x"],
)
def test_https_and_loopback_webhooks_load(tmp_path: Path, webhook: str) -> None:
    loaded = load_inventory(_config(tmp_path, webhook), environ=_env(STRONG))
    assert loaded.isps["vnpt"].contacts[0].webhook == webhook
