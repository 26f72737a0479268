"""Webhook bodies: the Notifuse envelope around data rendered by the API's own serializers.

A change is captured in the outbox as the row's values at that moment (``event_values`` /
``contact_values``, serialised with ``json_default``); the fan-out renders them through
``EventOutputSerializer`` and ``ContactOutputSerializer``, the serializers of ``customEvents.get``
and ``contacts.get``, so a webhook's ``data.custom_event`` / ``data.contact`` is exactly what those endpoints return and
follows them when they change. The envelope is serialised once per delivery by the API's JSON
renderer and stored: every retry sends the same bytes.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Model
from django.utils import timezone
from rest_framework.fields import DateTimeField
from rest_framework.renderers import JSONRenderer

from contacts.api.serializers import ContactOutputSerializer, EventOutputSerializer
from contacts.changes import json_value
from contacts.models import Contact, CustomEvent, GoalType

from .events import subject_of

EVENT_FIELDS = tuple(f.attname for f in CustomEvent._meta.concrete_fields)
CONTACT_FIELDS = tuple(f.attname for f in Contact._meta.concrete_fields)
_renderer = JSONRenderer()
_timestamp = DateTimeField()


EVENT_KEYS = (*EVENT_FIELDS, "email")


def json_default(value: Any) -> Any:
    """``json.dumps``' fallback for captured values: an instant in ISO 8601, a decimal's exact
    digits as text (``contacts.changes.json_value``), anything else as ``str``. Applied as the
    outbox rows are serialised, in one pass, not field by field beforehand."""
    if isinstance(value, datetime | Decimal):
        return json_value(value, decimal=str)
    return str(value)


def event_values(values: dict[str, Any]) -> dict[str, Any]:
    """An event's stored values (attnames, plus ``email``) as the outbox keeps them, once
    serialised with ``json_default``."""
    return {name: values.get(name) for name in EVENT_KEYS}


@functools.cache  # the same text for every batch: built once, not on each import
def event_values_sql(rows: str, contacts: str) -> str:
    """SQL: ``event_values`` of the event row ``rows`` (its contact the row ``contacts``) built
    by PostgreSQL, as JSON text: the same keys, instants in ISO 8601, the goal value's exact
    digits as text (``render_data`` reads both alike)."""
    parts = []
    for field in CustomEvent._meta.concrete_fields:
        value = f"{rows}.{field.column}" + ("::text" if field.attname == "goal_value" else "")
        parts.append(f"'{field.attname}', {value}")
    parts.append(f"'email', {contacts}.email")
    return f"json_build_object({', '.join(parts)})::text"


def contact_values(contact: Contact) -> dict[str, Any]:
    """A contact's stored values as the outbox keeps them, once serialised with ``json_default``."""
    return {name: getattr(contact, name) for name in CONTACT_FIELDS}


def _instance(model: type[Model], fields: tuple[str, ...], values: dict[str, Any]) -> Any:
    """An unsaved model instance holding the captured values, typed by the model's own fields."""
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    kwargs = {}
    for name in fields:
        value = values.get(name)
        kwargs[name] = value if value is None else by_attname[name].to_python(value)
    return model(**kwargs)


def render_data(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The envelope's ``data`` for a captured change."""
    subject = subject_of(event_type)
    if subject == "custom_event":
        event = _instance(CustomEvent, EVENT_FIELDS, data)
        event.contact = Contact(pk=data["contact_id"], workspace_id=data["workspace_id"], email=data["email"])
        return {"custom_event": dict(EventOutputSerializer(event).data)}
    if subject == "contact":
        return {"contact": dict(ContactOutputSerializer(_instance(Contact, CONTACT_FIELDS, data)).data)}
    return data


def envelope(
    *, message_id: str, event_type: str, occurred_at: datetime, workspace_id: str, data: dict[str, Any]
) -> str:
    body = {
        "id": message_id,
        "type": event_type,
        "timestamp": _timestamp.to_representation(occurred_at),
        "workspace_id": workspace_id,
        "data": data,
    }
    rendered: bytes = _renderer.render(body)
    return rendered.decode()


def sample_data(event_type: str, *, workspace_id: str, now: datetime | None = None) -> dict[str, Any]:
    """A realistic ``data`` of this type for ``webhookSubscriptions.test`` (real shape, made-up values)."""
    now = now or timezone.now()
    subject = subject_of(event_type)
    if subject == "custom_event":
        values = {
            "id": 0,
            "workspace_id": workspace_id,
            "contact_id": 0,
            "email": "customer@example.com",
            "event_name": "order.completed",
            "external_id": "order_test_1",
            "properties": {"items": ["Product A"], "currency": "USD"},
            "occurred_at": now,
            "source": CustomEvent.Source.API,
            "integration_id": None,
            "goal_type": GoalType.PURCHASE,
            "goal_name": None,
            "goal_value": Decimal("149.99"),
            "deleted_at": now if event_type.endswith(".deleted") else None,
            "created_at": now,
            "updated_at": now,
        }
        return render_data(event_type, event_values(values))
    if subject == "contact":
        contact = Contact(
            id=0,
            workspace_id=workspace_id,
            email="customer@example.com",
            first_name="Ada",
            last_name="Lovelace",
            properties={"plan": "pro"},
            created_at=now,
            updated_at=now,
        )
        return render_data(event_type, contact_values(contact))
    if subject == "segment":
        return {"email": "customer@example.com", "contact_id": 0, "segment_id": "vip", "segment_name": "VIP"}
    if subject == "rfm":
        return {
            "email": "customer@example.com",
            "contact_id": 0,
            "model": "default",
            "from_group": "loyal",
            "to_group": "champions",
            "r": 5,
            "f": 5,
            "m": 4,
        }
    return {}
