"""The server-rendered SVG chart: well-formed, described in words, gaps and loss drawn honestly."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from netwatch.web.charts import (
    ChartData,
    ChartPoint,
    describe,
    latency_loss_chart,
    latency_loss_svg,
    summarize,
)

SVG = "{http://www.w3.org/2000/svg}"
START = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)  # 07:00 in Vietnam
STEP = 300


def data(points: list[tuple[float | None, float | None]]) -> ChartData:
    """(rtt_s, loss_ratio) per 5-minute bucket from START."""
    return ChartData(
        start=START,
        end=START + timedelta(seconds=STEP * len(points)),
        step_s=STEP,
        points=[
            ChartPoint(START + timedelta(seconds=STEP * i), rtt, rtt * 2 if rtt else None, loss)
            for i, (rtt, loss) in enumerate(points)
        ],
    )


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def test_chart_is_well_formed_titled_and_described() -> None:
    # 24 h: 12 buckets of 20 ms, 12 down, 12 without data, the rest 15 ms with a little loss.
    points: list[tuple[float | None, float | None]] = [(0.020, 0.0)] * 12
    points += [(None, 1.0)] * 12 + [(None, None)] * 12 + [(0.015, 0.02)] * (288 - 36)
    svg = latency_loss_svg(
        data(points), lang="vi", title="VNPT: độ trễ & mất gói", chart_id="c1", rtt_threshold_s=0.05
    )
    root = parse(svg)
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "c1-t c1-d"
    assert root.find(f"{SVG}title").text == "VNPT: độ trễ & mất gói"  # escaped, then parsed
    desc = root.find(f"{SVG}desc").text
    assert desc == (
        "Độ trễ trung vị 15 ms, cao nhất 20 ms. Mất gói cao nhất 100 % (lúc 08:00 22/11/2026). "
        "Không có số liệu trong 4,2 % thời gian."
    )
    # One grey band for the twelve buckets without data, not twelve rectangles.
    assert len(root.findall(f"{SVG}rect")) == 1
    # The median line breaks where there is no value: before the outage and after the gap.
    medians = [p for p in root.findall(f"{SVG}polyline") if p.get("stroke") == "#0b4f9c"]
    assert len(medians) == 2
    assert len(medians[0].get("points", "").split()) == 12
    # Loss bars: one path, a bar per bucket that lost anything.
    bars = root.find(f"{SVG}path")
    assert bars is not None
    assert bars.get("d", "").count("M") == 12 + (288 - 36)
    # The threshold line, and time ticks on whole hours of Vietnam time.
    assert any(line.get("stroke-dasharray") for line in root.findall(f"{SVG}line"))
    ticks = [t.text for t in root.findall(f"{SVG}text") if t.text and ":" in t.text]
    assert ticks == ["12:00", "18:00", "00:00", "06:00"]


def test_english_and_the_figure_caption() -> None:
    points: list[tuple[float | None, float | None]] = [(0.0042, 0.0)] * 24
    html = latency_loss_chart(data(points), lang="en", title="Viettel", chart_id="x")
    assert html.startswith('<figure class="chart"><svg')
    assert "Median latency 4.2 ms, highest 4.2 ms. No packet loss." in html
    assert "Latency (median)" in html
    assert "<script" not in html


def test_no_data_at_all_says_so() -> None:
    empty = data([(None, None)] * 288)
    summary = summarize(empty)
    assert summary.measured_share == 0
    assert describe(summary, "vi") == "Chưa có số liệu đo trong khoảng thời gian này."
    root = parse(latency_loss_svg(empty, lang="vi", title="t", chart_id="e"))
    assert root.findall(f"{SVG}polyline") == []
    assert len(root.findall(f"{SVG}rect")) == 1


def test_a_lone_value_between_gaps_is_still_drawn() -> None:
    points: list[tuple[float | None, float | None]] = [(None, None), (0.01, 0.0), (None, None)]
    root = parse(latency_loss_svg(data(points), lang="vi", title="t", chart_id="d"))
    assert len(root.findall(f"{SVG}circle")) == 2  # the median and the highest RTT
