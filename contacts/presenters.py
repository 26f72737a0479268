"""How contacts, events and timeline entries read on the pages: shaped here, written out by the templates.

One reading of JSON values serves every page and the admin: a marketer sees ``Product A, Product B``
and ``true``, never Python's ``['Product A', 'Product B']`` and ``True``; field names read as labels
("First name"), timeline entries as titles ("Contact created", "Order completed").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import FieldDoesNotExist
from django.db.models import Field, Model
from django.utils.text import capfirst

from .models import PROFILE_FIELD_TYPES, Contact, CustomEvent, TimelineEntry

INLINE_PROPERTIES = 3
ALL_EVENTS_KIND = "custom_event.*"
EVENT_KIND_PREFIX = "custom_event."
SORTABLE_COLUMNS = (("ltv", "Lifetime value"), ("orders", "Orders"), ("last_event", "Last event"))
# Nothing there: JSON null, and empty text, lists and objects alike.
EMPTY = "—"
KIND_LABELS = {
    "contact.created": "Contact created",
    "contact.updated": "Contact updated",
    "segment.joined": "Joined a segment",
    "segment.left": "Left a segment",
}
_NAME_SEPARATORS = re.compile(r"[._/\-\s]+")


# ---------------------------------------------------------------------------------------
# Values and names
# ---------------------------------------------------------------------------------------


def json_text(value: Any) -> str:
    """A JSON value as a person reads it: lists joined with commas, true / false, null as an em dash,
    objects as ``key: value`` pairs; a list or object inside another one is put in parentheses."""
    return _json_text(value, nested=False)


def _json_text(value: Any, *, nested: bool) -> str:
    if value is None or value in ("", [], {}):
        return EMPTY
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, list | tuple):
        text = ", ".join(_json_text(item, nested=True) for item in value)
    elif isinstance(value, Mapping):
        text = ", ".join(f"{key}: {_json_text(item, nested=True)}" for key, item in value.items())
    else:
        return str(value)
    return f"({text})" if nested else text


def property_items(properties: Any) -> list[tuple[str, str]]:
    """An event's or contact's properties as (key, readable value); the keys stay as sent, since
    conditions refer to them by name (``properties.plan``)."""
    if not isinstance(properties, Mapping):
        return []
    return [(str(key), json_text(value)) for key, value in properties.items()]


def profile_items(contact: Contact) -> list[tuple[str, str]]:
    """The Notifuse profile fields the contact has set, in Notifuse's order, as (label, readable
    value): ``Phone``, ``Custom number 1``; a time in UTC as ``2026-03-01 10:00 UTC``."""
    profile = contact.profile
    items = []
    for name, kind in PROFILE_FIELD_TYPES.items():
        if name not in profile:
            continue
        value = profile[name]
        if kind == "datetime":
            text = datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M UTC")
        else:
            text = json_text(value)
        items.append((field_label(Contact, name), text))
    return items


def field_label(model: type[Model], name: str) -> str:
    """``first_name`` -> ``First name``: a field's label as its model names it."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        field = None
    if isinstance(field, Field):
        return str(capfirst(field.verbose_name))
    return capfirst(name.replace("_", " "))


def event_title(event_name: str) -> str:
    """``order.completed`` -> ``Order completed``: an event name read as a title (the name itself is
    shown beside it, as the API and the filters use it)."""
    words = _NAME_SEPARATORS.sub(" ", event_name).strip()
    return capfirst(words) if words else event_name


def kind_label(kind: str) -> str:
    """What a kind of timeline entry is called on the page."""
    if kind.startswith(EVENT_KIND_PREFIX):
        return event_title(kind.removeprefix(EVENT_KIND_PREFIX))
    return KIND_LABELS.get(kind) or event_title(kind)


# ---------------------------------------------------------------------------------------
# Lists
# ---------------------------------------------------------------------------------------


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
class EventRow:
    """One event of the events page with its first properties, readable."""

    event: CustomEvent
    properties: list[tuple[str, str]]
    more_properties: int

    @classmethod
    def of(cls, event: CustomEvent) -> EventRow:
        properties = property_items(event.properties)
        return cls(
            event=event,
            properties=properties[:INLINE_PROPERTIES],
            more_properties=max(len(properties) - INLINE_PROPERTIES, 0),
        )


# ---------------------------------------------------------------------------------------
# Timeline
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    """One field of a contact entry: ``First name: Annie (was Ann)``."""

    label: str
    value: str
    previous: str | None = None


@dataclass(frozen=True)
class TimelineItem:
    """One timeline entry, shaped for the page."""

    entry: TimelineEntry
    title: str
    inline_properties: list[tuple[str, str]] = field(default_factory=list)
    more_properties: list[tuple[str, str]] = field(default_factory=list)
    currency: str = ""
    segment_name: str = ""
    changed_fields: list[str] = field(default_factory=list)
    field_changes: list[FieldChange] = field(default_factory=list)

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineItem:
        changes = entry.changes if isinstance(entry.changes, dict) else {}
        event = entry.custom_event
        if event is not None:
            properties = property_items(event.properties)
            currency = event.properties.get("currency") if isinstance(event.properties, dict) else None
            changed = []
            if entry.operation == TimelineEntry.Operation.UPDATE:
                changed = [field_label(CustomEvent, name) for name in sorted(changes)]
            return cls(
                entry=entry,
                title=event_title(event.event_name),
                inline_properties=properties[:INLINE_PROPERTIES],
                more_properties=properties[INLINE_PROPERTIES:],
                currency=str(currency or ""),
                changed_fields=changed,
            )
        if entry.entity_type == "segment":
            segment = (changes.get("segment") or {}).get("new")
            name = str(segment.get("name") or segment.get("id") or "") if isinstance(segment, dict) else ""
            return cls(entry=entry, title=kind_label(entry.kind), segment_name=name)
        return cls(entry=entry, title=kind_label(entry.kind), field_changes=_field_changes(changes))


def _field_changes(changes: Mapping[str, Any]) -> list[FieldChange]:
    """A contact entry's changes, each field by its label; of the properties, the keys that changed."""
    shaped = []
    for name, change in changes.items():
        if not isinstance(change, Mapping):
            continue
        new, old = change.get("new"), change.get("old")
        if name == "properties" and isinstance(new, Mapping):
            before = old if isinstance(old, Mapping) else {}
            new = {key: value for key, value in new.items() if before.get(key) != value} | {
                key: None for key in before if key not in new
            }
            old = None
        shaped.append(
            FieldChange(
                label=field_label(Contact, name),
                value=json_text(new),
                previous=None if old in (None, "", [], {}) else json_text(old),
            )
        )
    return shaped
