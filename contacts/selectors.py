"""Reads of contacts, events and timelines, with keyset (cursor) pagination.

A cursor is an opaque url-safe token holding the sort key of the last row returned; the
next page starts strictly after it, so pages stay fast and stable however deep they go.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from django.db.models import Model, Q, QuerySet
from django.utils.dateparse import parse_datetime

from .models import Contact, CustomEvent, TimelineEntry

T = TypeVar("T", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class InvalidCursor(ValueError):
    """The cursor was not made by us (or was tampered with)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(moment: datetime, pk: int) -> str:
    raw = json.dumps([moment.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment_text, pk = json.loads(raw)
        moment = parse_datetime(moment_text)
        if moment is None or not isinstance(pk, int):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidCursor("cursor is not valid; pass the next_cursor of a previous page") from exc
    return moment, pk


def paginate_desc(
    queryset: QuerySet[T], *, field: str, limit: int, cursor: str | None = None, offset: int = 0
) -> Page[T]:
    """Newest first by (field, id); ``offset`` is honoured for Notifuse clients, cursor is better."""
    queryset = queryset.order_by(f"-{field}", "-id")
    if cursor:
        moment, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "id__lt": pk}))
    rows = list(queryset[offset : offset + limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], field), rows[-1].pk) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)


def contact_get(*, workspace_id: str, email: str) -> Contact | None:
    return Contact.objects.filter(workspace_id=workspace_id, email=email.strip().lower()).first()


def event_get(*, workspace_id: str, event_name: str, external_id: str) -> CustomEvent | None:
    return (
        CustomEvent.objects.live()
        .select_related("contact")
        .filter(workspace_id=workspace_id, event_name=event_name, external_id=external_id)
        .first()
    )


def event_list(
    *,
    workspace_id: str,
    email: str | None = None,
    event_name: str | None = None,
    goal_type: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    offset: int = 0,
) -> Page[CustomEvent]:
    events = CustomEvent.objects.live().select_related("contact").filter(workspace_id=workspace_id)
    if email:
        contact = contact_get(workspace_id=workspace_id, email=email)
        if contact is None:
            return Page(items=[], next_cursor=None)
        events = events.filter(contact=contact)
    if event_name:
        events = events.filter(event_name=event_name)
    if goal_type:
        events = events.filter(goal_type=goal_type)
    return paginate_desc(events, field="occurred_at", limit=limit, cursor=cursor, offset=offset)


def contact_list(
    *, workspace_id: str, search: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Contact]:
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if search:
        contacts = contacts.filter(email__contains=search.strip().lower())
    return paginate_desc(contacts, field="created_at", limit=limit, cursor=cursor)


def timeline_list(
    *,
    contact: Contact,
    kind: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[TimelineEntry]:
    """A contact's timeline newest first; event entries come with the event's current row.

    ``kind`` matches exactly, or as a prefix when it ends with ``*`` (``custom_event.*``).
    """
    entries = TimelineEntry.objects.filter(contact=contact).select_related("custom_event__contact")
    if kind:
        entries = entries.filter(kind__startswith=kind[:-1]) if kind.endswith("*") else entries.filter(kind=kind)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return paginate_desc(entries, field="created_at", limit=limit, cursor=cursor)
