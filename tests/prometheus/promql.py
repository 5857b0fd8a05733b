"""What the shipped dashboards and rules ask Prometheus: their queries, variables, metric names."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "grafana" / "dashboards"
RULES = ROOT / "config" / "prometheus" / "rules"

# Series Prometheus makes itself for every target (not NetWatch's).
PROMETHEUS_SERIES = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
_KEYWORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)


@dataclass(frozen=True, slots=True)
class Target:
    """One query of one panel."""

    dashboard: str
    panel: str
    ref: str
    expr: str
    instant: bool

    @property
    def where(self) -> str:
        """For messages: dashboard / panel / ref."""
        return f"{self.dashboard} / {self.panel} / {self.ref}"


@dataclass(frozen=True, slots=True)
class Variable:
    """A dashboard's query variable."""

    dashboard: str
    name: str
    query: str
    regex: str


def dashboards() -> dict[str, dict[str, Any]]:
    """The shipped dashboards by file name."""
    return {p.name: json.loads(p.read_text("utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def targets(name: str, model: Mapping[str, Any]) -> list[Target]:
    """Every panel target of a dashboard."""
    out = []
    for panel in _panels(model.get("panels", [])):
        for t in panel.get("targets", []):
            out.append(Target(name, panel["title"], t["refId"], t["expr"], bool(t.get("instant"))))
    return out


def variables(name: str, model: Mapping[str, Any]) -> list[Variable]:
    """Every query variable of a dashboard."""
    out = []
    for v in model.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            query = v["query"] if isinstance(v["query"], str) else v["query"]["query"]
            out.append(Variable(name, v["name"], query, v.get("regex", "")))
    return out


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's variable interpolation for the names given ($name and ${name})."""
    for key in sorted(values, key=len, reverse=True):  # $__range_s before $__range
        expr = expr.replace("${" + key + "}", values[key]).replace("$" + key, values[key])
    assert "$" not in expr, f"unsubstituted variable in {expr!r}"
    return expr


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        word = m.group(0)
        if word.lower() in _KEYWORDS or re.match(r"\s*\(", text[m.end() :]):
            continue
        names.add(word)
    return names


# What the commune agents make NetWatch export (netwatch/inside/metrics.py): only where agents
# report to the NetWatch under proof.
AGENT_PREFIXES = ("netwatch_agent_", "netwatch_inside_")


def reads_agents(expr: str) -> bool:
    """Whether a query reads the commune agents' families."""
    return any(name.startswith(AGENT_PREFIXES) for name in metric_names(expr))


def rules() -> list[dict[str, Any]]:
    """Every rule of the shipped rule files."""
    out = []
    for path in sorted(RULES.glob("*.yml")):
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]:
            out.extend(group["rules"])
    return out


def recorded_names() -> set[str]:
    """The series names the recording rules write."""
    return {r["record"] for r in rules() if "record" in r}


def query_result_lines(result: list[dict[str, Any]]) -> list[str]:
    """query_result() as Grafana renders it for variable regexes: name{a="x",b="y"} value ts."""
    lines = []
    for series in result:
        labels = dict(series["metric"])
        name = labels.pop("__name__", "")
        pairs = ",".join(f'{k}="{v}"' for k, v in labels.items())
        ts, value = series["value"]
        lines.append(f"{name}{{{pairs}}} {value} {int(float(ts) * 1000)}")
    return lines


def apply_regex(regex: str, lines: list[str]) -> list[tuple[str, str]]:
    """(value, text) pairs a Grafana variable regex (/…/, JS named groups) extracts."""
    assert regex.startswith("/"), regex
    assert regex.endswith("/"), regex
    pattern = re.compile(regex[1:-1].replace("(?<", "(?P<"))
    out = []
    for line in lines:
        m = pattern.search(line)
        if m is not None:
            groups = m.groupdict()
            value = groups.get("value") or m.group(0)
            out.append((value, groups.get("text") or value))
    return out
