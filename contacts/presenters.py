"""How contacts, events and timeline entries read on the pages: shaped here, written out by the templates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .models import TimelineEntry

INLINE_PROPERTIES = 3
ALL_EVENTS_KIND = "custom_event.*"
EVENT_KIND_PREFIX = "custom_event."
SORTABLE_COLUMNS = (("ltv", "Lifetime value"), ("orders", "Orders"), ("last_event", "Last event"))


@dataclass(frozen=True)
class SortColumn:
    label: str
    url: str  # the list sorted as a click on the header asks
    aria: str  # ascending | descending | none


def sort_columns(sort: str, url_for: Callable[[str], str]) -> list[SortColumn]:
    """The contacts list's sortable columns: the first click sorts biggest first; clicking the active one flips it."""
    columns = []
    for key, label in SORTABLE_COLUMNS:
        target = key if sort == f"-{key}" else f"-{key}"
        direction = "descending" if sort == f"-{key}" else "ascending" if sort == key else "none"
        columns.append(SortColumn(label=label, url=url_for(target), aria=direction))
    return columns


@dataclass(frozen=True)
class TimelineItem:
    """One timeline entry, shaped for the page."""

    entry: TimelineEntry
    inline_properties: list[tuple[str, Any]]
    more_properties: list[tuple[str, Any]]
    currency: str
    segment_name: str
    changed_fields: list[str]

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineItem:
        event = entry.custom_event
        properties = list(event.properties.items()) if event is not None and isinstance(event.properties, dict) else []
        currency = ""
        if event is not None and isinstance(event.properties, dict):
            currency = str(event.properties.get("currency") or "")
        segment = (entry.changes or {}).get("segment", {}).get("new") if entry.entity_type == "segment" else None
        changed = []
        if entry.operation == TimelineEntry.Operation.UPDATE and isinstance(entry.changes, dict):
            changed = sorted(entry.changes)
        return cls(
            entry=entry,
            inline_properties=properties[:INLINE_PROPERTIES],
            more_properties=properties[INLINE_PROPERTIES:],
            currency=currency,
            segment_name=str(segment.get("name") or segment.get("id") or "") if isinstance(segment, dict) else "",
            changed_fields=changed,
        )
