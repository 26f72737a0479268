"""Template tags every page may ``{% load pages %}``: the frame of a data table."""

from __future__ import annotations

from django import template
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

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
