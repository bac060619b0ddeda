"""Charts as inline SVG, drawn in Python from the aggregates.

No JavaScript charting library: the report must open with no network and
stay one small file, and the charts here (bars over time, ranked horizontal
bars, a histogram, sparklines) are a few ``<rect>`` elements each. Every
label goes through :func:`html.escape` — entity titles are untrusted. Colours
come from CSS classes (``bar``, ``bar-alt``, ``axis`` …) set by the page.
"""

from __future__ import annotations

import math
from html import escape
from typing import Sequence

FONT_PX = 11
# labels of the ranked bars are ids: set in a monospace font (the page's
# code font), whose advance is 0.60 em in DejaVu Sans Mono, Menlo and
# Courier; 0.62 leaves room for the rest
MONO_EM = 0.62
LABEL_CHARS = 50  # at 12 px, 372 units: the chart widens to keep PLOT_MIN for the bars
PLOT_MIN = 240


def _e(value) -> str:
    return escape(str(value), quote=True)


def fmt_int(value: int | float) -> str:
    return f"{int(round(value)):,}"


def fmt_compact(value: float) -> str:
    """Axis labels: 950, 1.2k, 35k, 2M."""
    value = float(value)
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            text = f"{value / size:.1f}".rstrip("0").rstrip(".")
            return text + suffix
    return fmt_int(value)


def _nice_max(value: float) -> float:
    """The smallest 1/2/5 × 10^k at or above ``value`` (axis top)."""
    if value <= 0:
        return 1
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    title: str,
    css_class: str = "bar",
    width: int = 640,
    height: int = 200,
) -> str:
    """Vertical bars, one per bucket, with a y axis and first/middle/last x labels."""
    left, right, top, bottom = 56, 8, 10, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(values))
    top_value = _nice_max(max(values, default=0))
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.8)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for fraction in (0, 0.5, 1):
        y = top + plot_h - fraction * plot_h
        parts.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(
            f'<text class="axis" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" '
            f'font-size="{FONT_PX}">{_e(fmt_compact(top_value * fraction))}</text>'
        )
    for index, value in enumerate(values):
        h = 0 if not value else max(1.0, value / top_value * plot_h)
        x = left + index * slot + (slot - bar_w) / 2
        y = top + plot_h - h
        parts.append(
            f'<rect class="{_e(css_class)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}">'
            f"<title>{_e(labels[index])}: {_e(fmt_int(value))}</title></rect>"
        )
    shown = sorted({0, (len(values) - 1) // 2, len(values) - 1}) if values else []
    for index in shown:
        x = left + index * slot + slot / 2
        anchor = "start" if index == 0 and len(values) > 1 else ("end" if index == len(values) - 1 and len(values) > 1 else "middle")
        if anchor == "start":
            x = left + index * slot
        elif anchor == "end":
            x = left + (index + 1) * slot
        parts.append(
            f'<text class="axis" x="{x:.1f}" y="{height - 6}" text-anchor="{anchor}" '
            f'font-size="{FONT_PX}">{_e(labels[index])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def hbar_chart(
    rows: Sequence[tuple[str, float, str]],
    title: str,
    css_class: str = "bar",
    width: int = 640,
    row_height: int = 20,
    label_chars: int = LABEL_CHARS,
) -> str:
    """Ranked horizontal bars: ``(label, value, tooltip)`` per row, largest first.

    The label column is as wide as the longest label (in a monospace font,
    so its width is known here), up to ``label_chars`` characters; a longer
    label keeps its start and its end with "…" in the middle, and the full
    label is the tooltip. Labels start at the left edge, so none is ever
    cut by the edge of the chart; when long labels leave less than
    ``PLOT_MIN`` for the bars, the chart is drawn wider (and scaled down
    to the page with its text)."""
    font = FONT_PX + 1
    shown = [_middle(label, label_chars) for label, _, _ in rows]
    label_w = math.ceil(max((len(text) for text in shown), default=0) * font * MONO_EM)
    left, right = label_w + 10, 70
    width = max(width, left + PLOT_MIN + right)  # wider, then scaled to the page: nothing cut
    height = max(1, len(rows)) * row_height + 4
    plot_w = width - left - right
    top_value = max((value for _, value, _ in rows), default=0) or 1
    parts = [
        f'<svg class="chart hbar" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
    ]
    for index, ((label, value, tooltip), text) in enumerate(zip(rows, shown)):
        y = 2 + index * row_height
        w = 0 if not value else max(1.0, value / top_value * plot_w)
        # a shortened label's full text must be in its tooltip
        full = _e(tooltip if text == label or tooltip.startswith(label) else f"{label}: {tooltip}")
        parts.append(
            f'<text class="label mono" x="2" y="{y + row_height * 0.7:.1f}" data-width="{label_w}" '
            f'font-size="{font}">{_e(text)}<title>{full}</title></text>'
        )
        parts.append(
            f'<rect class="{_e(css_class)}" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_height - 6}">'
            f"<title>{full}</title></rect>"
        )
        parts.append(
            f'<text class="axis" x="{left + w + 6:.1f}" y="{y + row_height * 0.7:.1f}" '
            f'font-size="{FONT_PX}">{_e(fmt_int(value))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _middle(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters: its start, "…", its end
    (an id's end is what tells two similar ids apart)."""
    if len(text) <= limit:
        return text
    tail = (limit - 1) // 2
    return text[: limit - 1 - tail] + "…" + text[len(text) - tail:]


def histogram(bins: Sequence[tuple[str, int]], title: str, css_class: str = "bar-alt",
              width: int = 640, height: int = 200) -> str:
    """Columns with their label and count under/over each one."""
    left, right, top, bottom = 10, 10, 20, 24
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(1, len(bins))
    slot = plot_w / n
    top_value = max((count for _, count in bins), default=0) or 1
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
        f'<line class="grid" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>',
    ]
    for index, (label, count) in enumerate(bins):
        h = 0 if not count else max(1.0, count / top_value * plot_h)
        x = left + index * slot + slot * 0.15
        y = top + plot_h - h
        cx = left + index * slot + slot / 2
        parts.append(
            f'<rect class="{_e(css_class)}" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
            f"<title>{_e(label)}: {_e(fmt_int(count))} entities</title></rect>"
        )
        parts.append(
            f'<text class="axis" x="{cx:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
            f'font-size="{FONT_PX}">{_e(fmt_int(count))}</text>'
        )
        parts.append(
            f'<text class="axis" x="{cx:.1f}" y="{height - 6}" text-anchor="middle" '
            f'font-size="{FONT_PX}">{_e(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def sparkline(values: Sequence[float], title: str, width: int = 240, height: int = 36) -> str:
    """A tiny bar strip of ``values`` (no axes); the title says what it is."""
    n = max(1, len(values))
    slot = width / n
    top_value = max(values, default=0) or 1
    parts = [
        f'<svg class="spark" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_e(title)}</title>",
        f'<line class="grid" x1="0" x2="{width}" y1="{height - 0.5}" y2="{height - 0.5}"/>',
    ]
    for index, value in enumerate(values):
        if not value:
            continue
        h = max(1.0, value / top_value * (height - 2))
        parts.append(
            f'<rect class="bar" x="{index * slot:.1f}" y="{height - h:.1f}" '
            f'width="{max(0.8, slot - 0.6):.1f}" height="{h:.1f}"/>'
        )
    parts.append("</svg>")
    return "".join(parts)
