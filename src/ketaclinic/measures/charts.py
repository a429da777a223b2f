"""Trend charts as server-rendered SVG: one per scale, bands shaded, visits marked.

Hand-built markup (no JavaScript, no inline CSS) so it renders under the strict
Content-Security-Policy and prints well. Colours for bands run from calm to alarming in the
scale's own direction (for readiness scores higher is better).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from html import escape

from django.utils.safestring import SafeString, mark_safe

from ketaclinic.clinical.instruments.model import Instrument

WIDTH, HEIGHT = 640, 190
# The right margin holds the band labels, clear of the line and the latest point.
LEFT, RIGHT, TOP, BOTTOM = 40, 132, 10, 34
# Calm to alarming. A scale's bands are spread over the whole range, so its calmest band is
# always the first colour and its most alarming the last, whatever the number of bands
# (PCL-5 "probable PTSD" and Aldrete "not ready" are as alarming as PHQ-9 "severe").
BAND_COLOURS = ["#e8f5ec", "#f4f7df", "#fdf3d7", "#fce5d3", "#f9d9d6", "#f3cbd0"]


def band_colour(rank: int, count: int) -> str:
    """The colour of the band `rank` steps from the calmest of `count` bands."""
    if count <= 1:
        return BAND_COLOURS[0]
    last = len(BAND_COLOURS) - 1
    return BAND_COLOURS[round(rank * last / (count - 1))]


@dataclass(frozen=True)
class TrendPoint:
    at: datetime
    total: Decimal
    prorated: bool = False
    flagged: bool = False


def _x(when: float, start: float, end: float) -> float:
    span = max(end - start, 1.0)
    return LEFT + (when - start) / span * (WIDTH - LEFT - RIGHT)


def _y(value: float, low: float, high: float) -> float:
    span = max(high - low, 1.0)
    return TOP + (1 - (value - low) / span) * (HEIGHT - TOP - BOTTOM)


def trend_svg(
    instrument: Instrument, points: list[TrendPoint], visit_days: list[date], title: str
) -> SafeString:
    if not points:
        return mark_safe("")  # noqa: S308 - constant
    low, high = instrument.total_range or (0, max(float(p.total) for p in points))
    times = [p.at.timestamp() for p in points]
    start, end = min(times), max(times)
    if start == end:
        start, end = start - 86400 * 7, end + 86400 * 7
    parts = [
        f'<svg class="trend" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    # Bands, inclusive integer ranges drawn from low-1/2 to high+1/2.
    ordered = sorted(
        (b for b in instrument.bands if b.low is not None and b.high is not None),
        key=lambda b: b.low or 0,
    )
    for index, band in enumerate(ordered):
        top = _y(min(high, (band.high or 0) + 0.5), low, high)
        bottom = _y(max(low, (band.low or 0) - 0.5), low, high)
        # Higher totals are worse, except on readiness scores (Aldrete, PADSS).
        rank = len(ordered) - 1 - index if instrument.higher_is_better else index
        colour = band_colour(rank, len(ordered))
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{top:.1f}" width="{WIDTH - LEFT - RIGHT}" '
            f'height="{max(bottom - top, 0):.1f}" fill="{colour}"/>'
        )
        # A swatch and the label in the right margin, level with the band's middle.
        middle = (top + bottom) / 2
        parts.append(
            f'<rect x="{WIDTH - RIGHT + 4}" y="{middle - 4:.1f}" width="8" height="8" '
            f'fill="{colour}" stroke="#c3ccd5"/>'
        )
        parts.append(
            f'<text class="band-label" x="{WIDTH - RIGHT + 16}" y="{middle + 3.5:.1f}" '
            f'font-size="10" fill="#5d6d7e">{escape(band.label)}</text>'
        )
    # Axes: min and max of the scale, and a few dates.
    for value in (low, high):
        y = _y(value, low, high)
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#5d6d7e">{value:g}</text>'
        )
    parts.append(
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" '
        f'y2="{HEIGHT - BOTTOM}" stroke="#aab4be"/>'
    )
    for when in (start, (start + end) / 2, end):
        x = _x(when, start, end)
        label = datetime.fromtimestamp(when, tz=points[0].at.tzinfo).strftime("%b %d, %Y")
        anchor = "start" if when == start else "end" if when == end else "middle"
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" text-anchor="{anchor}" font-size="11" '
            f'fill="#5d6d7e">{label}</text>'
        )
    # Visits as ticks on the time axis.
    for day in visit_days:
        ts = datetime(day.year, day.month, day.day, 12, tzinfo=points[0].at.tzinfo).timestamp()
        if start <= ts <= end:
            x = _x(ts, start, end)
            parts.append(
                f'<line class="visit" x1="{x:.1f}" y1="{HEIGHT - BOTTOM}" x2="{x:.1f}" '
                f'y2="{HEIGHT - BOTTOM + 6}" stroke="#1f5f8b" stroke-width="2"/>'
            )
    coords = [
        (_x(t, start, end), _y(float(p.total), low, high))
        for t, p in zip(times, points, strict=True)
    ]
    parts.append(
        '<polyline fill="none" stroke="#1f5f8b" stroke-width="2" points="'
        + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
        + '"/>'
    )
    for (x, y), p in zip(coords, points, strict=True):
        fill = "#b03a2e" if p.flagged else "#fff" if p.prorated else "#1f5f8b"
        parts.append(
            f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{fill}" '
            f'stroke="#1f5f8b" stroke-width="1.5"><title>'
            f"{p.at.strftime('%Y-%m-%d')}: {p.total.normalize():f}"
            f"{' (prorated)' if p.prorated else ''}"
            f"{' — suicide item positive' if p.flagged else ''}</title></circle>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text part above is escaped
