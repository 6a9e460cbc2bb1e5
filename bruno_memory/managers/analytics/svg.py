"""Small inline SVG charts (pure functions returning markup): bars, horizontal bars and
lines, with axes, labels and a ``<title>`` tooltip per mark. No script, no network."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#0ea5e9")
WIDTH, HEIGHT, PAD, AXIS = 640, 240, 28, 44


def _fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"


def _frame(name: str, caption: str, body: str, height: int = HEIGHT) -> str:
    return (
        f'<figure class="chart" data-chart="{escape(name)}"><figcaption>{escape(caption)}'
        f'</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'role="img" aria-label="{escape(caption)}">{body}</svg></figure>'
    )


def _empty(name: str, caption: str, note: str) -> str:
    text = (f'<text class="empty" x="{WIDTH / 2}" y="40" '
            f'text-anchor="middle">{escape(note)}</text>')
    return _frame(name, caption, text, 64)


def _y_axis(top: float, bottom: float, high: float) -> str:
    marks = []
    for i in range(5):
        value = high * i / 4
        y = bottom - (bottom - top) * i / 4
        marks.append(f'<line class="grid" x1="{AXIS}" x2="{WIDTH - PAD}" y1="{y:.1f}" '
                     f'y2="{y:.1f}"/><text class="tick" x="{AXIS - 6}" y="{y + 4:.1f}" '
                     f'text-anchor="end">{_fmt(value)}</text>')
    return "".join(marks)


def bars(name: str, caption: str, points: Sequence[tuple[str, float]], *,
         note: str = "no data yet", every: int = 1) -> str:
    """Vertical bars, one per (label, value); every ``every``-th label is written."""
    if not points or not any(v for _, v in points):
        return _empty(name, caption, note)
    top, bottom = PAD, HEIGHT - PAD
    high = max(v for _, v in points) or 1.0
    step = (WIDTH - PAD - AXIS) / len(points)
    out = [_y_axis(top, bottom, high)]
    for i, (label, value) in enumerate(points):
        h = (bottom - top) * value / high
        x = AXIS + i * step
        out.append(f'<rect class="mark" x="{x + step * 0.1:.1f}" y="{bottom - h:.1f}" '
                   f'width="{step * 0.8:.1f}" height="{h:.1f}" fill="{PALETTE[0]}">'
                   f'<title>{escape(label)}: {_fmt(value)}</title></rect>')
        if i % every == 0:
            out.append(f'<text class="tick" x="{x + step / 2:.1f}" y="{bottom + 14}" '
                       f'text-anchor="middle">{escape(label)}</text>')
    return _frame(name, caption, "".join(out))


def hbars(name: str, caption: str, points: Sequence[tuple[str, float]], *,
          unit: str = "", note: str = "no data yet") -> str:
    """Horizontal bars, one row per (label, value), the label on the left."""
    if not points or not any(v for _, v in points):
        return _empty(name, caption, note)
    row, left = 22, 190
    height = PAD * 2 + row * len(points)
    high = max(v for _, v in points) or 1.0
    out = []
    for i, (label, value) in enumerate(points):
        y = PAD + i * row
        w = (WIDTH - left - PAD - 60) * value / high
        out.append(f'<text class="tick" x="{left - 8}" y="{y + 15}" text-anchor="end">'
                   f'{escape(label)}</text><rect class="mark" x="{left}" y="{y + 3}" '
                   f'width="{max(w, 1):.1f}" height="{row - 6}" fill="{PALETTE[i % 6]}">'
                   f'<title>{escape(label)}: {_fmt(value)}{unit}</title></rect>'
                   f'<text class="value" x="{left + max(w, 1) + 6:.1f}" y="{y + 15}">'
                   f'{_fmt(value)}{escape(unit)}</text>')
    return _frame(name, caption, "".join(out), height)


def lines(name: str, caption: str, labels: Sequence[str],
          series: dict[str, Sequence[float]], *, note: str = "no data yet") -> str:
    """One line per series over ``labels`` (e.g. days), with a legend."""
    if not labels or not any(any(v) for v in series.values()):
        return _empty(name, caption, note)
    top, bottom = PAD + 14, HEIGHT - PAD
    high = max(max(v) for v in series.values()) or 1.0
    step = (WIDTH - PAD - AXIS) / max(len(labels) - 1, 1)
    out = [_y_axis(top, bottom, high)]
    for n, (title, values) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        xy = [(AXIS + i * step, bottom - (bottom - top) * v / high) for i, v in enumerate(values)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in enumerate(xy))
        out.append(f'<path class="mark" d="{path}" fill="none" stroke="{color}" '
                   f'stroke-width="2"><title>{escape(title)}</title></path>')
        out.append(f'<rect x="{AXIS + n * 130}" y="6" width="10" height="10" fill="{color}"/>'
                   f'<text class="tick" x="{AXIS + n * 130 + 14}" y="15">{escape(title)}</text>')
    every = max(len(labels) // 6, 1)
    for i in range(0, len(labels), every):
        out.append(f'<text class="tick" x="{AXIS + i * step:.1f}" y="{bottom + 14}" '
                   f'text-anchor="middle">{escape(labels[i])}</text>')
    return _frame(name, caption, "".join(out))
