"""Server-side charts: inline SVG bar charts (stacked), so the dashboard works offline with no script.

Each bar carries a `<title>` (hover tooltip) and the chart's totals are written in its legend, so the
figures can be read (and tested) without looking at pixels.
"""

from datetime import datetime
from typing import Any

from django.utils.html import escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _

WIDTH, HEIGHT = 640, 170
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 8, 10, 22
COLORS = {
    "validation_accepted": "#3b82f6", "validation_refused": "#f59e0b", "chat_requests": "#10b981",
    "upstream_errors": "#ef4444", "tokens_in": "#6366f1", "tokens_out": "#a855f7", "estimated_cost": "#0ea5e9",
}
LABELS = {
    "validation_accepted": _("Validations accepted"), "validation_refused": _("Validations refused"),
    "chat_requests": _("Chat requests"), "upstream_errors": _("Upstream errors"), "tokens_in": _("Tokens in"),
    "tokens_out": _("Tokens out"), "estimated_cost": _("Estimated cost"),
}


def _fmt(value: float, money: bool) -> str:
    if money:
        return f"{value:,.4f}" if value < 1 else f"{value:,.2f}"
    return f"{int(value):,}"


def _period_label(start: datetime, hourly: bool) -> str:
    return start.strftime("%m-%d %H:00") if hourly else start.strftime("%m-%d")


def bar_chart(*, key: str, title, series: list[dict], fields: tuple[str, ...], hourly: bool,
              money: bool = False) -> dict[str, Any]:
    """A stacked bar chart of `fields` over `series` (one bar per period)."""
    totals = {field: sum(entry[field] for entry in series) for field in fields}
    peak = max((sum(entry[field] for field in fields) for entry in series), default=0) or 1
    inner_w, inner_h = WIDTH - PAD_LEFT - PAD_RIGHT, HEIGHT - PAD_TOP - PAD_BOTTOM
    step = inner_w / max(len(series), 1)
    bar_w = max(step * 0.8, 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'class="console-chart" data-chart="{escape(key)}" aria-label="{escape(title)}">',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + inner_h}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP + inner_h}" '
        f'stroke="#9ca3af" stroke-width="1"/>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{WIDTH - PAD_RIGHT}" y2="{PAD_TOP}" stroke="#e5e7eb" '
        f'stroke-dasharray="3 3"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end" font-size="10" fill="#6b7280">'
        f'{_fmt(peak if any(totals.values()) else 0, money)}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + inner_h}" text-anchor="end" font-size="10" fill="#6b7280">0</text>',
    ]
    for index, entry in enumerate(series):
        x = PAD_LEFT + index * step + (step - bar_w) / 2
        y = PAD_TOP + inner_h
        label = _period_label(entry["start"], hourly)
        for field in fields:
            value = entry[field]
            if not value:
                continue
            height = inner_h * value / peak
            y -= height
            parts.append(
                f'<rect x="{x:.2f}" y="{y:.2f}" width="{bar_w:.2f}" height="{height:.2f}" fill="{COLORS[field]}" '
                f'data-field="{field}" data-value="{value}"><title>{escape(label)} · {escape(LABELS[field])}: '
                f'{_fmt(value, money)}</title></rect>')
    if series:
        ticks = sorted({0, len(series) // 2, len(series) - 1})
        for index in ticks:
            x = PAD_LEFT + index * step + step / 2
            anchor = "start" if index == 0 else "end" if index == len(series) - 1 else "middle"
            parts.append(f'<text x="{x:.2f}" y="{HEIGHT - 6}" text-anchor="{anchor}" font-size="10" '
                         f'fill="#6b7280">{escape(_period_label(series[index]["start"], hourly))}</text>')
    parts.append("</svg>")
    legend = [{"field": field, "label": LABELS[field], "color": COLORS[field], "total": totals[field],
               "display": _fmt(totals[field], money)} for field in fields]
    return {"key": key, "title": title, "svg": mark_safe("".join(parts)), "legend": legend}


def dashboard_charts(*, hourly: dict, daily: dict) -> dict[str, list[dict]]:
    def four(summary: dict, is_hourly: bool, suffix: str) -> list[dict]:
        series = summary["series"]
        return [
            bar_chart(key=f"validations-{suffix}", title=_("Key validations"), series=series, hourly=is_hourly,
                      fields=("validation_accepted", "validation_refused")),
            bar_chart(key=f"chat-{suffix}", title=_("Chat requests and upstream errors"), series=series,
                      hourly=is_hourly, fields=("chat_requests", "upstream_errors")),
            bar_chart(key=f"tokens-{suffix}", title=_("Tokens"), series=series, hourly=is_hourly,
                      fields=("tokens_in", "tokens_out")),
            bar_chart(key=f"cost-{suffix}", title=_("Estimated cost"), series=series, hourly=is_hourly,
                      fields=("estimated_cost",), money=True),
        ]

    return {"daily": four(daily, False, "daily"), "hourly": four(hourly, True, "hourly")}
