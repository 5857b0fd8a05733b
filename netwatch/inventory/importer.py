"""Turn the spreadsheet provincial staff already keep (CSV) into an inventory file."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path

import yaml

from netwatch.inventory.divisions import CommuneInfo, Divisions, fold

# Column names people actually use, folded (lowercase, no diacritics); the first match wins.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("ma xa", "ma don vi", "ma dvhc", "commune code", "commune_code", "code", "ma"),
    "name": ("ten xa", "xa phuong", "xa/phuong", "don vi", "commune", "commune name", "ten don vi"),
    "isp": ("nha mang", "nha cung cap", "isp", "provider"),
    "circuit": ("ma mach", "so hop dong", "ma thue bao", "circuit", "circuit id", "circuit_id"),
    "address": ("ip", "dia chi ip", "ip wan", "ip duong truyen", "link ip", "link_ip", "address"),
    "router": ("ip router", "router ip", "router_ip", "ip thiet bi"),
    "bandwidth": (
        "bang thong",
        "bang thong (mbps)",
        "toc do",
        "bandwidth",
        "bandwidth_mbps",
        "mbps",
    ),
    "path": ("loai duong truyen", "loai", "path", "mang"),
    "upstream": ("pop", "upstream", "diem ket noi"),
    "interface": ("cong", "interface", "cong wan"),
}
_REQUIRED = ("isp", "circuit", "address")
_ISP_NAMES = {"vnpt": "VNPT", "viettel": "Viettel", "fpt": "FPT Telecom", "mobifone": "MobiFone"}


@dataclass(frozen=True, slots=True)
class RowProblem:
    """A spreadsheet row that could not be used, and why (rows counted as in the sheet)."""

    row: int
    message: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.message}"


@dataclass(slots=True)
class _Commune:
    info: CommuneInfo
    router: str | None = None
    links: list[dict[str, object]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ImportResult:
    """The generated YAML text plus the rows that were skipped."""

    yaml_text: str
    communes: int
    links: int
    problems: tuple[RowProblem, ...]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", fold(text)).strip("-")[:40] or "link"


def import_csv(
    path: Path, *, province: int | None = None, divisions: Divisions | None = None
) -> ImportResult:
    """Read a CSV export (comma or semicolon, UTF-8 with or without BOM) into inventory YAML."""
    divisions = divisions or Divisions()
    text = path.read_text(encoding="utf-8-sig")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(
            text[:4096], delimiters=",;\t"
        )
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = list(reader)
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = [fold(h) for h in rows[0]]
    columns: dict[str, int] = {}
    for key, names in _COLUMNS.items():
        for name in names:
            if name in header:
                columns[key] = header.index(name)
                break
    missing = [k for k in _REQUIRED if k not in columns]
    if "code" not in columns and "name" not in columns:
        missing.insert(0, "code (or commune name)")
    if missing:
        raise ValueError(
            f"{path}: row 1 (header) has no column for: {', '.join(missing)}; "
            f"columns found: {', '.join(rows[0])}"
        )

    problems: list[RowProblem] = []
    communes: dict[str, _Commune] = {}
    isps: dict[str, str] = {}
    seen_addresses: dict[str, int] = {}
    upstreams: dict[str, tuple[str, str]] = {}  # id -> (name as written, ISP id)
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue

        def cell(key: str, row: list[str] = row) -> str:
            index = columns.get(key)
            return row[index].strip() if index is not None and index < len(row) else ""

        info, why = _find_commune(divisions, cell("code"), cell("name"), province)
        if info is None:
            problems.append(RowProblem(number, why))
            continue
        isp_text = cell("isp")
        if not isp_text:
            problems.append(RowProblem(number, "no ISP"))
            continue
        isp_id = _slug(isp_text.split()[0])
        isps.setdefault(isp_id, _ISP_NAMES.get(isp_id, isp_text))
        circuit = cell("circuit")
        if not circuit:
            problems.append(RowProblem(number, "no circuit ID"))
            continue
        address = cell("address")
        try:
            address = str(ip_address(address))
        except ValueError:
            problems.append(RowProblem(number, f"{address!r} is not an IP address"))
            continue
        if address in seen_addresses:
            problems.append(
                RowProblem(number, f"IP {address} is already used by row {seen_addresses[address]}")
            )
            continue
        router = cell("router")
        if router:
            try:
                router = str(ip_address(router))
            except ValueError:
                problems.append(RowProblem(number, f"router IP {router!r} is not an IP address"))
                continue
        bandwidth_text = cell("bandwidth").lower().replace("mbps", "").replace(",", ".").strip()
        try:
            bandwidth = float(bandwidth_text) if bandwidth_text else None
        except ValueError:
            problems.append(
                RowProblem(number, f"bandwidth {cell('bandwidth')!r} is not a number of Mbps")
            )
            continue
        if bandwidth is None or bandwidth <= 0:
            problems.append(RowProblem(number, "no bandwidth (Mbps)"))
            continue
        path_text = fold(cell("path"))
        link_path = "tslcd" if ("tslcd" in path_text or "chuyen dung" in path_text) else "internet"
        seen_addresses[address] = number
        entry = communes.setdefault(info.code, _Commune(info))
        if router:
            entry.router = entry.router or router
        link: dict[str, object] = {
            "id": _unique_link_id(entry, f"{isp_id}-{link_path}"),
            "isp": isp_id,
            "circuit": circuit,
            "bandwidth_mbps": int(bandwidth) if bandwidth.is_integer() else bandwidth,
            "path": link_path,
            "address": address,
        }
        upstream = cell("upstream")
        if upstream:
            upstream_id = _slug(upstream)
            upstreams.setdefault(upstream_id, (upstream, isp_id))
            link["upstream"] = upstream_id
        if cell("interface"):
            link["interface"] = cell("interface")
        entry.links.append(link)

    text_out = _render(path, province, isps, upstreams, communes)
    return ImportResult(
        text_out, len(communes), sum(len(c.links) for c in communes.values()), tuple(problems)
    )


def _unique_link_id(entry: _Commune, base: str) -> str:
    taken = {str(link["id"]) for link in entry.links}
    candidate, n = base, 2
    while candidate in taken:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _find_commune(
    divisions: Divisions, code: str, name: str, province: int | None
) -> tuple[CommuneInfo | None, str]:
    if code:
        digits = code.strip()
        if not digits.isdigit():
            return None, f"commune code {code!r} is not a number"
        info = divisions.commune(f"{int(digits):05d}")
        if info is None:
            return None, f"no commune has the official code {int(digits):05d}"
        if province is not None and info.province_code != province:
            where = f"{info.name} ({info.code}) is in {info.province_name}"
            return None, f"{where}, not province {province:02d}"
        return info, ""
    found = divisions.search(name, province=province, limit=3)
    exact = [
        c for c in found if fold(c.name) == fold(name) or fold(c.name).endswith(" " + fold(name))
    ]
    if len(exact) == 1:
        return exact[0], ""
    if not found:
        return None, f"no commune is named {name!r}"
    listed = ", ".join(f"{c.code} {c.name} ({c.province_name})" for c in found)
    return None, f"{name!r} is ambiguous or inexact; add the official code (candidates: {listed})"


def _render(
    source: Path,
    province: int | None,
    isps: dict[str, str],
    upstreams: dict[str, tuple[str, str]],
    communes: dict[str, _Commune],
) -> str:
    def dump(value: object) -> str:
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, width=100).rstrip()

    out = [
        f"# NetWatch inventory generated by `netwatch import {source.name}`.",
        "# Review it, add ISP contacts, then check it with `netwatch check-config`.",
        "",
    ]
    if province is not None:
        out.append(f"province: {province}")
    out.append("isps:")
    for isp_id, name in isps.items():
        out.append(f"  {isp_id}:")
        out.append(f"    name: {json.dumps(name, ensure_ascii=False)}")
        out.append("    contacts: []   # TODO: add the NOC's e-mail, escalation levels")
    if any(c.router for c in communes.values()):
        out += [
            "snmp_credentials:",
            "  default:",
            '    version: "2c"',
            "    community: {env: NETWATCH_SNMP_COMMUNITY}",
        ]
    if upstreams:
        out.append("upstreams:")
        for upstream_id, (name, isp_id) in upstreams.items():
            out += [
                f"  {upstream_id}:",
                f"    name: {json.dumps(name, ensure_ascii=False)}",
                f"    isp: {isp_id}",
                "    # address: the node's own address, if NetWatch should ping it",
            ]
    out.append("communes:")
    for entry in communes.values():
        body: dict[str, object] = {"code": int(entry.info.code)}
        if entry.router:
            body["router"] = {"address": entry.router, "snmp": "default"}
        body["links"] = entry.links
        out.append(f"  # {entry.info.name}, {entry.info.province_name}")
        out.append("  " + dump([body]).replace("\n", "\n  "))
    return "\n".join(out) + "\n"
