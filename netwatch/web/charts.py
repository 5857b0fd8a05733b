"""Small server-rendered SVG charts: latency and loss over time, readable on a phone.

No JavaScript, no external font or script: an inline <svg> that scales to the page width, with a
<title>/<desc> for screen readers and a caption in words (the chart is never the only place a
figure is given). Median RTT is a line (the highest RTT a fainter one), loss a bar per bucket on
its own 0-100 % scale, buckets without data a grey band, the RTT threshold a dashed line.

Use `latency_loss_chart(ChartData(...), ...)`; `chart_data(series)` converts a
netwatch.history.LinkSeries.

The SVG stays Python, not a template: it is geometry computed point by point. Its three texts
(title, description, caption) go through markupsafe's `escape`, and the result is
`markupsafe.Markup`, so a page template inserts it as it is and never escapes it twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from netwatch.history import LinkSeries
from netwatch.web.i18n import Lang, fmt_number, fmt_time, local
from netwatch.web.words import Common, Words

WIDTH = 400
HEIGHT = 190
LEFT, RIGHT, TOP, BOTTOM = 50, 34, 12, 24
RTT_COLOUR = "#0b4f9c"
RTT_MAX_COLOUR = "#8fb0d8"
LOSS_COLOUR = "#c8102e"
GAP_COLOUR = "#ececec"
AXIS_COLOUR = "#595959"
_STEPS_MS = (1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000)
_TICK_HOURS = (1, 2, 3, 4, 6, 12, 24)

# The legend's words, and the caption's sentences ({placeholders} filled by `describe`).
WORDS: Mapping[str, Words] = {
    "rtt": {"vi": "Độ trễ (trung vị)", "en": "Latency (median)"},
    "rtt_max": {"vi": "Độ trễ cao nhất", "en": "Highest latency"},
    "loss": Common.LOSS,
    "gap": {"vi": "Không có số liệu", "en": "No data"},
    "threshold": {"vi": "Ngưỡng độ trễ", "en": "Latency threshold"},
    "no_data": {
        "vi": "Chưa có số liệu đo trong khoảng thời gian này.",
        "en": "No measurements in this period yet.",
    },
    "rtt_said": {
        "vi": "Độ trễ trung vị {median}, cao nhất {peak}.",
        "en": "Median latency {median}, highest {peak}.",
    },
    "loss_said": {
        "vi": "Mất gói cao nhất {pct} (lúc {at}).",
        "en": "Highest packet loss {pct} (at {at}).",
    },
    "no_loss": {"vi": "Không mất gói.", "en": "No packet loss."},
    "gap_said": {
        "vi": "Không có số liệu trong {share} thời gian.",
        "en": "No data for {share} of the time.",
    },
}


@dataclass(frozen=True, slots=True)
class ChartPoint:
    """One bucket: None where nothing was measured."""

    at: datetime  # bucket start
    rtt_s: float | None
    rtt_max_s: float | None
    loss_ratio: float | None


@dataclass(frozen=True, slots=True)
class ChartData:
    """Points over [start, end), one per step_s."""

    start: datetime
    end: datetime
    step_s: float
    points: Sequence[ChartPoint]


@dataclass(frozen=True, slots=True)
class ChartSummary:
    """The figures the caption says in words."""

    rtt_median_s: float | None  # median of the buckets' medians
    rtt_peak_s: float | None  # highest bucket median
    loss_peak_ratio: float | None
    loss_peak_at: datetime | None
    loss_mean_ratio: float | None
    measured_share: float  # share of buckets with data


def chart_data(series: LinkSeries, end: datetime | None = None) -> ChartData:
    """A history series as chart data (end defaults to the end of its last bucket)."""
    points = [
        ChartPoint(series.bucket_start(i), rtt, top, loss)
        for i, (rtt, top, loss) in enumerate(
            zip(series.rtt_median_s, series.rtt_max_s, series.loss_ratio, strict=True)
        )
    ]
    last = series.bucket_start(len(points))
    return ChartData(series.start, end or last, series.bucket_s, points)


def summarize(data: ChartData) -> ChartSummary:
    """Median and peak latency, peak and mean loss, share of buckets measured."""
    rtts = sorted(p.rtt_s for p in data.points if p.rtt_s is not None)
    measured = [p for p in data.points if p.loss_ratio is not None]
    top = max((p.loss_ratio or 0.0 for p in measured), default=0.0)
    # The first bucket at the peak: when the worst began.
    peak = next((p for p in measured if (p.loss_ratio or 0.0) == top), None)
    return ChartSummary(
        rtt_median_s=rtts[len(rtts) // 2] if rtts else None,
        rtt_peak_s=rtts[-1] if rtts else None,
        loss_peak_ratio=peak.loss_ratio if peak is not None else None,
        loss_peak_at=peak.at if peak is not None and (peak.loss_ratio or 0) > 0 else None,
        loss_mean_ratio=(
            sum(p.loss_ratio or 0.0 for p in measured) / len(measured) if measured else None
        ),
        measured_share=len(measured) / len(data.points) if data.points else 0.0,
    )


def _ms(seconds: float, lang: Lang) -> str:
    ms = seconds * 1000
    return f"{fmt_number(ms, lang, 0 if ms >= 10 else 1)} ms"


def _pct(ratio: float, lang: Lang) -> str:
    value = ratio * 100
    # Whole percents, except near the ends: 99.7 % of the time is not "100 %".
    whole = value in (0, 100) or 10 <= value <= 99.4
    return f"{fmt_number(value, lang, 0 if whole else 1)} %"


def _nice_top_ms(value_ms: float) -> float:
    for step in _STEPS_MS:
        if value_ms <= step:
            return float(step)
    return float(_STEPS_MS[-1] * (int(value_ms // _STEPS_MS[-1]) + 1))


def describe(summary: ChartSummary, lang: Lang) -> str:
    """The chart in one or two plain sentences."""
    if summary.measured_share == 0:
        return WORDS["no_data"][lang]
    parts = []
    if summary.rtt_median_s is not None and summary.rtt_peak_s is not None:
        median, peak = _ms(summary.rtt_median_s, lang), _ms(summary.rtt_peak_s, lang)
        parts.append(WORDS["rtt_said"][lang].format(median=median, peak=peak))
    if summary.loss_peak_at is not None and summary.loss_peak_ratio is not None:
        at = fmt_time(summary.loss_peak_at, lang)
        pct = _pct(summary.loss_peak_ratio, lang)
        parts.append(WORDS["loss_said"][lang].format(pct=pct, at=at))
    else:
        parts.append(WORDS["no_loss"][lang])
    if summary.measured_share < 0.999:
        share = _pct(1 - summary.measured_share, lang)
        parts.append(WORDS["gap_said"][lang].format(share=share))
    return " ".join(parts)


def _f(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def latency_loss_svg(
    data: ChartData,
    *,
    lang: Lang,
    title: str,
    chart_id: str,
    rtt_threshold_s: float | None = None,
) -> Markup:
    """The <svg> element alone (role img, titled and described); `chart_id` must be unique."""
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    span_s = max((data.end - data.start).total_seconds(), 1.0)
    scale_x = (x1 - x0) / span_s
    bar_w = max(data.step_s * scale_x, 0.6)
    summary = summarize(data)

    def x_of(at: datetime) -> float:
        return x0 + (at - data.start).total_seconds() * scale_x

    tops = [p.rtt_s for p in data.points if p.rtt_s is not None]
    if rtt_threshold_s is not None:
        tops.append(rtt_threshold_s)
    top_ms = _nice_top_ms(max(tops) * 1000 * 1.1 if tops else 10.0)

    def y_of_rtt(seconds: float) -> float:
        return y1 - min(seconds * 1000 / top_ms, 1.0) * (y1 - y0)

    parts: list[str] = []
    # Gaps first (background), then loss bars, then the RTT lines on top.
    gap_start: datetime | None = None
    gap_end: datetime | None = None
    for p in [*data.points, None]:
        if p is not None and p.loss_ratio is None:
            gap_start = gap_start or p.at
            gap_end = p.at
            continue
        if gap_start is not None and gap_end is not None:
            width = x_of(gap_end) - x_of(gap_start) + bar_w
            parts.append(
                f'<rect x="{_f(x_of(gap_start))}" y="{y0}" width="{_f(width)}" '
                f'height="{y1 - y0}" fill="{GAP_COLOUR}"/>'
            )
        gap_start = gap_end = None
    bars = []
    for p in data.points:
        if p.loss_ratio:
            h = p.loss_ratio * (y1 - y0)
            bars.append(f"M{_f(x_of(p.at))} {_f(y1 - h)}h{_f(bar_w)}v{_f(h)}h-{_f(bar_w)}z")
    if bars:
        parts.append(f'<path d="{"".join(bars)}" fill="{LOSS_COLOUR}" fill-opacity=".55"/>')
    # Axes and grid.
    for frac in (0.0, 0.5, 1.0):
        y = y1 - frac * (y1 - y0)
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{_f(y)}" y2="{_f(y)}" stroke="#d0d0d0" '
            'stroke-width=".6"/>'
        )
        label_ms = top_ms * frac
        digits = 0 if label_ms >= 10 or label_ms == 0 else 1
        unit = " ms" if frac == 1.0 else ""
        parts.append(
            f'<text x="{x0 - 4}" y="{_f(y + 4)}" text-anchor="end">'
            f"{fmt_number(label_ms, lang, digits)}{unit}</text>"
        )
        parts.append(f'<text x="{x1 + 4}" y="{_f(y + 4)}">{round(frac * 100)}%</text>')
    if rtt_threshold_s is not None and rtt_threshold_s * 1000 <= top_ms:
        ty = _f(y_of_rtt(rtt_threshold_s))
        parts.append(
            f'<line x1="{x0}" x2="{x1}" y1="{ty}" y2="{ty}" stroke="{AXIS_COLOUR}" '
            'stroke-dasharray="4 3" stroke-width="1"/>'
        )
    # Time ticks on whole local hours.
    hours = span_s / 3600
    step_h = next((h for h in _TICK_HOURS if hours / h <= 5), 24)
    first = local(data.start).replace(minute=0, second=0, microsecond=0)
    tick = first + timedelta(hours=1)
    while local(tick).hour % step_h:
        tick += timedelta(hours=1)
    while tick < data.end:
        tx = _f(x_of(tick))
        parts.append(
            f'<line x1="{tx}" x2="{tx}" y1="{y1}" y2="{y1 + 4}" stroke="{AXIS_COLOUR}"/>'
            f'<text x="{tx}" y="{y1 + 15}" text-anchor="middle">{local(tick):%H:%M}</text>'
        )
        tick += timedelta(hours=step_h)
    parts.append(
        f'<line x1="{x0}" x2="{x1}" y1="{y1}" y2="{y1}" stroke="{AXIS_COLOUR}" stroke-width="1"/>'
    )
    # RTT lines, broken where a bucket has no value.
    for attr, colour, width in (("rtt_max_s", RTT_MAX_COLOUR, 1.0), ("rtt_s", RTT_COLOUR, 1.8)):
        runs: list[list[str]] = [[]]
        for p in data.points:
            value = getattr(p, attr)
            if value is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append(f"{_f(x_of(p.at) + bar_w / 2)},{_f(y_of_rtt(value))}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="1.6" fill="{colour}"/>')
            elif run:
                parts.append(
                    f'<polyline points="{" ".join(run)}" fill="none" stroke="{colour}" '
                    f'stroke-width="{width}" stroke-linejoin="round"/>'
                )
    title_id, desc_id = f"{chart_id}-t", f"{chart_id}-d"
    return Markup(  # noqa: S704 -- numbers and constants; the texts escaped here
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{title_id} {desc_id}" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="system-ui,sans-serif" font-size="11" '
        f'fill="#333">'
        f'<title id="{title_id}">{escape(title)}</title>'
        f'<desc id="{desc_id}">{escape(describe(summary, lang))}</desc>'
        f"{''.join(parts)}</svg>"
    )


def _legend(lang: Lang, threshold: bool) -> str:
    items = [
        f'<span style="color:{RTT_COLOUR}">━</span> {WORDS["rtt"][lang]}',
        f'<span style="color:{RTT_MAX_COLOUR}">━</span> {WORDS["rtt_max"][lang]}',
        f'<span style="color:{LOSS_COLOUR}">▮</span> {WORDS["loss"][lang]} (%)',
        f'<span style="color:#999">▮</span> {WORDS["gap"][lang]}',
    ]
    if threshold:
        items.append(f"┄ {WORDS['threshold'][lang]}")
    return " · ".join(items)


def latency_loss_chart(
    data: ChartData,
    *,
    lang: Lang,
    title: str,
    chart_id: str,
    rtt_threshold_s: float | None = None,
) -> Markup:
    """A <figure> with the SVG chart and a caption (legend and the figures in words)."""
    svg = latency_loss_svg(
        data, lang=lang, title=title, chart_id=chart_id, rtt_threshold_s=rtt_threshold_s
    )
    caption = describe(summarize(data), lang)
    return Markup(  # noqa: S704 -- the SVG above, constant words, the caption escaped here
        f'<figure class="chart">{svg}<figcaption><span aria-hidden="true">'
        f"{_legend(lang, rtt_threshold_s is not None)}</span><br>{escape(caption)}"
        "</figcaption></figure>"
    )
