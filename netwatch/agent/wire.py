"""The agent's wire format: msgpack maps of the ``netwatch.agent.model`` dataclasses, versioned.

One message is one map ``{"v": <schema version>, "t": <type>, "d": <the object>}``; objects are
maps of their fields by name (an agent sends one round per interval, a few hundred bytes: names
cost nothing worth saving, and they make old and new versions easy to keep apart). The rules,
as for the observations' format (docs/bus.md, "Versions"):

* a change only ever *adds* a field, with a default; renaming, removing or re-typing one is a
  new subject version (``nw.agent.v2``);
* the decoder accepts every version from ``MIN_VERSION`` to ``VERSION``: a field it lacks takes
  its default (a missing field without a default is an error), a field it does not know (a
  newer writer's) is ignored; a version above ``VERSION`` is refused, telling to upgrade the
  centre before the agents;
* tests/agent/fixtures holds a payload of every version ever written; each must keep decoding.

Times travel as integer microseconds since the Unix epoch and come back timezone-aware in UTC.
Anything that does not decode into the type asked raises ``AgentWireError`` with what and where.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, Final, Literal, TypeVar

import msgpack

from netwatch.agent.model import AgentConfig, AgentHeartbeat, InsideRound

__all__ = [
    "MIN_VERSION",
    "VERSION",
    "AgentWireError",
    "decode_config",
    "decode_heartbeat",
    "decode_round",
    "encode_config",
    "encode_heartbeat",
    "encode_round",
]

VERSION: Final = 1
MIN_VERSION: Final = 1

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_US: Final = timedelta(microseconds=1)
_MISSING: Final = dataclasses.MISSING

T = TypeVar("T")
MessageType = Literal["round", "hb", "cfg"]


class AgentWireError(ValueError):
    """A payload that is not a message of the type asked, in a version this decoder reads."""


def _to_plain(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise AgentWireError("naive datetime: agent times are UTC-aware")
        return (value - _EPOCH) // _US
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_plain(v) for v in value]
    return value


def _encode(kind: MessageType, obj: Any) -> bytes:
    data: bytes = msgpack.packb({"v": VERSION, "t": kind, "d": _to_plain(obj)}, use_bin_type=True)
    return data


def encode_round(round_: InsideRound) -> bytes:
    """An agent round as sent on ``nw.agent.v1.<commune>.obs``."""
    return _encode("round", round_)


def encode_heartbeat(beat: AgentHeartbeat) -> bytes:
    """A heartbeat as sent on ``nw.agent.v1.<commune>.hb``."""
    return _encode("hb", beat)


def encode_config(config: AgentConfig) -> bytes:
    """A commune's agent configuration, the centre's answer on ``nw.agent.v1.<commune>.cfg``."""
    return _encode("cfg", config)


def decode_round(payload: bytes) -> InsideRound:
    """An ``InsideRound`` back from the wire (``AgentWireError`` when it is not one)."""
    return _decode(payload, "round", InsideRound)


def decode_heartbeat(payload: bytes) -> AgentHeartbeat:
    """An ``AgentHeartbeat`` back from the wire."""
    return _decode(payload, "hb", AgentHeartbeat)


def decode_config(payload: bytes) -> AgentConfig:
    """An ``AgentConfig`` back from the wire."""
    return _decode(payload, "cfg", AgentConfig)


def _decode(payload: bytes, kind: MessageType, cls: type[T]) -> T:
    try:
        message = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException) as exc:
        raise AgentWireError(f"not msgpack: {exc}") from exc
    if not isinstance(message, dict):
        raise AgentWireError("not an agent message (expected a map)")
    version = message.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise AgentWireError("no schema version")
    if version > VERSION:
        raise AgentWireError(
            f"schema version {version} is newer than this NetWatch reads ({VERSION}): "
            "upgrade the centre before the agents"
        )
    if version < MIN_VERSION:
        raise AgentWireError(f"schema version {version} is older than {MIN_VERSION}")
    if message.get("t") != kind:
        raise AgentWireError(f"expected a {kind!r} message, got {message.get('t')!r}")
    result: T = _from_plain(cls, message.get("d"), kind)
    return result


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _from_plain(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _from_plain(inner, value, where)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise AgentWireError(f"{where}: {value!r} is not one of {typing.get_args(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list):
            raise AgentWireError(f"{where}: expected a list")
        (item, _ellipsis) = typing.get_args(tp)
        return tuple(_from_plain(item, v, f"{where}[{i}]") for i, v in enumerate(value))
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(value, dict):
            raise AgentWireError(f"{where}: expected a map")
        hints = _hints(tp)
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(tp):
            if f.name in value:
                kwargs[f.name] = _from_plain(hints[f.name], value[f.name], f"{where}.{f.name}")
            elif f.default is _MISSING and f.default_factory is _MISSING:
                raise AgentWireError(f"{where}: missing field {f.name!r}")
        return tp(**kwargs)
    if tp is datetime:
        if not isinstance(value, int) or isinstance(value, bool):
            raise AgentWireError(f"{where}: expected a time (integer microseconds)")
        return _EPOCH + value * _US
    if tp is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise AgentWireError(f"{where}: expected a number")
        return float(value)
    if tp in (int, str, bool):
        if not isinstance(value, tp) or (tp is int and isinstance(value, bool)):
            raise AgentWireError(f"{where}: expected {tp.__name__}, got {type(value).__name__}")
        return value
    raise AgentWireError(f"{where}: cannot decode type {tp!r}")  # pragma: no cover - a model bug
