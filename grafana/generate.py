"""NetWatch's Grafana dashboards as code (grafana-foundation-sdk, Grafana 11.6 schema).

    .venv/bin/python grafana/generate.py            # rewrite grafana/dashboards/*.json
    .venv/bin/python grafana/generate.py --check    # exit 1 if the shipped JSON is out of date

The JSON in grafana/dashboards/ is what ships and what Grafana provisions; this file is its
source. tests/grafana/ checks that both agree, that every uid is stable and every panel uses the
provisioned Prometheus datasource, and tests/prometheus/ runs every query against a real
Prometheus that scraped a real NetWatch. Queries read NetWatch's families (docs/probes.md,
docs/dashboards.md) and the recording rules of config/prometheus/rules/.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    bargauge,
    common,
    dashboard,
    geomap,
    heatmap,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models import geomap as gm
from grafana_foundation_sdk.models import heatmap as hm
from grafana_foundation_sdk.models import prometheus as pm

from alerts.model import IncidentKind, LinkState
from alerts.tickets import EventKind, TicketStatus
from netwatch.vocab import INCIDENT_KIND, LINK_STATE, TERM, TICKET_EVENT, TICKET_STATUS, Term

HERE = Path(__file__).resolve().parent
OUT = HERE / "dashboards"
DATASOURCE_UID = "netwatch-prometheus"  # grafana/provisioning/datasources/prometheus.yml
DS = dm.DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
TIMEZONE = "Asia/Ho_Chi_Minh"
TAGS = ["netwatch"]
UIDS = {
    "overview": "netwatch-province-overview",
    "commune": "netwatch-commune-detail",
    "isp": "netwatch-isp-accountability",
    "self": "netwatch-self",
}
CONTRACT_AVAILABILITY = 0.995  # QCVN 34 / the ISP contracts: 99.5 %

# The judged state as a number (config/prometheus/rules/netwatch-recording.yml), with its words
# and colour: the map, the state timeline and the tables share them. The words are the one
# catalogue's (netwatch/vocab.py), as mail, chat and the status pages say them.
STATE_CODES: tuple[tuple[int, str, str, str], ...] = (
    (-2, "unknown", TERM[Term.NO_DATA].pair(), "text"),
    (-1, "maintenance", TERM[Term.MAINTENANCE].pair(), "blue"),
    (0, LinkState.OK.value, LINK_STATE[LinkState.OK].pair(), "green"),
    (1, LinkState.SLOW.value, LINK_STATE[LinkState.SLOW].pair(), "yellow"),
    (2, LinkState.CONGESTED.value, LINK_STATE[LinkState.CONGESTED].pair(), "orange"),
    (3, LinkState.LOSSY.value, LINK_STATE[LinkState.LOSSY].pair(), "semi-dark-red"),
    (4, LinkState.DOWN.value, LINK_STATE[LinkState.DOWN].pair(), "red"),
)
# Ticket states as the netwatch_open_tickets "state" label has them (open, acknowledged).
TICKET_STATE_MAPPINGS = [(s.value, TICKET_STATUS[s].pair(), "text") for s in TicketStatus]


# -- small builders ---------------------------------------------------------------------------
def query(
    expr: str,
    legend: str = "",
    *,
    ref: str = "A",
    instant: bool = False,
    fmt: pm.PromQueryFormat | None = None,
) -> prometheus.Dataquery:
    """A PromQL target on the provisioned datasource."""
    q = prometheus.Dataquery().expr(expr).ref_id(ref).datasource(DS)
    q = q.instant() if instant else q.range()
    if legend:
        q = q.legend_format(legend)
    if fmt is not None:
        q = q.format(fmt)
    return q


def table_query(expr: str, *, ref: str = "A") -> prometheus.Dataquery:
    """An instant PromQL target read as a table (for table panels and the map)."""
    return query(expr, ref=ref, instant=True, fmt=pm.PromQueryFormat.TABLE)


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: (None, base colour), then (value, colour) upward."""
    return (
        dashboard.ThresholdsConfig()
        .mode(dm.ThresholdsMode.ABSOLUTE)
        .steps([dm.Threshold(value=v, color=c) for v, c in steps])
    )


def value_map(pairs: Sequence[tuple[str, str, str]]) -> list[dm.ValueMapping]:
    """Value -> (text, colour) mappings."""
    options = {
        value: dm.ValueMappingResult(text=text, color=color, index=i)
        for i, (value, text, color) in enumerate(pairs)
    }
    return [dm.ValueMap(options=options)]


STATE_MAPPINGS = value_map([(str(code), text, color) for code, _s, text, color in STATE_CODES])
STATE_THRESHOLDS = thresholds(
    *((None if i == 0 else float(c), col) for i, (c, _s, _t, col) in enumerate(STATE_CODES))
)
UP_MAPPINGS = value_map([("1", "Hoạt động / up", "green"), ("0", "Lỗi / down", "red")])


MERGE = dm.DataTransformerConfig(id_val="merge", options={})  # the targets' tables as one
DASHED_THRESHOLDS = common.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED)
BARS = dm.DynamicConfigValue(id_val="custom.drawStyle", value="bars")
# An availability cell: a percentage to the thousandth, its background coloured by threshold.
AVAILABILITY_CELLS = [
    dm.DynamicConfigValue(id_val="unit", value="percentunit"),
    dm.DynamicConfigValue(id_val="decimals", value=3),
    dm.DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"}),
]


def right_axis(unit: str, *more: dm.DynamicConfigValue) -> list[dm.DynamicConfigValue]:
    """Field properties of a second series drawn against its own unit on the right axis."""
    return [
        dm.DynamicConfigValue(id_val="unit", value=unit),
        dm.DynamicConfigValue(id_val="custom.axisPlacement", value="right"),
        *more,
    ]


