"""YAML reading that remembers where every value came from (file, line, column)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import yaml

Loc = tuple[str | int, ...]


class Position(NamedTuple):
    """A place in a config file; lines and columns are 1-based, as editors show them.

    A named tuple, not a frozen dataclass: a national inventory makes 250,000 of them while it
    is read, and a tuple is built several times faster."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class YamlSyntaxError(Exception):
    """The file is not YAML at all; carries the position the parser stopped at."""

    def __init__(self, position: Position, message: str) -> None:
        super().__init__(f"{position}: {message}")
        self.position = position
        self.message = message


# YAML 1.1 reads `00070` as octal 56 and `12:30` as a base-60 integer: both would silently
# corrupt commune codes and times, so integers are accepted in plain decimal form only.
_DECIMAL_INT = re.compile(r"^[-+]?(0|[1-9][0-9_]*)$")
_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_NULL = "tag:yaml.org,2002:null"
_BOOL = "tag:yaml.org,2002:bool"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
# libyaml (when PyYAML was built with it) composes the node tree ~2x faster; same marks.
_COMPOSER = yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader


# Aliases may repeat a subtree; a few nested ones would expand to billions of values (the
# "billion laughs"). A national inventory has about 250,000: four times that is refused.
MAX_VALUES = 1_000_000


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[Loc, Position] = {}
        self._open: set[int] = set()  # the nodes being built: an alias to one is a cycle
        self._count = 0

    def _pos(self, node: yaml.Node) -> Position:
        mark = node.start_mark
        return Position(self.file, mark.line + 1, mark.column + 1)

    def build(self, node: yaml.Node, loc: Loc) -> Any:
        self.positions[loc] = self._pos(node)
        self._count += 1
        if self._count > MAX_VALUES:
            raise YamlSyntaxError(
                self._pos(node), f"over {MAX_VALUES} values (aliases repeating aliases?)"
            )
        if isinstance(node, yaml.MappingNode | yaml.SequenceNode):
            if id(node) in self._open:
                raise YamlSyntaxError(self._pos(node), "an alias refers to a value containing it")
            self._open.add(id(node))
            try:
                return self._collection(node, loc)
            finally:
                self._open.discard(id(node))
        assert isinstance(node, yaml.ScalarNode)
        return self._scalar(node)

    def _collection(self, node: yaml.MappingNode | yaml.SequenceNode, loc: Loc) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self._scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
                if not isinstance(key, str | int):
                    raise YamlSyntaxError(self._pos(key_node), "a mapping key must be a plain word")
                if key in out:
                    raise YamlSyntaxError(
                        self._pos(key_node),
                        f"key {key!r} appears twice in the same mapping "
                        f"(first at line {self.positions[(*loc, key)].line})",
                    )
                self.positions[(*loc, key)] = self._pos(value_node)
                out[key] = self.build(value_node, (*loc, key))
                # keep the key's own position: errors about the key point at the key
                self.positions[(*loc, key, "__key__")] = self._pos(key_node)
            return out
        return [self.build(item, (*loc, i)) for i, item in enumerate(node.value)]

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        # The common tags are converted here directly: going through PyYAML's constructor for
        # each of the ~170,000 scalars of a national inventory costs seconds.
        tag, value = node.tag, node.value
        if tag in (_STR, _TIMESTAMP):
            return value  # dates are parsed by the schema, in Asia/Ho_Chi_Minh
        if tag == _INT:
            # keep "00070" or "12:30" as written
            return int(value.replace("_", "")) if _DECIMAL_INT.match(value) else value
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value.lower() in ("yes", "true", "on", "y")
        try:
            return yaml.SafeLoader.construct_object(_LOADER_FOR_SCALARS, node)
        except (yaml.YAMLError, ValueError, TypeError, OverflowError) as exc:
            # An explicit tag the text does not fit (!!float abc, !!binary of no base64) or
            # one safe YAML refuses (!!python/object...).
            raise YamlSyntaxError(
                self._pos(node), f"{node.value!r} cannot be read as {tag}: {_first_line(exc)}"
            ) from exc


class _ScalarLoader(yaml.SafeLoader):
    def __init__(self) -> None:
        super().__init__("")


