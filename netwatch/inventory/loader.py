"""Load an inventory from a YAML file or folder, reporting every mistake with its place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from netwatch.inventory.divisions import Divisions
from netwatch.inventory.models import Commune, Inventory
from netwatch.inventory.yamlsource import (
    NOT_PLAIN,
    Loc,
    Position,
    YamlSyntaxError,
    parse_plain,
    read_yaml,
)

_DICT_SECTIONS = ("isps", "snmp_credentials", "upstreams", "portals")
_LIST_SECTIONS = ("communes", "maintenance", "reference_targets")
_SINGLE_SECTIONS = ("province", "intervals", "thresholds")


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One mistake: where it is, which field, and what was expected."""

    position: Position
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        return f"{self.position}: {where}{self.message}"


class ConfigError(Exception):
    """The configuration has mistakes; `issues` lists all of them, in file order."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = sorted(
            issues, key=lambda i: (i.position.file, i.position.line, i.position.column)
        )
        count = len(self.issues)
        lines = "\n".join(str(i) for i in self.issues)
        super().__init__(f"{count} error{'s' if count != 1 else ''} in the configuration:\n{lines}")


def format_path(loc: Loc) -> str:
    """('communes', 2, 'links', 0, 'isp') -> 'communes[2].links[0].isp'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Merged:
    """Several files merged into one document, remembering which file each value came from."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}
        self.positions: dict[Loc, Position] = {}
        self.issues: list[ConfigIssue] = []
        self.root_position: Position | None = None

    @classmethod
    def plain(cls, files: list[Path]) -> _Merged | None:
        """The files merged without positions (``parse_plain``), or None when any of them, or
        the merge, has something to report: then ``add`` reads them again for the messages."""
        merged = cls()
        for path in files:
            try:
                data = parse_plain(path.read_text(encoding="utf-8"), str(path))
            except (OSError, UnicodeDecodeError):
                return None
            if data is NOT_PLAIN or not isinstance(data, dict | None):
                return None
            for key, value in (data or {}).items():
                if key in _LIST_SECTIONS and isinstance(value, list):
                    merged.data.setdefault(key, []).extend(value)
                    continue
                if key == "portals" and isinstance(value, dict):
                    _anchor_ca_files(value, path.parent)
                if key in _DICT_SECTIONS and isinstance(value, dict):
                    section = merged.data.setdefault(key, {})
                    if section.keys() & value.keys():
                        return None
                    section.update(value)
                    continue
                if key in merged.data:
                    return None
                merged.data[key] = value
        return merged

    def add(self, path: Path, display: str) -> None:
        try:
            doc = read_yaml(path, display)
        except YamlSyntaxError as exc:
            self.issues.append(ConfigIssue(exc.position, "", exc.message))
            return
        except (OSError, UnicodeDecodeError) as exc:
            self.issues.append(ConfigIssue(Position(display, 1, 1), "", f"cannot read: {exc}"))
            return
        if self.root_position is None:
            self.root_position = doc.positions[()]
        if doc.data in ({}, None):
            return
        if not isinstance(doc.data, dict):
            self.issues.append(
                ConfigIssue(
                    doc.positions[()], "", "expected a mapping of sections at the top level"
                )
            )
            return
        pos = doc.positions
        # Every value's position, grouped by its section and by its section's entry: copying one
        # section's positions must not scan the whole file's (a national file has 250,000).
        by_section: dict[Any, list[tuple[Loc, Position]]] = {}
        by_entry: dict[tuple[Any, Any], list[tuple[Loc, Position]]] = {}
        for loc, position in pos.items():
            if loc:
                by_section.setdefault(loc[0], []).append((loc, position))
                if len(loc) > 1 and loc[0] in _DICT_SECTIONS:
                    by_entry.setdefault((loc[0], loc[1]), []).append((loc, position))
        for key, value in doc.data.items():
            if key in _LIST_SECTIONS and isinstance(value, list):
                offset = len(self.data.setdefault(key, []))
                self.data[key].extend(value)
                self._copy(by_section[key], (key,), offset)
                continue
            if key == "portals" and isinstance(value, dict):
                _anchor_ca_files(value, path.parent)
            if key in _DICT_SECTIONS and isinstance(value, dict):
                section = self.data.setdefault(key, {})
                self.positions.setdefault((key,), pos[(key,)])
                for item, body in value.items():
                    if item in section:
                        first = self.where((key, item), key=True)
                        self.issues.append(
                            ConfigIssue(
                                pos[(key, item, "__key__")],
                                f"{key}.{item}",
                                f"defined twice (also at {first})",
                            )
                        )
                        continue
                    section[item] = body
                    self._copy(by_entry.get((key, item), []), (key, item), None)
                continue
            if key in self.data:
                first = self.positions[(key,)]
                self.issues.append(
                    ConfigIssue(pos[(key,)], str(key), f"defined twice (also at {first})")
                )
                continue
            self.data[key] = value
            self._copy(by_section[key], (key,), None)

    def _copy(self, src: list[tuple[Loc, Position]], prefix: Loc, offset: int | None) -> None:
        """Take the positions of values under `prefix` (all of `src` is), list items shifted by
        `offset` (a list section continued from an earlier file)."""
        n = len(prefix)
        for loc, position in src:
            rest = loc[n:]
            if offset is not None and rest and isinstance(rest[0], int):
                rest = (rest[0] + offset, *rest[1:])
            elif offset is not None and not rest:
                self.positions.setdefault(prefix, position)
                continue
            self.positions[prefix + rest] = position

    def issue(self, loc: Loc, message: str) -> ConfigIssue:
        """A mistake in the value at `loc`, placed where that value stands."""
        return ConfigIssue(self.where(loc), format_path(loc), message)

    def where(self, loc: Loc, *, key: bool = False) -> Position:
        """Best position for a location: the value itself, else its nearest parent."""
        if key and (*loc, "__key__") in self.positions:
            return self.positions[(*loc, "__key__")]
        probe = loc
        while probe:
            if probe in self.positions:
                return self.positions[probe]
            probe = probe[:-1]
        return self.root_position or Position("<config>", 1, 1)


def _anchor_ca_files(portals: dict[Any, Any], folder: Path) -> None:
    # A relative ca_file means "next to this config file", wherever NetWatch is started from.
    for body in portals.values():
        if isinstance(body, dict) and isinstance(body.get("ca_file"), str):
            ca = Path(body["ca_file"])
            if not ca.is_absolute():
                body["ca_file"] = str((folder / ca).resolve())


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_inventory(
    path: Path | str,
    *,
    environ: Mapping[str, str] | None = None,
    divisions: Divisions | None = None,
) -> Inventory:
    """Read, merge and validate; raise ConfigError listing every mistake found."""
    path = Path(path)
    if not path.exists():
        raise ConfigError([ConfigIssue(Position(str(path), 1, 1), "", "no such file or folder")])
    files = _files(path)
    if not files:
        raise ConfigError(
            [ConfigIssue(Position(str(path), 1, 1), "", "the folder has no *.yaml files")]
        )
    divisions = divisions or Divisions()
    environ = dict(os.environ) if environ is None else environ
    # First without positions (fast, a fraction of the memory); a configuration with anything
    # to report is read again, keeping every value's position for the messages.
    plain = _Merged.plain(files)
    if plain is not None:
        try:
            fast = Inventory.model_validate(plain.data, context=_context(plain, environ, divisions))
        except ValidationError:
            pass
        else:
            if not _cross_check(plain, divisions):
                return fast
    merged = _Merged()
    for file in files:
        merged.add(file, str(file))
    context = _context(merged, environ, divisions)
    issues = list(merged.issues)
    inventory: Inventory | None = None
    try:
        inventory = Inventory.model_validate(merged.data, context=context)
    except ValidationError as exc:
        issues.extend(_translate(exc, merged))
    issues.extend(_cross_check(merged, divisions))
    if issues:
        raise ConfigError(_dedupe(issues))
    assert inventory is not None
    return inventory


def _context(merged: _Merged, environ: Mapping[str, str], divisions: Divisions) -> dict[str, Any]:
    province = merged.data.get("province")
    return {
        "environ": environ,
        "divisions": divisions,
        "province": province if isinstance(province, int) else None,
    }


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen: set[tuple[str, str, str]] = set()
    out = []
    for issue in issues:
        key = (str(issue.position), issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


_TYPE_WORDS = {
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "dict_type": "expected a mapping (key: value lines)",
    "model_type": "expected a mapping (key: value lines)",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
}


def _translate(exc: ValidationError, merged: _Merged) -> list[ConfigIssue]:
    issues = []
    errors = exc.errors(include_input=False, include_url=False)
    locs = [tuple(p for p in e["loc"] if not _is_validator_tag(p)) for e in errors]
    for error, loc in zip(errors, locs, strict=True):
        kind = error["type"]
        if kind == "too_short" and any(len(o) > len(loc) and o[: len(loc)] == loc for o in locs):
            continue  # pydantic counts items that failed validation as missing; say why they failed
        ctx = error.get("ctx") or {}
        if kind == "extra_forbidden":
            parent = _allowed_keys(loc[:-1])
            allowed = f" (allowed here: {', '.join(parent)})" if parent else ""
            message = f"unknown key {loc[-1]!r}{allowed}"
            position = merged.where(loc, key=True)
        elif kind == "missing":
            message = "required field is missing"
            position = merged.where(loc[:-1])
        elif kind == "literal_error":
            message = f"expected one of {ctx.get('expected', '')}"
            position = merged.where(loc)
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            bound = {
                "greater_than": "more than",
                "greater_than_equal": "at least",
                "less_than": "less than",
                "less_than_equal": "at most",
            }[kind]
            limit = next(iter(ctx.values()), "")
            if isinstance(limit, float) and limit.is_integer():
                limit = int(limit)
            message = f"must be {bound} {limit}"
            position = merged.where(loc)
        elif kind == "too_short":
            message = f"needs at least {ctx.get('min_length', 1)} item(s)"
            position = merged.where(loc)
        elif kind == "string_pattern_mismatch":
            message = "expected an id of lowercase letters, digits and '-' (e.g. vnpt-tslcd)"
            position = merged.where(loc)
        elif kind in _TYPE_WORDS:
            message = _TYPE_WORDS[kind]
            position = merged.where(loc)
        else:
            message = str(error["msg"])
            if message.startswith("Value error, "):
                message = message[len("Value error, ") :]
            position = merged.where(loc)
        issues.append(ConfigIssue(position, format_path(loc), message))
    return issues


def _is_validator_tag(part: Any) -> bool:
    # pydantic adds union-member tags such as 'IPv4Address' or 'function-before[...]' to locs
    return isinstance(part, str) and (
        part in ("IPv4Address", "IPv6Address", "int", "str", "float")
        or part.startswith(("function-", "union["))
    )


def _allowed_keys(loc: Loc) -> list[str]:
    schema: Any = Inventory
    for part in loc:
        if isinstance(part, int):
            continue
        fields = getattr(schema, "model_fields", None)
        if fields is None:
            return []
        if part not in fields:
            continue  # a dict key such as an ISP id
        schema = _inner_model(fields[part].annotation)
    fields = getattr(schema, "model_fields", None)
    if fields is None:
        return []
    hidden = {"province_code", "name_hint"} if schema is Commune else set()
    return [f for f in fields if f not in hidden]


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _check_agent(
    merged: _Merged,
    agent: dict[str, Any],
    i: int,
    code: str | None,
    link_ids: dict[str, int],
    portals: set[str],
    agents: dict[str, Loc],
) -> list[ConfigIssue]:
    """A commune agent names its commune's links and known portals; agent ids are unique."""
    issues: list[ConfigIssue] = []
    base: Loc = ("communes", i, "agent")
    aid = agent.get("id") if agent.get("id") is not None else (code and f"{code}-agent")
    if isinstance(aid, str):
        if aid in agents:
            first = merged.where(agents[aid])
            issues.append(merged.issue(base, f"agent id {aid!r} is used twice (also at {first})"))
        else:
            agents[aid] = base
    paths = agent.get("paths")
    seen: set[str] = set()
    for j, path in enumerate(paths if isinstance(paths, list) else []):
        link = path.get("link") if isinstance(path, dict) else None
        if not isinstance(link, str):
            continue
        loc: Loc = (*base, "paths", j, "link")
        if link not in link_ids:
            listed = ", ".join(sorted(link_ids)) or "none"
            issues.append(
                merged.issue(loc, f"this commune has no link {link!r}; its links: {listed}")
            )
        elif link in seen:
            issues.append(merged.issue(loc, f"link {link!r} has two agent paths"))
        seen.add(link)
    names = agent.get("portals")
    for j, portal in enumerate(names if isinstance(names, list) else []):
        if isinstance(portal, str) and portal not in portals:
            listed = ", ".join(sorted(portals)) or "none: add a `portals:` section"
            issues.append(
                merged.issue((*base, "portals", j), f"unknown portal {portal!r}; defined: {listed}")
            )
    return issues


