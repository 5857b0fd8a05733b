"""The agent box's TOML settings: defaults, relative paths, and an error naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwatch.agent.settings import (
    DEFAULT_BUFFER_MAX_BYTES,
    DEFAULT_FORWARD_RATE_BPS,
    SettingsError,
    load_settings,
)

GOOD = """
commune = "24848"
agent = "24848-agent"
secret_file = "secret"
centre = ["nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422"]
data_dir = "data"
"""


def write(tmp_path: Path, text: str, secret: str | None = "s3cret\n") -> Path:
    if secret is not None:
        (tmp_path / "secret").write_text(secret)
    path = tmp_path / "agent.toml"
    path.write_text(text)
    return path


def test_good_settings_with_defaults_and_paths_relative_to_the_file(tmp_path: Path) -> None:
    settings = load_settings(write(tmp_path, GOOD))
    assert settings.commune == "24848"
    assert settings.agent == "24848-agent"
    assert settings.secret == "s3cret"
    assert settings.centre == ("nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422")
    assert settings.data_dir == tmp_path / "data"
    assert settings.buffer_max_bytes == DEFAULT_BUFFER_MAX_BYTES == 64 * 1024 * 1024
    assert settings.forward_rate_bps == DEFAULT_FORWARD_RATE_BPS == 32_000
    assert settings.log_level == "info"
    assert "s3cret" not in repr(settings)


def test_inline_secret_single_url_and_limits(tmp_path: Path) -> None:
    text = (
        'commune = "24848"\nagent = "a1"\nsecret = "xyz"\ncentre = "nats://h:7422"\n'
        'data_dir = "/var/lib/x"\nbuffer_max_bytes = 4096\nforward_rate_bps = 1000\n'
        'log_level = "DEBUG"\nconfig_refresh_s = 60\n'
    )
    settings = load_settings(write(tmp_path, text, secret=None))
    assert settings.secret == "xyz"
    assert settings.centre == ("nats://h:7422",)
    assert settings.data_dir == Path("/var/lib/x")
    assert (settings.buffer_max_bytes, settings.forward_rate_bps) == (4096, 1000)
    assert settings.log_level == "debug"
    assert settings.config_refresh_s == 60.0


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        (('commune = "24848"', 'commune = "24.848"'), "commune", "letters, digits"),
        (('agent = "24848-agent"', ""), "agent", "missing"),
        (
            (
                'centre = ["nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422"]',
                'centre = "http://h:80"',
            ),
            "centre",
            "scheme",
        ),
        (
            (
                'centre = ["nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422"]',
                'centre = "nats://u:p@h:7422"',
            ),
            "centre",
            "no credentials",
        ),
        (
            (
                'centre = ["nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422"]',
                'centre = "nats://h"',
            ),
            "centre",
            "port",
        ),
        (
            (
                'centre = ["nats-leaf://10.0.0.1:7422", "tls://centre.example.vn:7422"]',
                "centre = []",
            ),
            "centre",
            "non-empty list",
        ),
        (('data_dir = "data"', ""), "data_dir", "missing"),
        (
            ('data_dir = "data"', 'data_dir = "data"\nbuffer_max_bytes = 10'),
            "buffer_max_bytes",
            "minimum",
        ),
        (
            ('data_dir = "data"', 'data_dir = "data"\nforward_rate_bps = "fast"'),
            "forward_rate_bps",
            "integer",
        ),
        (('data_dir = "data"', 'data_dir = "data"\nlog_level = "loud"'), "log_level", "not one of"),
        (
            ('data_dir = "data"', 'data_dir = "data"\ntls_handshake_first = 1'),
            "tls_handshake_first",
            "true or false",
        ),
        (
            ('data_dir = "data"', 'data_dir = "data"\nbuffer_max_byte = 4096'),
            "buffer_max_byte",
            "unknown setting",
        ),
        (('secret_file = "secret"', 'secret_file = "secret"\nsecret = "x"'), "secret", "not both"),
        (('secret_file = "secret"', ""), "secret", "missing"),
        (('secret_file = "secret"', 'secret_file = "nope"'), "secret_file", "cannot read"),
    ],
)
def test_bad_settings_name_file_and_key(
    tmp_path: Path, change: tuple[str, str], key: str, words: str
) -> None:
    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(SettingsError) as caught:
        load_settings(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ")
    assert words in message


def test_empty_secret_file_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"secret_file: .* is empty"):
        load_settings(write(tmp_path, GOOD, secret="\n"))
    with pytest.raises(SettingsError, match="not valid TOML"):
        load_settings(write(tmp_path, "commune = \n"))
    with pytest.raises(SettingsError, match="cannot read"):
        load_settings(tmp_path / "absent.toml")