_LOADER_FOR_SCALARS = _ScalarLoader()


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Plain Python data of one file plus the position of every value in it."""

    file: str
    data: Any
    positions: dict[Loc, Position]


def read_yaml(path: Path, display_name: str | None = None) -> YamlDocument:
    """Parse one YAML file, keeping positions; raise YamlSyntaxError if it is not YAML."""
    name = display_name or str(path)
    text = path.read_text(encoding="utf-8")
    return parse_yaml(text, name)


class _NotPlainError(Exception):
    """The fast reader met something only the full reader answers exactly (see parse_plain)."""


_MAP_TAGS = (None, "!", "tag:yaml.org,2002:map")
_SEQ_TAGS = (None, "!", "tag:yaml.org,2002:seq")


def parse_plain(text: str, name: str) -> Any:
    """The data of a YAML text, without positions, or ``_NOT_PLAIN`` when it holds anything
    the full reader (``parse_yaml``) must judge: a syntax error, a duplicate key, an alias, an
    unusual tag, too many values.

    Why: ``parse_yaml`` composes the whole node tree and keeps a position for every value; for a
    national inventory that is ~100 MB of transient objects and most of the load time, and the
    positions serve only error messages. This reader builds the same data straight from the
    parser's events (libyaml's when PyYAML has it) and keeps nothing else; a caller that finds a
    mistake in the data reads the files again with ``parse_yaml`` for the messages. For any
    text it accepts, the data equals ``parse_yaml``'s (tests/inventory/test_yamlsource.py).
    """
    builder = _Builder(name)
    stack: list[tuple[Any, Any]] = []  # (open collection, pending key of a mapping or _NO_KEY)
    root: Any = _NO_KEY
    count = 0
    try:
        for event in yaml.parse(text, Loader=_COMPOSER):
            if isinstance(event, yaml.ScalarEvent):
                if event.anchor is not None:
                    raise _NotPlainError
                tag = event.tag
                if tag is None or tag == "!":
                    tag = _resolve(event.value, event.implicit)
                value = builder._scalar(yaml.ScalarNode(tag, event.value))
            elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
                mapping = isinstance(event, yaml.MappingStartEvent)
                if event.anchor is not None or event.tag not in (
                    _MAP_TAGS if mapping else _SEQ_TAGS
                ):
                    raise _NotPlainError
                if stack and isinstance(stack[-1][0], dict) and stack[-1][1] is _NO_KEY:
                    raise _NotPlainError  # a collection as a mapping key
                stack.append(({} if mapping else [], _NO_KEY))
                continue
            elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
                value, _ = stack.pop()
            elif isinstance(event, yaml.AliasEvent):
                raise _NotPlainError
            else:  # stream and document start and end
                if isinstance(event, yaml.DocumentStartEvent) and root is not _NO_KEY:
                    raise _NotPlainError  # a second document: compose() refuses it
                continue
            count += 1
            if count > MAX_VALUES:
                raise _NotPlainError
            if not stack:
                root = value
                continue
            container, key = stack[-1]
            if isinstance(container, list):
                container.append(value)
            elif key is _NO_KEY:
                if not isinstance(value, str | int) or value in container:
                    raise _NotPlainError
                stack[-1] = (container, value)
            else:
                container[key] = value
                stack[-1] = (container, _NO_KEY)
    except Exception:  # whatever it is, parse_yaml says it exactly
        return _NOT_PLAIN
    return {} if root is _NO_KEY else root


def _resolve(value: str, implicit: tuple[bool, bool]) -> str:
    """The tag the composer gives a scalar written without one (YAML 1.1 implicit types)."""
    tag: str = _LOADER_FOR_SCALARS.resolve(yaml.ScalarNode, value, implicit)  # type: ignore[no-untyped-call]
    return tag


_NO_KEY: Any = object()
_NOT_PLAIN: Any = object()
NOT_PLAIN: Any = _NOT_PLAIN
"""What ``parse_plain`` returns for a text it leaves to ``parse_yaml``."""


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _offset_position(text: str, name: str, offset: int) -> Position:
    """The line and column of a character offset into `text`."""
    before = text[:offset]
    line = before.count("\n") + 1
    return Position(name, line, offset - (before.rfind("\n") + 1) + 1)


def parse_yaml(text: str, name: str) -> YamlDocument:
    """Parse YAML text named `name` in messages."""
    try:
        node = yaml.compose(text, Loader=_COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        problem = exc.problem or exc.context or "not valid YAML"
        raise YamlSyntaxError(Position(name, line, col), f"YAML syntax: {problem}") from exc
    except yaml.reader.ReaderError as exc:
        # A character YAML does not allow (a NUL, a control character): no mark, an offset.
        position = _offset_position(text, name, exc.position)
        char = exc.character
        code = char if isinstance(char, int) else ord(str(char)[:1] or "\0")
        raise YamlSyntaxError(
            position, f"YAML syntax: character U+{code:04X} is not allowed (a control character?)"
        ) from exc
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(Position(name, 1, 1), f"YAML syntax: {_first_line(exc)}") from exc
    builder = _Builder(name)
    if node is None:
        return YamlDocument(name, {}, {(): Position(name, 1, 1)})
    try:
        data = builder.build(node, ())
    except RecursionError as exc:
        position = Position(name, node.start_mark.line + 1, node.start_mark.column + 1)
        raise YamlSyntaxError(position, "values nested too deeply") from exc
    return YamlDocument(name, data, builder.positions)