def up_stat(title: str, target: prometheus.Dataquery) -> stat.Panel:
    """A stat that is green with "up" on 1 and red with "down" on 0 (portal up, scraped)."""
    return (
        stat.Panel()
        .title(title)
        .with_target(target)
        .mappings(UP_MAPPINGS)
        .thresholds(thresholds((None, "red"), (1.0, "green")))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
    )


def color_override(
    name: str, color: str, display: str = ""
) -> dashboard.DashboardFieldConfigSourceOverrides:
    """A series shown in a fixed colour (and under the catalogue's words for it, if given)."""
    props = [dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})]
    if display:
        props.append(dm.DynamicConfigValue(id_val="displayName", value=display))
    return (
        dashboard.DashboardFieldConfigSourceOverrides()
        .matcher(dm.MatcherConfig(id_val="byName", options=name))
        .properties(props)
    )


def display_override(name: str, display: str) -> dashboard.DashboardFieldConfigSourceOverrides:
    """A series shown under the catalogue's words for it instead of its label value."""
    return (
        dashboard.DashboardFieldConfigSourceOverrides()
        .matcher(dm.MatcherConfig(id_val="byName", options=name))
        .properties([dm.DynamicConfigValue(id_val="displayName", value=display)])
    )


def dashed(regexp: str, color: str | None = None) -> dashboard.DashboardFieldConfigSourceOverrides:
    """Series matching regexp drawn as a dashed line (limits: contract, interval, threshold)."""
    props = [
        dm.DynamicConfigValue(id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}),
        dm.DynamicConfigValue(id_val="custom.fillOpacity", value=0),
    ]
    if color is not None:
        props.append(
            dm.DynamicConfigValue(id_val="color", value={"mode": "fixed", "fixedColor": color})
        )
    return (
        dashboard.DashboardFieldConfigSourceOverrides()
        .matcher(dm.MatcherConfig(id_val="byRegexp", options=regexp))
        .properties(props)
    )


def commune_link(title: str = "Chi tiết xã / commune detail") -> dashboard.DashboardLink:
    """A data link from a row with province and commune fields to the commune dashboard."""
    url = (
        f"/d/{UIDS['commune']}/netwatch-commune-detail?var-province=${{__data.fields.province}}"
        "&var-commune=${__data.fields.commune}&${__url_time_range}"
    )
    return dashboard.DashboardLink(title).url(url)


def legend_table(*calcs: str) -> common.VizLegendOptions:
    """A legend as a table at the bottom, with these reductions."""
    return (
        common.VizLegendOptions()
        .display_mode(cm.LegendDisplayMode.TABLE)
        .placement(cm.LegendPlacement.BOTTOM)
        .show_legend(True)
        .calcs(list(calcs))
    )


