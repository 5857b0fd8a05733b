"""The shipped Prometheus configuration passes promtool: config, rules, and rule unit tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "config" / "prometheus"
RULE_FILES = sorted((PROMETHEUS / "rules").glob("*.yml"))
TEST_FILES = sorted((PROMETHEUS / "tests").glob("*.yml"))


def promtool(*args: str) -> str:
    """Run promtool; fail with its output unless it succeeds."""
    binary = shutil.which("promtool")
    assert binary, "promtool comes with Debian's prometheus package (scripts/bootstrap.sh)"
    run = subprocess.run([binary, *args], capture_output=True, text=True, check=False, cwd=ROOT)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    return output


def test_the_deployable_config_is_valid_and_loads_every_rule_file() -> None:
    output = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert f"SUCCESS: {len(RULE_FILES)} rule files found" in output
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text("utf-8"))
    [job] = [j for j in config["scrape_configs"] if j["job_name"] == "netwatch"]
    # The compose stack's core and probe worker (tests/prometheus/test_scrape_targets.py).
    assert job["static_configs"] == [{"targets": ["netwatch:8080", "probe:9101"]}]


def test_the_rules_are_valid() -> None:
    output = promtool("check", "rules", *map(str, RULE_FILES))
    assert output.count("SUCCESS") == len(RULE_FILES)


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_the_rule_unit_tests_pass(test_file: Path) -> None:
    assert "SUCCESS" in promtool("test", "rules", str(test_file))


def test_every_alerting_rule_has_a_unit_test_that_sees_it_fire() -> None:
    alerts = {
        rule["alert"]: rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text("utf-8"))["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    fired: set[str] = set()
    silent: set[str] = set()
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text("utf-8"))["tests"]:
            for case in test.get("alert_rule_test", []):
                (fired if case.get("exp_alerts") else silent).add(case["alertname"])
    assert set(alerts) <= fired, f"never seen firing: {sorted(set(alerts) - fired)}"
    # ... and not firing before its `for:` (or below its threshold).
    assert set(alerts) <= silent, f"never seen silent: {sorted(set(alerts) - silent)}"
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        assert rule["for"].endswith(("m", "h")), f"{name}: `for:` in minutes or hours"