def _cross_check(merged: _Merged, divisions: Divisions) -> list[ConfigIssue]:
    """References between sections and duplicates; works on raw data so it runs even when
    other parts failed validation, and every mistake is reported in one run."""
    data = merged.data
    issues: list[ConfigIssue] = []

    def ids(section: str) -> set[str]:
        value = data.get(section)
        return {k for k in value if isinstance(k, str)} if isinstance(value, dict) else set()

    isps, creds, ups = ids("isps"), ids("snmp_credentials"), ids("upstreams")

    def ref(value: Any, known: set[str], loc: Loc, what: str, section: str) -> None:
        if isinstance(value, str) and value not in known:
            listed = ", ".join(sorted(known)) or f"none: add a `{section}:` section"
            issues.append(merged.issue(loc, f"unknown {what} {value!r}; defined: {listed}"))

    upstreams = data.get("upstreams")
    if isinstance(upstreams, dict):
        for uid, body in upstreams.items():
            if isinstance(body, dict):
                ref(body.get("isp"), isps, ("upstreams", uid, "isp"), "ISP", "isps")
                if body.get("parent") is not None:
                    ref(
                        body.get("parent"),
                        ups,
                        ("upstreams", uid, "parent"),
                        "upstream",
                        "upstreams",
                    )

    province = data.get("province")
    agents: dict[str, Loc] = {}  # agent id -> where it is declared
    seen_codes: dict[str, Loc] = {}
    seen_addresses: dict[str, Loc] = {}
    communes = data.get("communes")
    # Valid YAML that gives NetWatch nothing to watch: a section left empty or commented out, or
    # (a folder) the file holding it not named *.yaml. Portals or upstreams alone are a
    # legitimate start (check-config warns that no commune is listed). A file that did not read
    # (merged.issues) says so itself.
    if not (communes or data.get("portals") or data.get("upstreams") or merged.issues):
        issues.append(
            merged.issue(
                ("communes",),
                "no commune, portal or upstream listed: NetWatch would watch nothing; list"
                " the communes under `communes:` (in a folder, the file holding them must"
                " end in .yaml or .yml)",
            )
        )
    for i, commune in enumerate(communes if isinstance(communes, list) else []):
        if not isinstance(commune, dict):
            continue
        code = _code(commune.get("code"))
        if code is not None:
            if code in seen_codes:
                first = merged.where(seen_codes[code])
                issues.append(
                    merged.issue(
                        ("communes", i, "code"), f"commune {code} is listed twice (also at {first})"
                    )
                )
            else:
                seen_codes[code] = ("communes", i, "code")
            info = divisions.commune(code)
            if (
                info is not None
                and isinstance(province, int)
                and province in divisions.provinces
                and info.province_code != province
            ):
                issues.append(
                    merged.issue(
                        ("communes", i, "code"),
                        f"{info.name} belongs to {info.province_name} ({info.province_code:02d}), "
                        f"not to province {province:02d} named at the top",
                    )
                )
        router = commune.get("router")
        if isinstance(router, dict):
            ref(
                router.get("snmp"),
                creds,
                ("communes", i, "router", "snmp"),
                "SNMP credentials",
                "snmp_credentials",
            )
        links = commune.get("links")
        link_ids: dict[str, int] = {}
        for j, link in enumerate(links if isinstance(links, list) else []):
            if not isinstance(link, dict):
                continue
            base: Loc = ("communes", i, "links", j)
            ref(link.get("isp"), isps, (*base, "isp"), "ISP", "isps")
            if link.get("upstream") is not None:
                ref(link.get("upstream"), ups, (*base, "upstream"), "upstream", "upstreams")
            lid = link.get("id")
            if isinstance(lid, str):
                if lid in link_ids:
                    issues.append(
                        merged.issue(
                            (*base, "id"), f"link id {lid!r} is used twice in this commune"
                        )
                    )
                link_ids[lid] = j
            addr = link.get("address")
            if isinstance(addr, str):
                if addr in seen_addresses:
                    first = merged.where(seen_addresses[addr])
                    issues.append(
                        merged.issue(
                            (*base, "address"),
                            f"address {addr} is already pinged for another link (at {first})",
                        )
                    )
                else:
                    seen_addresses[addr] = (*base, "address")
        agent = commune.get("agent")
        if isinstance(agent, dict):
            issues.extend(_check_agent(merged, agent, i, code, link_ids, ids("portals"), agents))

    # A commune's thresholds are validated as a whole once its overrides meet the defaults.
    defaults = data.get("thresholds")
    defaults = defaults if isinstance(defaults, dict) else {}
    for i, commune in enumerate(communes if isinstance(communes, list) else []):
        overrides = commune.get("thresholds") if isinstance(commune, dict) else None
        if not isinstance(overrides, dict) or not overrides.keys() & {
            "enter_rounds",
            "enter_window",
        }:
            continue
        effective = {"enter_rounds": 3, "enter_window": 5, **defaults, **overrides}
        rounds, window = effective["enter_rounds"], effective["enter_window"]
        if isinstance(rounds, int) and isinstance(window, int) and window < rounds:
            loc: Loc = ("communes", i, "thresholds")
            issues.append(
                merged.issue(
                    loc, f"enter_window ({window}) must be at least enter_rounds ({rounds})"
                )
            )

    issues.extend(_check_channels(data, merged))

    windows = data.get("maintenance")
    for k, window in enumerate(windows if isinstance(windows, list) else []):
        scope = window.get("scope") if isinstance(window, dict) else None
        if not isinstance(scope, dict):
            continue
        loc = ("maintenance", k, "scope")
        if isinstance(scope.get("isp"), str):
            ref(scope["isp"], isps, (*loc, "isp"), "ISP", "isps")
        code = _code(scope.get("commune"))
        if code is not None and code not in seen_codes:
            issues.append(
                merged.issue((*loc, "commune"), f"commune {code} is not in this configuration")
            )
        link = scope.get("link")
        if isinstance(link, str) and "/" in link:
            lcode, lid = link.split("/", 1)
            target = _code(lcode)
            owner = next(
                (
                    c
                    for c in (communes or [])
                    if isinstance(c, dict) and _code(c.get("code")) == target
                ),
                None,
            )
            known = {lk.get("id") for lk in (owner or {}).get("links", []) if isinstance(lk, dict)}
            if owner is None or lid not in known:
                issues.append(
                    merged.issue((*loc, "link"), f"no link {link!r} in this configuration")
                )

    portals = data.get("portals")
    if isinstance(portals, dict):
        for pid, body in portals.items():
            if isinstance(body, dict) and isinstance(body.get("ca_file"), str):
                ca = Path(body["ca_file"])
                if not ca.is_file():
                    issues.append(
                        ConfigIssue(
                            merged.where(("portals", pid, "ca_file")),
                            f"portals.{pid}.ca_file",
                            f"no such file: {ca}",
                        )
                    )
    return issues