def variable(
    name: str,
    label: str,
    expr: str,
    *,
    regex: str = "",
    multi: bool = False,
    include_all: bool = False,
) -> dashboard.QueryVariable:
    """A Prometheus query variable refreshed when the time range changes."""
    v = (
        dashboard.QueryVariable(name)
        .label(label)
        .datasource(DS)
        .query(expr)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    if include_all:
        v = v.all_value(".*")
    if regex:
        v = v.regex(regex)
    return v


PROVINCE_VAR = variable(
    "province",
    "Tỉnh / province",
    "query_result(count by (province, province_name) (netwatch_commune_info))",
    regex='/province="(?<value>[^"]+)",\\s*province_name="(?<text>[^"]+)"/',
    include_all=True,
)
PROVINCE_MULTI_VAR = variable(
    "province",
    "Tỉnh / province",
    "query_result(count by (province, province_name) (netwatch_commune_info))",
    regex='/province="(?<value>[^"]+)",\\s*province_name="(?<text>[^"]+)"/',
    multi=True,
    include_all=True,
)


class Layout:
    """Stable panel ids in the order panels are added, and a packed grid.

    Each panel goes to the highest free place of the 24-column grid that fits its width
    (leftmost on ties), as Grafana itself floats panels up: a tall panel on the left and a
    column of small ones on its right need no explicit coordinates.
    """

    COLUMNS = 24

    def __init__(self, builder: dashboard.Dashboard) -> None:
        self.builder = builder
        self._next_id = 1
        self._floor = [0] * self.COLUMNS  # the lowest occupied row under each column

    def add(self, panel: Any, width: int, height: int) -> None:
        """Place a panel (ids and positions follow the order of the calls)."""
        x = min(range(self.COLUMNS - width + 1), key=lambda c: (max(self._floor[c : c + width]), c))
        y = max(self._floor[x : x + width])
        self._floor[x : x + width] = [y + height] * width
        pos = dm.GridPos(h=height, w=width, x=x, y=y)
        self.builder.with_panel(panel.id(self._next_id).grid_pos(pos).datasource(DS))
        self._next_id += 1


def base(key: str, title: str, description: str, time_from: str) -> dashboard.Dashboard:
    """A NetWatch dashboard: stable uid, Vietnam time, links to the others."""
    return (
        dashboard.Dashboard(title)
        .uid(UIDS[key])
        .description(description)
        .tags(TAGS)
        .timezone(TIMEZONE)
        .editable()
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .time(time_from, "now")
        .refresh("1m")
        .link(
            dashboard.DashboardLink("NetWatch")
            .type(dm.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(True)
            .include_vars(True)
            .keep_time(True)
        )
    )


# -- Province overview ----------------------------------------------------------------------
def province_overview() -> dashboard.Dashboard:
    """The province at a glance: map, states, worst communes, tickets, the national portal."""
    sel = 'province=~"$province"'
    d = base(
        "overview",
        "NetWatch — Tổng quan tỉnh / Province overview",
        "Trạng thái đường truyền các xã trong tỉnh, xã kém nhất, phiếu sự cố và Cổng Dịch vụ công "
        "quốc gia. Links of the province's communes, worst communes, tickets, the national portal.",
        "now-6h",
    ).with_variable(PROVINCE_VAR)
    lay = Layout(d)
    commune_map = (
        geomap.Panel()
        .title("Bản đồ các xã / Commune map")
        .description(
            "Mỗi xã có tọa độ trong cấu hình, tô màu theo trạng thái xấu nhất của các đường "
            "truyền. Communes with coordinates in the config, coloured by their worst link state."
        )
        .with_target(
            table_query(
                f"commune:netwatch_link_state:max_code{{{sel}}}"
                " * on (job, province, commune) group_left (latitude, longitude)"
                " max by (job, province, commune, latitude, longitude)"
                f' (netwatch_commune_info{{{sel}, latitude!=""}})',
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="convertFieldType",
                options={
                    "conversions": [
                        {"targetField": "latitude", "destinationType": "number"},
                        {"targetField": "longitude", "destinationType": "number"},
                    ],
                    "fields": {},
                },
            )
        )
        .view(geomap.MapViewConfig().id("coords").lat(16).lon(106).zoom(5))
        .controls(geomap.ControlsOptions().show_zoom(True).mouse_wheel_zoom(True))
        .basemap(common.MapLayerOptions().type("default").name("Nền / basemap"))
        .layers(
            [
                common.MapLayerOptions()
                .type("markers")
                .name("Xã / communes")
                .location(
                    common.FrameGeometrySource()
                    .mode(cm.FrameGeometrySourceMode.COORDS)
                    .latitude("latitude")
                    .longitude("longitude")
                )
                .config(
                    {
                        "showLegend": True,
                        "style": {
                            "color": {"field": "Value", "fixed": "dark-green"},
                            "opacity": 0.9,
                            "size": {"fixed": 9, "min": 4, "max": 15},
                            "symbol": {"mode": "fixed", "fixed": "img/icons/marker/circle.svg"},
                            "text": {"mode": "field", "field": "commune_name", "fixed": ""},
                            "textConfig": {"fontSize": 10, "offsetY": -12, "textAlign": "center"},
                        },
                    }
                )
                .tooltip(True)
            ]
        )
        .tooltip(geomap.TooltipOptions().mode(gm.TooltipMode.DETAILS))
        .mappings(STATE_MAPPINGS)
        .thresholds(STATE_THRESHOLDS)
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .data_links([commune_link()])
    )
    lay.add(commune_map, 14, 16)
    states = (
        stat.Panel()
        .title("Đường truyền theo trạng thái / Links by state")
        .with_target(
            query(
                f"sum by (state) (province_state:netwatch_link_state:count{{{sel}}})",
                "{{state}}",
                instant=True,
            )
        )
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.FIXED).fixed_color("text"))
        .overrides([color_override(state, color, text) for _c, state, text, color in STATE_CODES])
        .decimals(0)
    )
    lay.add(states, 10, 4)
    cut = (
        stat.Panel()
        .title("Xã có đường truyền mất kết nối / Communes with a link down")
        .with_target(
            query(
                f"count(commune:netwatch_link_state:max_code{{{sel}}} == 4) or vector(0)",
                instant=True,
            )
        )
        .thresholds(thresholds((None, "green"), (1.0, "red")))
        .color_mode(cm.BigValueColorMode.BACKGROUND)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .decimals(0)
    )
    lay.add(cut, 5, 4)
    tickets = (
        bargauge.Panel()
        .title("Phiếu sự cố chưa xử lý theo nhà mạng / Open tickets per ISP")
        .with_target(query("sum by (isp) (netwatch_open_tickets)", "{{isp}}", instant=True))
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .thresholds(thresholds((None, "green"), (1.0, "orange")))
        .min(0)
        .decimals(0)
    )
    lay.add(tickets, 5, 4)
    lay.add(
        table.Panel()
        .title("Xã mất gói nhiều nhất / Worst communes by loss")
        .description(
            "Tỷ lệ mất gói trung bình trong khoảng thời gian chọn. Mean loss over the range."
        )
        .with_target(
            table_query(
                "topk(10, max by (province, commune, commune_name, link, isp)"
                f" (avg_over_time(netwatch_link_loss_ratio{{{sel}}}[$__range])))",
            )
        )
        .with_transformation(_organize({"Time": True}, {"Value": "Mất gói / loss"}))
        .sort_by([common.TableSortByFieldState().display_name("Mất gói / loss").desc(True)])
        .override_by_name(
            "Mất gói / loss", [dm.DynamicConfigValue(id_val="unit", value="percentunit")]
        )
        .thresholds(thresholds((None, "green"), (0.02, "orange"), (0.5, "red")))
        .data_links([commune_link()]),
        10,
        8,
    )
    lay.add(
        table.Panel()
        .title("Xã có độ trễ cao nhất / Worst communes by latency")
        .description(
            "Độ trễ trung vị trung bình trong khoảng thời gian chọn (đường truyền mất kết nối "
            "không có độ trễ). Mean of the rounds' median RTT over the range (links down have "
            "none)."
        )
        .with_target(
            table_query(
                "topk(10, max by (province, commune, commune_name, link, isp)"
                " (avg_over_time(netwatch_link_round_rtt_seconds"
                f'{{{sel}, stat="median"}}[$__range]) >= 0))',
            )
        )
        .with_transformation(_organize({"Time": True}, {"Value": "Độ trễ / RTT"}))
        .sort_by([common.TableSortByFieldState().display_name("Độ trễ / RTT").desc(True)])
        .override_by_name("Độ trễ / RTT", [dm.DynamicConfigValue(id_val="unit", value="s")])
        .thresholds(thresholds((None, "green"), (0.05, "orange"), (0.2, "red")))
        .data_links([commune_link()]),
        12,
        9,
    )
    lay.add(
        timeseries.Panel()
        .title("Cổng DVC: thời gian theo pha / Portal phase timings")
        .description(
            "DNS, kết nối, TLS, byte đầu, truyền tải, đo từ NetWatch trung tâm. "
            "Phase timings measured by the central NetWatch."
        )
        .with_target(
            query('netwatch_portal_phase_seconds{phase!="total"}', "{{portal_name}} · {{phase}}")
        )
        .unit("s")
        .stacking(common.StackingConfig().mode(cm.StackingMode.NORMAL))
        .fill_opacity(40)
        .legend(legend_table("mean", "max", "lastNotNull")),
        8,
        9,
    )
    lay.add(
        up_stat(
            "Cổng DVC hoạt động / Portal up",
            query("netwatch_portal_up", "{{portal_name}}", instant=True),
        ),
        4,
        9,
    )
    return d


