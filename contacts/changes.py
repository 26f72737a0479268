"""What a timeline entry's ``changes`` hold, shared by the writes (services) and the reads (selectors).

An entry's ``changes`` are ``{"field": {"old": ..., "new": ...}}`` for the fields a change
touched, in JSON values (datetimes as ISO 8601 text, decimals as numbers). An event's "insert"
entry is the exception: its ``changes`` would be the event's whole first version, properties
included, which the event row already holds, so the entry is written lean (``{}``) and
``event_insert_changes`` rebuilds them for readers from the event row and the "old" values of
the entries written after it. Lean entries are only written when the event row as inserted is
the inserted version (``services._event_entry``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from .models import PROFILE_FIELD_TYPES, Contact, CustomEvent, split_properties

GOAL_FIELDS = ("goal_type", "goal_name", "goal_value")
# What a newer version of an event may change; its identity (event_name, external_id) never does.
EVENT_VERSION_FIELDS = ("occurred_at", "properties", "source", "integration_id", *GOAL_FIELDS, "deleted_at")
# Fields of an event that a timeline entry records changes of.
TRACKED_EVENT_FIELDS = ("event_name", "external_id", *EVENT_VERSION_FIELDS)
TRACKED_CONTACT_FIELDS = ("email", "external_id", "first_name", "last_name", "properties")
# Values an insert entry leaves out (a field that was not set).
EMPTY_VALUES: tuple[Any, ...] = (None, {}, "")


def json_value(value: Any, decimal: Callable[[Decimal], Any] = float) -> Any:
    """``value`` as JSON holds it: instants in ISO 8601, decimals through ``decimal`` (a timeline's
    changes keep numbers; the webhooks outbox keeps the exact digits as text)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return decimal(value)
    return value


def diff(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """The ``changes`` from ``old`` to ``new`` (``old`` None: an insert, every set field "new")."""
    if old is None:
        return {k: {"new": json_value(v)} for k, v in new.items() if v not in EMPTY_VALUES}
    return {k: {"old": json_value(old[k]), "new": json_value(new[k])} for k in new if old[k] != new[k]}


def contact_snapshot(contact: Contact) -> dict[str, Any]:
    """What a contact's timeline entries record: its columns, its free-form properties and each of
    Notifuse's profile fields under its own name (None when not set), as Notifuse's
    ``contact.updated`` names each column that changed."""
    profile, free = split_properties(contact.properties)
    columns = {name: getattr(contact, name) for name in TRACKED_CONTACT_FIELDS if name != "properties"}
    return {**columns, "properties": free, **{name: profile.get(name) for name in PROFILE_FIELD_TYPES}}


def event_snapshot(event: CustomEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in TRACKED_EVENT_FIELDS}


def event_insert_changes(event: CustomEvent, later: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The ``changes`` of an event's lean insert entry: what ``diff(None, first version)`` wrote.

    ``later`` are the ``changes`` of the event's entries written after the insert, in write
    order. Each field's first version is the "old" of the first of them that changed it, else
    the row's current value.
    """
    first = {name: json_value(getattr(event, name)) for name in TRACKED_EVENT_FIELDS}
    settled: set[str] = set()
    for changes in later:
        for name, change in changes.items():
            if name in first and name not in settled and isinstance(change, Mapping) and "old" in change:
                first[name] = change["old"]
                settled.add(name)
    return {name: {"new": value} for name, value in first.items() if value not in EMPTY_VALUES}
