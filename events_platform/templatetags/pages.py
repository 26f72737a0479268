"""Template tags every page may ``{% load pages %}``: the frame of a data table, a daily chart's bars."""

from __future__ import annotations

from django import template
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from events_platform.charts import DailyBars

register = template.Library()


@register.simple_block_tag
def table(content: SafeString, css_class: str, *columns: str) -> SafeString:
    """A table's frame around its rows: ``{% table "keys-table" "Name" "Created|hide-narrow" %}<tr>...{% endtable %}``.

    Each column is ``"Label"`` or ``"Label|classes"``; the class ``sr-label`` keeps its label for
    screen readers only. On a phone the rows stack into cards (``table-stack`` in app.css).
    """
    cells = []
    for column in columns:
        label, _, classes = column.partition("|")
        text = format_html('<span class="visually-hidden">{}</span>', label) if "sr-label" in classes.split() else label
        cells.append((format_html(' class="{}"', classes) if classes else "", text))
    head = format_html_join("", '<th scope="col"{}>{}</th>', cells)
    frame = (
        '<div class="table-wrap">'
        '<table class="{} table-stack"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'
    )
    return format_html(frame, css_class, head, content)


@register.simple_tag
def daily_bar_rects(chart: DailyBars, what: str) -> SafeString:
    """A daily chart's bars (``charts.DailyBars``) as SVG ``<rect>``s, each with its hover title
    (``"Tue 1 Dec 2026: 1,234 events"``); days at zero draw nothing.

    One Python loop rather than a template loop: the dashboard draws two charts of 90 bars, and
    the template's per-variable lookups and number localisation of each coordinate took 14 ms a
    chart (a third of the page). The coordinates are numbers; only the title text is escaped.
    """
    what = escape(what)
    return mark_safe(  # noqa: S308 (numbers, and text escaped here)
        "".join(
            f'<rect x="{bar.x}" y="{bar.y}" width="{bar.width}" height="{bar.height}" '
            f'class="bar{" bar-negative" if bar.negative else ""}">'
            f"<title>{escape(bar.day_label)}: {escape(bar.value_label)} {what}</title></rect>"
            for bar in chart.bars
            if bar.value
        )
    )