def _organize(hide: dict[str, bool], rename: dict[str, str]) -> dm.DataTransformerConfig:
    return dm.DataTransformerConfig(
        id_val="organize",
        options={"excludeByName": hide, "renameByName": rename, "indexByName": {}},
    )


# -- Commune detail ---------------------------------------------------------------------------
def commune_detail() -> dashboard.Dashboard:
    """One commune: SmokePing-like latency, loss, jitter, traffic, errors, reboots, portal."""
    sel = 'commune="$commune", link=~"$link"'
    d = (
        base(
            "commune",
            "NetWatch — Chi tiết xã / Commune detail",
            "Độ trễ kiểu SmokePing, mất gói, jitter, lưu lượng WAN so với băng thông hợp đồng, "
            "lỗi giao diện, khởi động lại của một xã. One commune's links in detail.",
            "now-6h",
        )
        .with_variable(PROVINCE_VAR)
        .with_variable(
            variable(
                "commune",
                "Xã / commune",
                'query_result(netwatch_commune_info{province=~"$province"})',
                regex='/commune="(?<value>[^"]+)",\\s*commune_name="(?<text>[^"]+)"/',
            )
        )
        .with_variable(
            variable(
                "link",
                "Đường truyền / link",
                'label_values(netwatch_link_info{commune="$commune"}, link)',
                multi=True,
                include_all=True,
            )
        )
    )
    lay = Layout(d)
    lay.add(
        statetimeline.Panel()
        .title("Trạng thái đánh giá / Judged state")
        .description(
            "Trạng thái NetWatch kết luận sau khi lọc dao động (hysteresis). The state NetWatch "
            "concluded, after hysteresis: what its tickets and status page say."
        )
        .with_target(query(f"max by (link) (link:netwatch_link_state:code{{{sel}}})", "{{link}}"))
        .mappings(STATE_MAPPINGS)
        .thresholds(STATE_THRESHOLDS)
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .show_value(cm.VisibilityMode.NEVER)
        .merge_values(True),
        24,
        5,
    )
    lay.add(
        heatmap.Panel()
        .title("Độ trễ: phân bố RTT / Latency distribution (SmokePing-like)")
        .description(
            "Số gói trả lời theo khoảng RTT mỗi khoảng thời gian; dải đậm càng rộng, đường "
            "truyền càng dao động. Echo replies per RTT bucket over time."
        )
        .with_target(
            query(
                "sum by (le) (increase(netwatch_link_rtt_seconds_bucket"
                f"{{{sel}}}[$__rate_interval]))",
                "{{le}}",
                fmt=pm.PromQueryFormat.HEATMAP,
            )
        )
        .calculate(False)
        .y_axis(heatmap.YAxisConfig().unit("s").decimals(1))
        .color(
            heatmap.HeatmapColorOptions()
            .mode(hm.HeatmapColorMode.SCHEME)
            .scheme("Oranges")
            .scale(hm.HeatmapColorScale.EXPONENTIAL)
            .exponent(0.5)
            .steps(64)
            .fill("dark-orange")
        )
        .cell_gap(1)
        .show_value(cm.VisibilityMode.NEVER)
        .rows_frame(heatmap.RowsHeatmapOptions().layout(cm.HeatmapCellLayout.LE)),
        12,
        9,
    )
    lay.add(
        timeseries.Panel()
        .title("Độ trễ trung vị, nhỏ nhất, lớn nhất / Median, min and max RTT")
        .with_target(
            query(
                "histogram_quantile(0.5, sum by (link, le) (rate(netwatch_link_rtt_seconds_bucket"
                f"{{{sel}}}[$__rate_interval])))",
                "{{link}} trung vị / median",
            )
        )
        .with_target(
            query(
                f'netwatch_link_round_rtt_seconds{{{sel}, stat=~"min|max"}}',
                "{{link}} {{stat}}",
                ref="B",
            )
        )
        .unit("s")
        .overrides([dashed(" (min|max)$")])
        .legend(legend_table("mean", "max", "lastNotNull")),
        12,
        9,
    )
    lay.add(
        timeseries.Panel()
        .title("Mất gói / Packet loss")
        .with_target(query(f"netwatch_link_loss_ratio{{{sel}}}", "{{link}}"))
        .unit("percentunit")
        .min(0)
        .max(1)
        .thresholds(thresholds((None, "green"), (0.02, "red")))
        .thresholds_style(DASHED_THRESHOLDS)
        .legend(legend_table("mean", "max", "lastNotNull")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Độ biến thiên độ trễ / Jitter")
        .description(
            "Chênh lệch trung bình giữa hai RTT liên tiếp. Mean difference of consecutive RTTs."
        )
        .with_target(query(f"netwatch_link_jitter_seconds{{{sel}}}", "{{link}}"))
        .unit("s")
        .legend(legend_table("mean", "max", "lastNotNull")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Lưu lượng WAN so với băng thông hợp đồng / WAN traffic vs contract")
        # Exported in bytes/s (Prometheus's base unit), shown in bits/s as ISPs sell them.
        .with_target(
            query(f"netwatch_link_traffic_bytes_per_second{{{sel}}} * 8", "{{link}} {{direction}}")
        )
        .with_target(
            query(
                f"netwatch_link_bandwidth_bytes_per_second{{{sel}}} * 8",
                "{{link}} hợp đồng / contract",
                ref="B",
            )
        )
        .unit("bps")
        .min(0)
        .overrides([dashed("hợp đồng / contract$", "red")])
        .legend(legend_table("mean", "max", "lastNotNull")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Mức sử dụng băng thông / Utilization")
        .with_target(query(f"netwatch_link_utilization_ratio{{{sel}}}", "{{link}} {{direction}}"))
        .unit("percentunit")
        .min(0)
        .thresholds(thresholds((None, "green"), (0.85, "orange")))
        .thresholds_style(DASHED_THRESHOLDS)
        .legend(legend_table("mean", "max", "lastNotNull")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Lỗi và gói bị hủy trên giao diện / Interface errors and discards")
        .with_target(
            query(
                f"rate(netwatch_interface_errors_total{{{sel}}}[$__rate_interval])",
                "{{link}} lỗi / errors {{direction}}",
            )
        )
        .with_target(
            query(
                f"rate(netwatch_interface_discards_total{{{sel}}}[$__rate_interval])",
                "{{link}} hủy / discards {{direction}}",
                ref="B",
            )
        )
        .unit("pps")
        .min(0)
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    lay.add(
        statetimeline.Panel()
        .title("Cổng WAN trên router / Router WAN port (ifOperStatus)")
        .with_target(query(f"netwatch_interface_oper_up{{{sel}}}", "{{link}}"))
        .mappings(UP_MAPPINGS)
        .thresholds(thresholds((None, "red"), (1.0, "green")))
        .color_scheme(dashboard.FieldColor().mode(dm.FieldColorModeId.THRESHOLDS))
        .show_value(cm.VisibilityMode.NEVER),
        12,
        4,
    )
    lay.add(
        stat.Panel()
        .title("Số lần khởi động lại / Router reboots")
        .with_target(
            query(
                'increase(netwatch_router_reboots_total{commune="$commune"}[$__range])',
                "Khởi động lại / reboots",
                instant=True,
            )
        )
        .decimals(0)
        .thresholds(thresholds((None, "green"), (1.0, "orange")))
        .graph_mode(cm.BigValueGraphMode.NONE),
        6,
        4,
    )
    lay.add(
        stat.Panel()
        .title("Thời gian router chạy / Router uptime")
        .with_target(
            query(
                # The last reading: a poll lost on a bad line must not blank the panel.
                'last_over_time(netwatch_router_uptime_seconds{commune="$commune"}[$__range])',
                "uptime",
                instant=True,
            )
        )
        .unit("dtdurations")
        .graph_mode(cm.BigValueGraphMode.NONE),
        6,
        4,
    )
    lay.add(
        timeseries.Panel()
        .title("Cổng DVC: tổng thời gian / Portal total time")
        .description(
            'Đo từ NetWatch trung tâm; số đo từ thiết bị đặt tại xã ở bảng "Trong và ngoài". '
            "Measured centrally; the commune agent's timings per path are in \"Inside vs "
            'outside".'
        )
        .with_target(
            query(
                'netwatch_portal_phase_seconds{phase="total", commune="$commune"}'
                ' or netwatch_portal_phase_seconds{phase="total"}',
                "{{portal_name}}",
            )
        )
        .unit("s")
        .legend(legend_table("mean", "max", "lastNotNull")),
        24,
        7,
    )
    lay.add(inside_vs_outside(sel), 24, 10)
    return d


def inside_vs_outside(sel: str) -> timeseries.Panel:
    """The centre's RTT and loss of each link beside the commune agent's over the same path,
    and the portal's total time over each path from inside beside the centre's."""
    return (
        timeseries.Panel()
        .title("Trong và ngoài / Inside vs outside")
        .description(
            "Nét đứt: đo từ NetWatch trung tâm; nét liền: đo từ thiết bị đặt tại xã qua từng "
            "đường truyền (agent). Độ trễ và thời gian mở cổng DVC theo thang log bên trái, mất "
            "gói bên phải. Dashed: measured from the centre; solid: from the commune agent over "
            "each path. Latency and portal time on the left (log scale), loss on the right."
        )
        .with_target(
            query(
                f'netwatch_link_round_rtt_seconds{{{sel}, stat="median"}} >= 0',
                "{{link}} độ trễ / RTT · từ trung tâm / from the centre",
            )
        )
        .with_target(
            query(
                f"netwatch_inside_path_rtt_median_seconds{{{sel}}}",
                "{{link}} độ trễ / RTT · từ xã / from the commune",
                ref="B",
            )
        )
        .with_target(
            query(
                f"netwatch_link_loss_ratio{{{sel}}}",
                "{{link}} mất gói / loss · từ trung tâm / from the centre",
                ref="C",
            )
        )
        .with_target(
            query(
                f"netwatch_inside_path_loss_ratio{{{sel}}}",
                "{{link}} mất gói / loss · từ xã / from the commune",
                ref="D",
            )
        )
        .with_target(
            query(
                f'netwatch_inside_portal_phase_seconds{{{sel}, phase="total"}}',
                "{{portal}} qua / over {{link}} · từ xã / from the commune",
                ref="E",
            )
        )
        .with_target(
            query(
                'netwatch_portal_phase_seconds{phase="total"}',
                "{{portal}} · từ trung tâm / from the centre",
                ref="F",
            )
        )
        .unit("s")
        .scale_distribution(common.ScaleDistributionConfig().type(cm.ScaleDistribution.LOG).log(10))
        .override_by_regexp(
            "mất gói / loss",
            right_axis(
                "percentunit",
                dm.DynamicConfigValue(id_val="custom.scaleDistribution", value={"type": "linear"}),
                dm.DynamicConfigValue(id_val="min", value=0),
                dm.DynamicConfigValue(id_val="max", value=1),
            ),
        )
        .overrides([dashed("từ trung tâm / from the centre$")])
        .legend(legend_table("mean", "max", "lastNotNull"))
    )


# -- ISP accountability -------------------------------------------------------------------------
def isp_accountability() -> dashboard.Dashboard:
    """Availability against 99.5 %, downtime, tickets and how fast ISPs act."""
    sel = 'province=~"$province", isp=~"$isp"'
    d = (
        base(
            "isp",
            "NetWatch — Trách nhiệm nhà mạng / ISP accountability",
            "Tỷ lệ khả dụng theo nhà mạng và theo mạch so với cam kết 99,5 %, số phút mất kết "
            "nối, phiếu sự cố, thời gian xác nhận và khắc phục. Availability per ISP and circuit "
            "against 99.5 %, downtime, tickets, time to acknowledge and to restore.",
            "now-30d",
        )
        .with_variable(PROVINCE_MULTI_VAR)
        .with_variable(
            variable(
                "isp",
                "Nhà mạng / ISP",
                'label_values(netwatch_link_info{province=~"$province"}, isp)',
                multi=True,
                include_all=True,
            )
        )
    )
    lay = Layout(d)
    availability = (
        f"1 - sum by (isp) (sum_over_time(province_isp:netwatch_link_unavailable:sum{{{sel}}}"
        "[$__range])) / sum by (isp) (sum_over_time(province_isp:netwatch_link_known:count"
        f"{{{sel}}}[$__range]))"
    )
    downtime_per_isp = (
        "sum by (isp) (avg_over_time(link:netwatch_link_unavailable:bool"
        f"{{{sel}}}[$__range])) * $__range_s / 60"
    )
    green_at_contract = thresholds((None, "red"), (CONTRACT_AVAILABILITY, "green"))
    lay.add(
        table.Panel()
        .title("Khả dụng theo nhà mạng / Availability per ISP")
        .description(
            "Thời gian không mất kết nối trên thời gian biết trạng thái (không tính lúc NetWatch "
            "không chạy và lúc bảo trì), so với 99,5 %. Known time not judged down, against 99.5 %."
        )
        .with_target(table_query(availability))
        .with_target(table_query(downtime_per_isp, ref="B"))
        .with_target(
            table_query(
                f"count by (isp) (max by (isp, commune, link) (netwatch_link_info{{{sel}}}))",
                ref="C",
            )
        )
        .with_transformation(MERGE)
        .with_transformation(
            _organize(
                {"Time": True},
                {
                    "Value #A": "Khả dụng / availability",
                    "Value #B": "Phút mất kết nối / downtime min",
                    "Value #C": "Đường truyền / links",
                },
            )
        )
        .override_by_name(
            "Khả dụng / availability",
            AVAILABILITY_CELLS,
        )
        .override_by_name(
            "Phút mất kết nối / downtime min", [dm.DynamicConfigValue(id_val="decimals", value=1)]
        )
        .thresholds(green_at_contract),
        12,
        8,
    )
    lay.add(
        bargauge.Panel()
        .title("Phút mất kết nối theo nhà mạng / Downtime minutes per ISP")
        .with_target(query(downtime_per_isp, "{{isp}}", instant=True))
        .unit("m")
        .decimals(1)
        .min(0)
        .display_mode(cm.BarGaugeDisplayMode.BASIC)
        .orientation(cm.VizOrientation.HORIZONTAL)
        .thresholds(thresholds((None, "orange"))),
        12,
        8,
    )
    lay.add(
        table.Panel()
        .title("Khả dụng theo mạch / Availability per circuit")
        .description("Mạch kém nhất trước. Worst circuits first.")
        .with_target(
            table_query(
                "(1 - avg_over_time(link:netwatch_link_unavailable:bool"
                f"{{{sel}}}[$__range])) * on (job, commune, link) group_left (circuit)"
                f" max by (job, commune, link, circuit) (netwatch_link_info{{{sel}}})",
            )
        )
        .with_target(
            table_query(
                "avg_over_time(link:netwatch_link_unavailable:bool"
                f"{{{sel}}}[$__range]) * $__range_s / 60",
                ref="B",
            )
        )
        .with_transformation(
            dm.DataTransformerConfig(
                id_val="joinByField",
                options={"byField": "link", "mode": "outer"},
            )
        )
        .with_transformation(MERGE)
        .with_transformation(
            _organize(
                {"Time": True, "job": True, "path": True},
                {
                    "Value #A": "Khả dụng / availability",
                    "Value #B": "Phút mất kết nối / downtime min",
                },
            )
        )
        .sort_by(
            [common.TableSortByFieldState().display_name("Khả dụng / availability").desc(False)]
        )
        .override_by_name(
            "Khả dụng / availability",
            AVAILABILITY_CELLS,
        )
        .thresholds(green_at_contract)
        .data_links([commune_link()]),
        24,
        10,
    )
    tickets = (
        ("A", "netwatch_tickets_opened_total", TICKET_EVENT[EventKind.OPENED].pair()),
        ("B", "netwatch_tickets_acknowledged_total", TICKET_EVENT[EventKind.ACKNOWLEDGED].pair()),
        # by hand or automatically: the ticket state, not the event of a manual resolve
        ("C", "netwatch_tickets_resolved_total", TICKET_STATUS[TicketStatus.RESOLVED].pair()),
    )
    counts = table.Panel().title("Phiếu sự cố / Tickets (opened, acknowledged, resolved)")
    for ref, name, _label in tickets:
        counts = counts.with_target(
            table_query(
                f'sum by (isp) (increase({name}{{isp=~"$isp"}}[$__range]))',
                ref=ref,
            )
        )
    counts = (
        counts.with_transformation(MERGE)
        .with_transformation(
            _organize({"Time": True}, {f"Value #{ref}": label for ref, _n, label in tickets})
        )
        .decimals(0)
    )
    lay.add(counts, 12, 7)
    lay.add(
        table.Panel()
        .title("Phiếu đang mở / Open tickets")
        .with_target(
            table_query(
                'sum by (isp, state) (netwatch_open_tickets{isp=~"$isp"})',
            )
        )
        .with_transformation(_organize({"Time": True}, {"Value": "Số phiếu / tickets"}))
        .mappings(value_map(TICKET_STATE_MAPPINGS))
        .decimals(0),
        12,
        7,
    )
    for title, family in (
        ("Thời gian xác nhận / Time to acknowledge", "netwatch_ticket_time_to_acknowledge_seconds"),
        ("Thời gian khắc phục / Time to restore", "netwatch_ticket_time_to_restore_seconds"),
    ):
        lay.add(
            table.Panel()
            .title(title)
            .description(
                "Trung vị (từ histogram) và trung bình, trong khoảng thời gian chọn. "
                "Median (from the histogram) and mean over the range."
            )
            .with_target(
                table_query(
                    f"histogram_quantile(0.5, sum by (isp, le) (increase({family}_bucket"
                    '{isp=~"$isp"}[$__range])))',
                )
            )
            .with_target(
                table_query(
                    f'sum by (isp) (increase({family}_sum{{isp=~"$isp"}}[$__range]))'
                    f' / sum by (isp) (increase({family}_count{{isp=~"$isp"}}[$__range]))',
                    ref="B",
                )
            )
            .with_transformation(MERGE)
            .with_transformation(
                _organize(
                    {"Time": True},
                    {"Value #A": "Trung vị / median", "Value #B": "Trung bình / mean"},
                )
            )
            .unit("dtdurations"),
            12,
            7,
        )
    lay.add(
        timeseries.Panel()
        .title("Tỷ lệ đường truyền hoạt động / Share of links not down")
        .with_target(
            query(
                f"1 - sum by (isp) (province_isp:netwatch_link_unavailable:sum{{{sel}}})"
                f" / sum by (isp) (province_isp:netwatch_link_known:count{{{sel}}})",
                "{{isp}}",
            )
        )
        .unit("percentunit")
        .max(1)
        .thresholds(green_at_contract)
        .thresholds_style(DASHED_THRESHOLDS)
        .legend(legend_table("mean", "min")),
        24,
        8,
    )
    return d


# -- NetWatch itself ----------------------------------------------------------------------------
def netwatch_self() -> dashboard.Dashboard:
    """Is NetWatch keeping its schedule, scraped, and delivering its notifications?"""
    sel = 'job="netwatch", instance=~"$instance"'
    d = base(
        "self",
        "NetWatch — Tình trạng NetWatch / NetWatch itself",
        "Vòng đo, độ trễ lịch, lỗi đo, mục tiêu, hàng đợi thông báo và việc Prometheus thu thập. "
        "Rounds, lag behind schedule, probe failures, targets, outbox, scrape health.",
        "now-6h",
    ).with_variable(
        variable(
            "instance",
            "NetWatch",
            'label_values(netwatch_targets{job="netwatch"}, instance)',
            multi=True,
            include_all=True,
        )
    )
    lay = Layout(d)
    lay.add(
        up_stat(
            "Prometheus thu thập được / Scraped",
            query(f"up{{{sel}}}", "{{instance}}", instant=True),
        ),
        6,
        5,
    )
    lay.add(
        stat.Panel()
        .title("Mục tiêu / Targets")
        .with_target(query(f"sum by (kind) (netwatch_targets{{{sel}}})", "{{kind}}", instant=True))
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .decimals(0),
        9,
        5,
    )
    lay.add(
        stat.Panel()
        .title("Sự cố hiện tại / Current incidents")
        .with_target(
            query(f"sum by (kind) (netwatch_incidents{{{sel}}})", "{{kind}}", instant=True)
        )
        .overrides([display_override(k.value, INCIDENT_KIND[k].pair()) for k in IncidentKind])
        .text_mode(cm.BigValueTextMode.VALUE_AND_NAME)
        .graph_mode(cm.BigValueGraphMode.NONE)
        .thresholds(thresholds((None, "green"), (1.0, "orange")))
        .decimals(0),
        9,
        5,
    )
    lay.add(
        timeseries.Panel()
        .title("Thời gian một vòng đo / Round duration (dashed: interval)")
        .with_target(query(f"netwatch_round_duration_seconds{{{sel}}}", "{{kind}}"))
        .with_target(
            query(
                f"netwatch_round_interval_seconds{{{sel}}}", "{{kind}} chu kỳ / interval", ref="B"
            )
        )
        .unit("s")
        .overrides([dashed("chu kỳ / interval$")])
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Chậm so với lịch / Lag behind schedule")
        .with_target(query(f"netwatch_round_lag_seconds{{{sel}}}", "{{kind}} trễ / lag"))
        .with_target(
            query(
                f"increase(netwatch_rounds_skipped_total{{{sel}}}[$__rate_interval])",
                "{{kind}} bỏ lượt / skipped",
                ref="B",
            )
        )
        .unit("s")
        .override_by_regexp(
            "bỏ lượt / skipped$",
            right_axis("short", BARS),
        )
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Lỗi đo theo lý do / Probe failures by reason")
        .with_target(
            query(
                "sum by (kind, reason) (rate(netwatch_probe_failures_total"
                f"{{{sel}}}[$__rate_interval]))",
                "{{kind}} {{reason}}",
            )
        )
        .unit("ops")
        .min(0)
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Hàng đợi thông báo / Outbox backlog")
        .with_target(query(f"netwatch_outbox_pending{{{sel}}}", "chờ gửi / pending"))
        .with_target(query(f"netwatch_outbox_due{{{sel}}}", "đến hạn / due", ref="B"))
        .with_target(
            query(
                f"netwatch_outbox_oldest_pending_age_seconds{{{sel}}}",
                "tuổi cũ nhất / oldest age",
                ref="C",
            )
        )
        .min(0)
        .override_by_name(
            "tuổi cũ nhất / oldest age",
            right_axis("s"),
        )
        .legend(legend_table("max", "lastNotNull")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Thông báo đã gửi và lỗi gửi / Deliveries and failures")
        .with_target(
            query(
                "sum by (channel) (increase(netwatch_outbox_deliveries_total"
                f"{{{sel}}}[$__rate_interval]))",
                "{{channel}} đã gửi / delivered",
            )
        )
        .with_target(
            query(
                "sum by (channel) (increase(netwatch_outbox_delivery_failures_total"
                f"{{{sel}}}[$__rate_interval]))",
                "{{channel}} lỗi / failed",
                ref="B",
            )
        )
        .draw_style(cm.GraphDrawStyle.BARS)
        .min(0)
        .decimals(0)
        .legend(legend_table("sum")),
        12,
        8,
    )
    lay.add(
        timeseries.Panel()
        .title("Prometheus thu thập / Scrape duration and samples")
        .with_target(
            query(f"scrape_duration_seconds{{{sel}}}", "{{instance}} thời gian / duration")
        )
        .with_target(
            query(f"scrape_samples_scraped{{{sel}}}", "{{instance}} mẫu / samples", ref="B")
        )
        .unit("s")
        .override_by_regexp(
            "mẫu / samples$",
            right_axis("short"),
        )
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    lay.add(commune_agents(sel), 24, 8)
    lay.add(
        timeseries.Panel()
        .title("CPU và bộ nhớ / CPU and memory")
        .with_target(
            query(
                f"rate(process_cpu_seconds_total{{{sel}}}[$__rate_interval])",
                "{{instance}} CPU (lõi / cores)",
            )
        )
        .with_target(query(f"process_resident_memory_bytes{{{sel}}}", "{{instance}} RSS", ref="B"))
        .unit("percentunit")
        .override_by_regexp(
            "RSS$",
            right_axis("bytes"),
        )
        .legend(legend_table("mean", "max")),
        12,
        8,
    )
    return d


AGENT_BY = "province, commune, commune_name, agent"
CURRENT_MAPPINGS = value_map(
    [("1", "Mới nhất / current", "green"), ("0", "Cũ / outdated", "orange")]
)


def commune_agents(sel: str) -> table.Panel:
    """One row per commune agent: last heard, backlog, drops, version, configuration."""

    def per_agent(expr: str, ref: str, by: str = AGENT_BY) -> prometheus.Dataquery:
        return table_query(f"max by ({by}) ({expr})", ref=ref)

    return (
        table.Panel()
        .title("Thiết bị đo tại xã / Commune agents")
        .description(
            "Mỗi thiết bị đo đặt tại xã: lần cuối trung tâm nghe thấy (giây trước), số lần đo "
            "đang chờ gửi trên thiết bị và lần chờ lâu nhất, số lần đo bị bỏ vì bộ nhớ đệm đầy, "
            "phiên bản, cấu hình đang chạy có phải bản mới nhất. Each commune agent: seconds "
            "since the centre last heard it, rounds buffered on the box and the oldest's age, "
            "rounds dropped (buffer full), its version, whether it runs the current config."
        )
        .with_target(
            table_query(
                f"time() - max by ({AGENT_BY}) "
                f"(netwatch_agent_last_seen_timestamp_seconds{{{sel}}})",
            )
        )
        .with_target(per_agent(f"netwatch_agent_buffer_messages{{{sel}}}", "B"))
        .with_target(per_agent(f"netwatch_agent_buffer_oldest_age_seconds{{{sel}}}", "C"))
        .with_target(per_agent(f"netwatch_agent_dropped_rounds_total{{{sel}}}", "D"))
        .with_target(per_agent(f"netwatch_agent_config_current{{{sel}}}", "E"))
        .with_target(per_agent(f"netwatch_agent_info{{{sel}}}", "F", f"{AGENT_BY}, version"))
        .with_transformation(MERGE)
        .with_transformation(
            _organize(
                {"Time": True, "Value #F": True},
                {
                    "Value #A": "Nghe thấy cách đây / last heard ago",
                    "Value #B": "Chờ gửi / buffered",
                    "Value #C": "Chờ lâu nhất / oldest buffered",
                    "Value #D": "Đã bỏ / dropped",
                    "Value #E": "Cấu hình / config",
                    "version": "Phiên bản / version",
                },
            )
        )
        .sort_by(
            [
                common.TableSortByFieldState()
                .display_name("Nghe thấy cách đây / last heard ago")
                .desc(True)
            ]
        )
        .override_by_name(
            "Nghe thấy cách đây / last heard ago",
            [
                dm.DynamicConfigValue(id_val="unit", value="s"),
                dm.DynamicConfigValue(id_val="decimals", value=0),
                dm.DynamicConfigValue(
                    id_val="custom.cellOptions", value={"type": "color-background"}
                ),
                dm.DynamicConfigValue(
                    id_val="thresholds",
                    value={
                        "mode": "absolute",
                        "steps": [
                            {"value": None, "color": "green"},
                            {"value": 60, "color": "orange"},
                            {"value": 300, "color": "red"},
                        ],
                    },
                ),
            ],
        )
        .override_by_name(
            "Chờ lâu nhất / oldest buffered", [dm.DynamicConfigValue(id_val="unit", value="s")]
        )
        .override_by_name("Đã bỏ / dropped", [dm.DynamicConfigValue(id_val="decimals", value=0)])
        .override_by_name(
            "Cấu hình / config",
            [dm.DynamicConfigValue(id_val="mappings", value=_mappings_json(CURRENT_MAPPINGS))],
        )
        .data_links([commune_link()])
    )


def _mappings_json(mappings: list[dm.ValueMapping]) -> Any:
    return json.loads(json.dumps(mappings, cls=JSONEncoder))


DASHBOARDS = {
    "province-overview.json": province_overview,
    "commune-detail.json": commune_detail,
    "isp-accountability.json": isp_accountability,
    "netwatch-self.json": netwatch_self,
}


def render() -> dict[str, str]:
    """File name -> JSON text of every dashboard, as shipped."""
    out = {}
    for name, build in DASHBOARDS.items():
        model = build().build()
        data = json.loads(json.dumps(model, cls=JSONEncoder))
        out[name] = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Write the dashboards, or check that the shipped ones are up to date."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only compare with grafana/dashboards")
    args = ap.parse_args(argv)
    stale = []
    for name, text in render().items():
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                stale.append(name)
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date (run grafana/generate.py): {', '.join(stale)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
