"""Any YAML gives a config or positioned errors, never another exception (issue 15, fuzz).

Hypothesis feeds the real loader (files on disk, as `netwatch check-config` reads them):
generated structures shaped like a config (the sections and field names NetWatch knows, values
of every YAML type), the shipped example with a value somewhere replaced, and raw text
mutations of the shipped example (lines dropped, doubled, cut, characters and YAML syntax
inserted: tags, anchors, aliases, control characters). Each must load or raise `ConfigError`
whose issues all have a position in a file.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netwatch.inventory import Inventory, load_inventory
from netwatch.inventory.divisions import Divisions
from netwatch.inventory.loader import ConfigError
from netwatch.inventory.yamlsource import NOT_PLAIN, YamlSyntaxError, parse_plain, parse_yaml
from tests.lam_dong import ENV, EXAMPLE

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")
EXAMPLE_DATA = yaml.safe_load(EXAMPLE_TEXT)
DIVISIONS = Divisions()

# Words the loader knows, so generated documents reach the validators and the cross-checks.
SECTIONS = (
    "province", "intervals", "thresholds", "isps", "snmp_credentials", "upstreams", "portals",
    "communes", "maintenance", "reference_targets", "notifications", "provincial_it",
)  # fmt: skip
FIELDS = (
    "code", "name", "links", "id", "isp", "circuit", "bandwidth_mbps", "path", "address",
    "interface", "upstream", "parent", "contacts", "level", "email", "escalate_after_min",
    "url", "env", "community", "version", "ca_file", "starts", "ends", "scope", "target",
    "public_url", "link_secret", "smtp", "webhooks", "telegram", "remind_every_min", "router",
    "devices", "lat", "lon", "icmp_s", "snmp_s", "loss_ratio", "rtt_ms",
)  # fmt: skip
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["vnpt", "viettel", "24848", "00070", "127.0.0.1", "::1", "tslcd", "68"]),
    st.sampled_from(["2026-11-22 22:00", "0001-01-01", "9999-12-31 23:59", "12:30", "1e400"]),
)
keys = st.one_of(st.sampled_from(FIELDS), st.text(min_size=1, max_size=10), st.integers())
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=5)),
    max_leaves=25,
)
documents = st.one_of(
    st.dictionaries(st.sampled_from(SECTIONS), values, max_size=6),
    values,
)
# What a careless edit or a broken file puts into YAML text.
INSERTS = (
    ":", "- ", "[", "]", "{", "}", ",", "'", '"', "\t", "#", "&a ", "*a", "*b", "!!binary ",
    "!!float ", "!!int ", "!!python/object:os.system ", "!!set ", "!!omap ", "!!timestamp ",
    "? ", "|", ">", "%YAML 1.1\n", "---\n", "...\n", "\x00", "\x1b", "\ufeff", "\x85", "<<: *a\n",
    "&a [*a]", "{a: &a [*a]}", "9" * 400, "-" * 3, "\r", "\\", "@", "`", "\u2028",
)  # fmt: skip


@pytest.fixture(scope="module")
def config_file() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="nw-fuzz-") as folder:
        yield Path(folder) / "netwatch.yaml"


def _load(path: Path, text: str) -> Inventory | ConfigError:
    """The loader's verdict; any exception but ConfigError fails the test (Hypothesis shrinks)."""
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_inventory(path, environ=ENV, divisions=DIVISIONS)
    except ConfigError as error:
        caught = error
    assert caught.issues, "a ConfigError without an issue"
    for issue in caught.issues:
        assert issue.position.line >= 1, issue
        assert issue.position.column >= 1, issue
        assert issue.message, issue
        str(issue)  # prints
    return caught


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def test_the_shipped_example_loads(config_file: Path) -> None:
    assert isinstance(_load(config_file, EXAMPLE_TEXT), Inventory)


@FUZZ
@given(documents)
def test_generated_documents(config_file: Path, document: Any) -> None:
    _load(config_file, _dump(document))


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for key, value in data.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            out += _paths(value, (*prefix, i))
    return out


EXAMPLE_PATHS = _paths(EXAMPLE_DATA)[1:]


