"""A fast path for reading incoming events, in front of the DRF serializers.

Validating a 50-event import through ``EventImportInputSerializer`` costs several
milliseconds of Python per batch (per-field machinery, validators walking every character),
about as much as the SQL that stores it. Nearly every batch is plainly valid, so this module
reads the plain shapes directly and returns ``None`` for anything else: the serializer stays
the definition of valid input and the author of every error message.

The contract, checked by property tests (contacts/tests/test_fast_input.py): whatever this
accepts, the serializer accepts too and turns into the same ``EventInput``. It may refuse
more than the serializer does (non-ASCII ids, numbers sent as strings of ids, naive
datetimes, ...); those inputs simply take the serializer's path.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, TypeVar

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from contacts.models import (
    EVENT_NAME_MAX_LENGTH,
    EVENT_NAME_PATTERN,
    EXTERNAL_ID_MAX_LENGTH,
    GOAL_NAME_MAX_LENGTH,
    GOAL_TYPES_REQUIRING_VALUE,
    CustomEvent,
    GoalType,
    normalize_email,
)
from contacts.services import EventInput

from .serializers import MAX_FUTURE, SOURCE_VALIDATOR, EventInputSerializer, GoalValueField, JsonObjectField

# A subset of Django's EmailValidator: dot-atom local part of common characters, LDH labels,
# an alphabetic top-level domain.
_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}", re.IGNORECASE
)
_EVENT_NAME = re.compile(EVENT_NAME_PATTERN)
_SOURCE = re.compile(SOURCE_VALIDATOR.regex)  # already compiled: re.compile returns it as it is
# Printable ASCII only: no NUL, no surrogates, nothing a serializer validator would refuse.
_PLAIN = re.compile(r"[\x20-\x7e]+")
_GOAL_TYPES = frozenset(GoalType.values)
_EVENT_FIELDS = frozenset(EventInputSerializer().fields)
_UPSERT_FIELDS = _EVENT_FIELDS | {"workspace_id"}
_IMPORT_FIELDS = frozenset({"workspace_id", "events"})
_IMPORT_MAX = 50

# The serializer's own fields, reused where their conversion is the definition (decimal
# rounding, timezone handling, the JSON size rule).
_serializer = EventInputSerializer()
_FieldT = TypeVar("_FieldT", bound=serializers.Field)


def _serializer_field(name: str, kind: type[_FieldT]) -> _FieldT:
    field = _serializer.fields[name]
    assert isinstance(field, kind)
    return field


_GOAL_VALUE = _serializer_field("goal_value", GoalValueField)
_OCCURRED_AT = _serializer_field("occurred_at", serializers.DateTimeField)
_PROPERTIES = _serializer_field("properties", JsonObjectField)  # its size rule: PROPERTIES_MAX_BYTES


class _Refused(Exception):
    """Not plainly valid: let the serializer decide."""


def _text(value: Any, *, max_length: int, blank: bool = False) -> str:
    """A CharField with trim_whitespace: stripped, within max_length, plain ASCII."""
    if type(value) is not str:
        raise _Refused
    text: str = value.strip()
    if not text:
        if blank:
            return ""
        raise _Refused
    if len(text) > max_length or not _PLAIN.fullmatch(text):
        raise _Refused
    return text


def _datetime(value: Any) -> datetime | None:
    if value is None:
        return None
    if type(value) is not str or not _PLAIN.fullmatch(value):
        raise _Refused
    try:
        parsed = parse_datetime(value)
    except ValueError:
        raise _Refused from None
    if parsed is None or timezone.is_naive(parsed):
        raise _Refused
    try:
        parsed = _OCCURRED_AT.enforce_timezone(parsed)
    except serializers.ValidationError:
        raise _Refused from None
    return parsed


def _event(item: Any, *, allowed: frozenset[str], default_source: str, now: datetime) -> EventInput:
    if type(item) is not dict or not item.keys() <= allowed:
        raise _Refused
    email = item.get("email")
    if type(email) is not str:
        raise _Refused
    email = email.strip()
    if len(email) > 254 or not _EMAIL.fullmatch(email):
        raise _Refused
    event_name = item.get("event_name")
    if type(event_name) is not str or len(event_name) > EVENT_NAME_MAX_LENGTH or not _EVENT_NAME.search(event_name):
        raise _Refused
    external_id = _text(item.get("external_id"), max_length=EXTERNAL_ID_MAX_LENGTH)

    properties: dict[str, Any] = {}
    if "properties" in item:
        if type(item["properties"]) is not dict:
            raise _Refused
        try:
            properties = _PROPERTIES.to_internal_value(item["properties"])
        except serializers.ValidationError:
            raise _Refused from None

    occurred_at = _datetime(item.get("occurred_at"))
    if occurred_at is not None and occurred_at > now + MAX_FUTURE:
        raise _Refused
    deleted_at = _datetime(item.get("deleted_at"))

    source = default_source
    if "source" in item:
        source = _text(item["source"], max_length=32)
        if not _SOURCE.search(source):
            raise _Refused
    integration_id = item.get("integration_id")
    if integration_id is not None:
        integration_id = _text(integration_id, max_length=255)

    goal: dict[str, Any] = {}
    if "goal_type" in item:
        goal_type = item["goal_type"]
        if goal_type is not None and (type(goal_type) is not str or goal_type not in _GOAL_TYPES):
            raise _Refused
        goal["goal_type"] = goal_type
    if "goal_name" in item:
        goal_name = item["goal_name"]
        goal["goal_name"] = None if goal_name is None else _text(goal_name, max_length=GOAL_NAME_MAX_LENGTH, blank=True)
    if "goal_value" in item:
        goal_value = item["goal_value"]
        if goal_value is not None:
            if type(goal_value) not in (int, float, str):
                raise _Refused
            try:
                goal_value = _GOAL_VALUE.to_internal_value(goal_value)
            except serializers.ValidationError:
                raise _Refused from None
        goal["goal_value"] = goal_value
    if goal.get("goal_type") in GOAL_TYPES_REQUIRING_VALUE and goal.get("goal_value") is None:
        raise _Refused

    return EventInput(
        email=normalize_email(email),
        event_name=event_name,
        external_id=external_id,
        occurred_at=occurred_at or timezone.now(),
        properties=properties,
        source=source,
        integration_id=integration_id,
        goal=goal,
        deleted_at=deleted_at,
    )


def import_inputs(data: Any, *, default_source: str = CustomEvent.Source.API) -> list[EventInput] | None:
    """The events of a plainly valid ``customEvents.import`` body, or None."""
    if not isinstance(data, Mapping) or not data.keys() <= _IMPORT_FIELDS:
        return None
    workspace_id, events = data.get("workspace_id"), data.get("events")
    if type(workspace_id) is not str or not 0 < len(workspace_id.strip()) <= 32 or not _PLAIN.fullmatch(workspace_id):
        return None
    if type(events) is not list or not 1 <= len(events) <= _IMPORT_MAX:
        return None
    now = timezone.now()
    try:
        return [_event(item, allowed=_EVENT_FIELDS, default_source=default_source, now=now) for item in events]
    except _Refused:
        return None


def upsert_input(data: Any, *, default_source: str = CustomEvent.Source.API) -> EventInput | None:
    """The event of a plainly valid ``customEvents.upsert`` body, or None."""
    if not isinstance(data, Mapping):
        return None
    workspace_id = data.get("workspace_id")
    if type(workspace_id) is not str or not 0 < len(workspace_id.strip()) <= 32 or not _PLAIN.fullmatch(workspace_id):
        return None
    try:
        return _event(dict(data), allowed=_UPSERT_FIELDS, default_source=default_source, now=timezone.now())
    except _Refused:
        return None
