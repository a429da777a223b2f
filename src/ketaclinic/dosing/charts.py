"""The session's vitals chart as server-rendered SVG: BP and heart rate on one panel, SpO2 on a
second, minutes from the first dose along the bottom, alert thresholds as dashed lines and
readings that crossed one ringed in red. Hand-built markup: no script, no inline CSS (the
Content-Security-Policy allows neither), and it prints."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from django.utils.safestring import SafeString, mark_safe

WIDTH = 720
LEFT, RIGHT = 64, 30
TOP_PANEL = (22, 200)  # y from, y to (pixels) for BP and HR
LOW_PANEL = (236, 306)  # SpO2
HEIGHT = 336
BP_RANGE = (40, 200)
SPO2_RANGE = (85, 100)
COLOURS = {"sbp": "#b03a2e", "dbp": "#d35400", "hr": "#1f5f8b", "spo2": "#1e8449"}
NAMES = {"sbp": "Systolic", "dbp": "Diastolic", "hr": "Heart rate", "spo2": "SpO2"}


MUTED, INK = "#5d6d7e", "#17202a"


def _line(x1: float, x2: float, y1: float, y2: float, stroke: str, extra: str = "") -> str:
    return (
        f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y1:.1f}" y2="{y2:.1f}" stroke="{stroke}" {extra}/>'
    )


def _text(
    x: float,
    y: float,
    label: str,
    *,
    size: int = 11,
    anchor: str = "end",
    fill: str = MUTED,
    minor: bool = False,
) -> str:
    css = ' class="minor"' if minor else ""
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="{fill}"{css}>{escape(label)}</text>'
    )


def _gridline(y: float, value: int, minor: bool = False) -> list[str]:
    # Minor labels are hidden on a phone, where the text is drawn larger.
    return [
        _line(LEFT, WIDTH - RIGHT, y, y, "#e4e9ee"),
        _text(LEFT - 6, y + 4, str(value), minor=minor),
    ]


def _y(value: float, low: float, high: float, panel: tuple[int, int]) -> float:
    value = min(max(value, low), high)
    top, bottom = panel
    return bottom - (value - low) / (high - low) * (bottom - top)


def session_chart(
    vitals: Sequence[Any], first_dose_at: datetime | None, tz: ZoneInfo, settings: Any
) -> SafeString:
    readings = [v for v in vitals if any(getattr(v, k) is not None for k in COLOURS)]
    if not readings:
        return mark_safe("")  # noqa: S308 - constant
    origin = first_dose_at or readings[0].taken_at
    minutes = [(v.taken_at - origin).total_seconds() / 60 for v in readings]
    start = min(0.0, min(minutes))
    end = max(max(minutes), start + 60.0, 120.0 if first_dose_at else 0.0)

    def x(m: float) -> float:
        return LEFT + (m - start) / (end - start) * (WIDTH - LEFT - RIGHT)

    title = "Vital signs over the session"
    parts = [
        f'<svg class="vitals-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{title}</title>",
    ]
    # Grid and axes.
    for value in range(BP_RANGE[0], BP_RANGE[1] + 1, 20):
        parts += _gridline(_y(value, *BP_RANGE, TOP_PANEL), value, minor=value % 40 != 0)
    for value in (85, 90, 95, 100):
        parts += _gridline(_y(value, *SPO2_RANGE, LOW_PANEL), value, minor=value % 10 != 0)
    step = 15 if end - start <= 180 else 30
    tick = int(start // step) * step
    while tick <= end:
        if tick >= start:
            xx = x(tick)
            parts.append(_line(xx, xx, TOP_PANEL[0], LOW_PANEL[1], "#f0f3f6"))
            label, ink = (f"{tick:+d}", MUTED) if tick else ("dose", INK)
            minor = bool(tick) and tick % (2 * step) != 0
            parts.append(_text(xx, HEIGHT - 12, label, anchor="middle", fill=ink, minor=minor))
        tick += step
    parts.append(
        _text(WIDTH - RIGHT, HEIGHT - 1, "minutes from the first dose", size=10, minor=True)
    )
    # Alert thresholds, dashed.
    limits = [
        (settings.alert_sbp, "sbp", BP_RANGE, TOP_PANEL),
        (settings.alert_dbp, "dbp", BP_RANGE, TOP_PANEL),
        (settings.alert_hr, "hr", BP_RANGE, TOP_PANEL),
        (settings.alert_spo2, "spo2", SPO2_RANGE, LOW_PANEL),
    ]
    for value, key, (low, high), panel in limits:
        y = _y(value, low, high, panel)
        parts.append(
            _line(
                LEFT,
                WIDTH - RIGHT,
                y,
                y,
                COLOURS[key],
                'stroke-dasharray="5 4" stroke-opacity=".6"',
            )
        )
    # Series; a reading that crossed a threshold is ringed in red.
    alert_of = {"sbp": "sbp_high", "dbp": "dbp_high", "hr": "hr_high", "spo2": "spo2_low"}
    for key, colour in COLOURS.items():
        low, high, panel = (*SPO2_RANGE, LOW_PANEL) if key == "spo2" else (*BP_RANGE, TOP_PANEL)
        points = [
            (x(m), _y(float(getattr(v, key)), low, high, panel), v)
            for m, v in zip(minutes, readings, strict=True)
            if getattr(v, key) is not None
        ]
        if len(points) > 1:
            path = " ".join(f"{px:.1f},{py:.1f}" for px, py, _ in points)
            dash = ' stroke-dasharray="2 3"' if key == "dbp" else ""
            style = f'fill="none" stroke="{colour}" stroke-width="2.5"{dash}'
            parts.append(f'<polyline points="{path}" {style}/>')
        for px, py, v in points:
            at = v.taken_at.astimezone(tz).strftime("%H:%M")
            crossed = alert_of[key] in (v.alerts or [])
            ring = 'r="7" fill="#fff" stroke="#b03a2e" stroke-width="3"'
            dot = f'r="4" fill="{colour}" stroke="{colour}" stroke-width="1"'
            parts.append(
                f'<circle cx="{px:.1f}" cy="{py:.1f}" {ring if crossed else dot}>'
                f"<title>{escape(NAMES[key])} {getattr(v, key)} at {at}</title></circle>"
            )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - values are numbers and escaped text
