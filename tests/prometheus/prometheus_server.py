"""A real Prometheus (Debian's `prometheus` package) for tests: started, queried, stopped."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.processes import stop
from tests.waiting import wait_until


class PrometheusError(AssertionError):
    """Prometheus answered a query with an error."""


@dataclass(frozen=True, slots=True)
class Prometheus:
    """The HTTP API of a running Prometheus."""

    base: str

    def _get(self, path: str, params: list[tuple[str, str]]) -> Any:
        url = f"{self.base}{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                body = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            raise PrometheusError(f"{path} {params}: {exc.code} {body.get('error')}") from exc
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query at now; the result vector (or a scalar as one unlabelled sample)."""
        data = self._get("/api/v1/query", [("query", expr)])
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr}: unexpected {data['resultType']}")
        return list(data["result"])

    def query_range(self, expr: str, seconds: float, step_s: float) -> list[dict[str, Any]]:
        """A range query over the last `seconds`; the result matrix."""
        end = time.time()
        data = self._get(
            "/api/v1/query_range",
            [
                ("query", expr),
                ("start", f"{end - seconds:.3f}"),
                ("end", f"{end:.3f}"),
                ("step", f"{step_s}"),
            ],
        )
        return list(data["result"])

    def series(self, match: str) -> list[dict[str, str]]:
        """The label sets of the series a selector matches (the last hour)."""
        start = f"{time.time() - 3600:.3f}"
        return list(self._get("/api/v1/series", [("match[]", match), ("start", start)]))

    def alerts(self) -> list[dict[str, Any]]:
        """Active alerts (pending and firing)."""
        return list(self._get("/api/v1/alerts", [])["alerts"])

    def targets(self) -> list[dict[str, Any]]:
        """Active scrape targets."""
        return list(self._get("/api/v1/targets", [])["activeTargets"])


def finite_values(result: list[dict[str, Any]]) -> list[float]:
    """Every finite sample value of a vector or matrix result."""
    out: list[float] = []
    for series in result:
        samples = series.get("values") or [series["value"]]
        for _ts, text in samples:
            value = float(text)
            if math.isfinite(value):
                out.append(value)
    return out


@contextmanager
def running_prometheus(config: Path, work: Path, port: int) -> Iterator[Prometheus]:
    """Run Prometheus on 127.0.0.1:port with this config; stopped (and waited for) after."""
    binary = shutil.which("prometheus")
    assert binary is not None, "prometheus is not installed (scripts/bootstrap.sh installs it)"
    log = (work / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={work / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert proc.poll() is None, (work / "prometheus.log").read_text()
            try:
                with urllib.request.urlopen(f"{base}/-/ready", timeout=2) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, ConnectionError):
                return False

        wait_until(ready, 30, 0.2, "Prometheus ready")
        yield Prometheus(base)
    finally:
        stop(proc, timeout_s=20)
        log.close()
