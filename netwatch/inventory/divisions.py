"""Official provinces and communes (vietnam-provinces), with diacritics-insensitive name search."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from functools import cached_property

from unidecode import unidecode
from vietnam_provinces import Province, Ward

_PREFIXES = ("xa ", "phuong ", "dac khu ", "thi tran ")


def fold(text: str) -> str:
    """Lowercase ASCII form of Vietnamese text: 'Xã Lạc Dương' -> 'xa lac duong'."""
    return " ".join(unidecode(text.replace("Đ", "D").replace("đ", "d")).lower().split())


def bare(folded: str) -> str:
    """A folded commune name without its 'xa '/'phuong ' prefix: 'xa lac duong' -> 'lac duong'."""
    for prefix in _PREFIXES:
        if folded.startswith(prefix):
            return folded[len(prefix) :]
    return folded


@dataclass(frozen=True, slots=True)
class CommuneInfo:
    """One official commune-level unit (xã, phường, đặc khu)."""

    code: str  # five digits, as published: "05518"
    name: str
    province_code: int
    province_name: str


class Divisions:
    """Lookup of the 34 provinces and 3,321 communes; built once per process."""

    def __init__(self) -> None:
        self.provinces: dict[int, str] = {p.code.value: p.name for p in Province.iter_all()}
        self.communes: dict[str, CommuneInfo] = {}
        for ward in Ward.iter_all():
            code = f"{ward.code.value:05d}"
            pcode = ward.province_code.value
            self.communes[code] = CommuneInfo(code, ward.name, pcode, self.provinces[pcode])

    @cached_property
    def _folded(self) -> list[tuple[str, str, CommuneInfo]]:
        return [(fold(c.name), bare(fold(c.name)), c) for c in self.communes.values()]

    def commune(self, code: str) -> CommuneInfo | None:
        """The commune with this five-digit code, or None."""
        return self.communes.get(code)

    def search(
        self, text: str, *, limit: int = 5, province: int | None = None
    ) -> list[CommuneInfo]:
        """Communes whose name matches `text`, diacritics-insensitive, best first."""
        query = fold(text)
        bare_query = bare(query)
        if not bare_query:
            return []
        pool = [row for row in self._folded if province is None or row[2].province_code == province]
        exact = [c for full, short, c in pool if short == bare_query or full == query]
        contains = [c for full, _, c in pool if bare_query in full and c not in exact]
        found = exact + sorted(contains, key=lambda c: len(c.name))
        if not exact and len(found) < limit:
            names = {short: c for _, short, c in pool}
            for match in difflib.get_close_matches(bare_query, list(names), n=limit, cutoff=0.6):
                if names[match] not in found:
                    found.append(names[match])
        return found[:limit]

    def nearest_codes(
        self, code: str, *, limit: int = 3, province: int | None = None
    ) -> list[CommuneInfo]:
        """Communes whose codes are numerically closest to an unknown code."""
        try:
            wanted = int(code)
        except ValueError:
            return []
        pool = [
            c for c in self.communes.values() if province is None or c.province_code == province
        ]
        return sorted(pool, key=lambda c: abs(int(c.code) - wanted))[:limit]


def describe(c: CommuneInfo) -> str:
    """'24848 Xã Lạc Dương (Lâm Đồng)' — how a commune is named in messages."""
    return f"{c.code} {c.name} ({c.province_name})"