@FUZZ
@given(st.sampled_from(EXAMPLE_PATHS), values, st.booleans())
def test_the_example_with_a_value_replaced_or_removed(
    config_file: Path, where: tuple[Any, ...], value: Any, remove: bool
) -> None:
    data = copy.deepcopy(EXAMPLE_DATA)
    parent = data
    for part in where[:-1]:
        parent = parent[part]
    if remove:
        del parent[where[-1]]
    else:
        parent[where[-1]] = value
    _load(config_file, _dump(data))


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    lines = EXAMPLE_TEXT.splitlines(keepends=True)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        i = draw(st.integers(min_value=0, max_value=len(lines) - 1))
        op = draw(st.sampled_from(["drop", "double", "cut", "insert", "indent", "swap"]))
        if op == "drop":
            del lines[i]
        elif op == "double":
            lines.insert(i, lines[i])
        elif op == "cut":
            lines[i] = lines[i][: draw(st.integers(min_value=0, max_value=len(lines[i])))]
        elif op == "insert":
            text = draw(st.one_of(st.sampled_from(INSERTS), st.text(max_size=8)))
            at = draw(st.integers(min_value=0, max_value=len(lines[i])))
            lines[i] = lines[i][:at] + text + lines[i][at:]
        elif op == "indent":
            lines[i] = draw(st.sampled_from([" ", "  ", "\t", ""])) + lines[i].lstrip(" ")
        else:
            j = draw(st.integers(min_value=0, max_value=len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        if not lines:
            break
    if draw(st.booleans()):
        text = "".join(lines)
        return text[: draw(st.integers(min_value=0, max_value=len(text)))]
    return "".join(lines)


@FUZZ
@given(mutated_example())
def test_raw_text_mutations_of_the_example(config_file: Path, text: str) -> None:
    _load(config_file, text)


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n",  # a recursive alias
        "province: !!binary 'not base64!'\n",
        "province: !!float abc\n",
        "province: !!python/object:os.system x\n",
        "province: 68\x00\n",
        "province: 68\n---\nprovince: 68\n",
        "intervals: !!set {a, b}\n",
        "? [a, b]\n: c\n",
        "province: !!timestamp 2026-13-45\n",
        "a: " + "[" * 5000 + "]" * 5000 + "\n",  # nested deeper than Python recurses
        "a: &a [x, x, x, x, x, x, x, x, x, x]\n"  # the billion laughs
        + "".join(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 10)}]\n"
            for p, c in zip("abcdefg", "bcdefgh", strict=True)
        ),
    ],
)
def test_known_hard_cases(config_file: Path, text: str) -> None:
    assert isinstance(_load(config_file, text), ConfigError)


def test_a_control_character_is_named_where_it_stands(config_file: Path) -> None:
    error = _load(config_file, "province: 68\nintervals:\n  icmp_s: 3\x000\n")
    assert isinstance(error, ConfigError)
    [issue] = error.issues
    assert (issue.position.line, issue.position.column) == (3, 12)
    assert "U+0000 is not allowed" in issue.message


def _same(a: Any, b: Any) -> bool:
    """Equal data with equal types all the way down (True == 1 and 1 == 1.0 would hide a bug)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return a == b or (a != a and b != b)  # NaN is itself


def _differential(text: str) -> None:
    """The fast reader (no positions, used first by load_inventory) gives exactly the full
    reader's data for every text it accepts, and accepts no text the full reader refuses."""
    plain = parse_plain(text, "f.yaml")
    try:
        full = parse_yaml(text, "f.yaml").data
    except YamlSyntaxError:
        assert plain is NOT_PLAIN
        return
    if plain is not NOT_PLAIN:
        assert _same(plain, full)


@FUZZ
@given(mutated_example())
def test_the_fast_reader_agrees_with_the_full_one_on_mutated_text(text: str) -> None:
    _differential(text)


@FUZZ
@given(documents)
def test_the_fast_reader_agrees_with_the_full_one_on_generated_documents(document: Any) -> None:
    _differential(_dump(document))


def test_the_fast_reader_reads_the_shipped_example_and_leaves_the_unusual_to_the_full_one() -> None:
    assert _same(parse_plain(EXAMPLE_TEXT, "x"), parse_yaml(EXAMPLE_TEXT, "x").data)
    for text in (
        "a: &x 1\nb: *x\n",  # aliases
        "a: 1\na: 2\n",  # a duplicate key: the full reader names both lines
        "? [1, 2]\n: x\n",  # a collection as a key
        "a: !!binary 'not base64!'\n",
        "a: !!set {x}\n",
        "--- 1\n--- 2\n",  # two documents
        "a: [\n",  # syntax
    ):
        assert parse_plain(text, "x") is NOT_PLAIN, text
    for text in ("", "# only a comment\n", "null\n", "a:\n", "a: 00070\nb: 12:30\nc: 2026-11-22\n"):
        _differential(text)