def _code(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return f"{value:05d}"
    if isinstance(value, str) and value.strip().isdigit():
        return f"{int(value):05d}"
    return None


_CHANNEL_NEEDS = (
    (
        "email",
        "smtp",
        "e-mail contacts need `notifications.smtp` (the mail server to send through)",
    ),
    (
        "webhook",
        "webhook_secret",
        "webhook contacts need `notifications.webhook_secret` (to sign bodies)",
    ),
    ("telegram_chat_id", "telegram", "Telegram contacts need `notifications.telegram` (the bot)"),
    ("zalo_phone", "zalo", "Zalo contacts need `notifications.zalo` (the Official Account)"),
)


def _check_channels(data: dict[str, Any], merged: _Merged) -> list[ConfigIssue]:
    """With a notifications section, every channel a contact uses must be configured there.

    Without one, NetWatch records tickets and tells nobody (a warning, not an error), so a
    config can be checked and run before the mail server is known."""
    notifications = data.get("notifications")
    if not isinstance(notifications, dict):
        return []
    places: list[tuple[Loc, object]] = []
    isps = data.get("isps")
    for isp_id, isp in isps.items() if isinstance(isps, dict) else []:
        contacts = isp.get("contacts") if isinstance(isp, dict) else None
        for j, contact in enumerate(contacts if isinstance(contacts, list) else []):
            places.append((("isps", isp_id, "contacts", j), contact))
    it = data.get("provincial_it")
    contacts = it.get("contacts") if isinstance(it, dict) else None
    for j, contact in enumerate(contacts if isinstance(contacts, list) else []):
        places.append((("provincial_it", "contacts", j), contact))
    issues = []
    for loc, contact in places:
        if not isinstance(contact, dict):
            continue
        for field_name, needed, message in _CHANNEL_NEEDS:
            if contact.get(field_name) and notifications.get(needed) is None:
                where: Loc = (*loc, field_name)
                issues.append(merged.issue(where, message))
    return issues
