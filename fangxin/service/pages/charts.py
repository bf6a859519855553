"""The dashboard's charts: server-side SVG by pygal (no JavaScript), served as images."""

from __future__ import annotations

import pygal
from pygal.style import Style

_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    font_family='"Noto Sans CJK SC","Source Han Sans SC","WenQuanYi Micro Hei",sans-serif',
    colors=("#1f6feb", "#d1242f", "#2da44e"),
    title_font_size=15,
    label_font_size=11,
    major_label_font_size=11,
)


def line_svg(
    title: str, unit: str, labels: list[str], series: dict[str, list[float | None]], note: str
) -> bytes:
    """Render a line chart whose title carries the unit and the note (time zone, data time)."""
    chart = pygal.Line(
        js=[],  # no script: the SVG is shown as an <img>, which never runs scripts anyway
        width=640,
        height=260,
        style=_STYLE,
        title=f"{title}（{unit}）",
        x_title=note,
        show_legend=len(series) > 1,
        show_minor_x_labels=False,
        x_labels_major_every=5,
        allow_interruptions=True,
        margin=12,
        truncate_label=-1,
        explicit_size=False,
    )
    chart.x_labels = labels
    for name, values in series.items():
        chart.add(name, values)
    svg: bytes = chart.render()
    return svg
