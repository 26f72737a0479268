"""Notifuse's response shapes (/work/shared/NOTIFUSE-API.md), as checks a Notifuse client would need to hold,
and request bodies as Notifuse's console builds them.

Each ``assert_*`` checks one object as the contract defines it: the keys a client reads are present
with their JSON types, nullable keys are absent or null, timestamps carry a zone. Keys of our own
are allowed (clients ignore keys they do not know).
"""

from __future__ import annotations

import re
from typing import Any

GOAL_TYPES = {"purchase", "subscription", "lead", "signup", "booking", "trial", "other"}
# RFC 3339 with a zone (Z or ±hh:mm): JavaScript reads a zone-less time as local time.
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)\Z")


def is_timestamp(value: Any) -> bool:
    return isinstance(value, str) and _RFC3339.match(value) is not None


def assert_timestamp(value: Any) -> None:
    assert is_timestamp(value), value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _optional(obj: dict[str, Any], key: str, check: Any) -> None:
    """A nullable key: absent or null, or else of its type."""
    if obj.get(key) is not None:
        assert check(obj[key]), (key, obj[key])


def assert_error(response: Any, status: int) -> None:
    """Notifuse's error body: JSON with a non-empty string ``error``."""
    assert response.status_code == status, (response.status_code, response.content)
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body


def assert_custom_event(event: Any) -> None:
    """§1.1 The CustomEvent object."""
    assert isinstance(event, dict)
    for key in ("external_id", "email", "event_name", "source"):
        assert isinstance(event[key], str), key
    assert isinstance(event["properties"], dict)
    for key in ("occurred_at", "created_at", "updated_at"):
        assert_timestamp(event[key])
    _optional(event, "integration_id", lambda v: isinstance(v, str))
    _optional(event, "goal_type", lambda v: v in GOAL_TYPES)
    _optional(event, "goal_name", lambda v: isinstance(v, str))
    _optional(event, "goal_value", _number)
    _optional(event, "deleted_at", is_timestamp)


# §4.1: the Contact object's optional fields by JSON type, as the contract lists them.
_NAME_FIELDS = ("external_id", "timezone", "language", "first_name", "last_name", "full_name", "phone")
_ADDRESS_FIELDS = ("address_line_1", "address_line_2", "country", "postcode", "state", "job_title")
CONTACT_STRING_FIELDS = (*_NAME_FIELDS, *_ADDRESS_FIELDS, *(f"custom_string_{n}" for n in range(1, 6)))
CONTACT_NUMBER_FIELDS = tuple(f"custom_number_{n}" for n in range(1, 6))
CONTACT_DATETIME_FIELDS = tuple(f"custom_datetime_{n}" for n in range(1, 6))
CONTACT_JSON_FIELDS = tuple(f"custom_json_{n}" for n in range(1, 6))


def assert_contact(contact: Any) -> None:
    """§4.1 The Contact object; ``contact_lists`` and ``contact_segments`` are arrays."""
    assert isinstance(contact, dict)
    assert isinstance(contact["email"], str)
    assert_timestamp(contact["created_at"])
    assert_timestamp(contact["updated_at"])
    for key in CONTACT_STRING_FIELDS:
        _optional(contact, key, lambda v: isinstance(v, str))
    for key in CONTACT_NUMBER_FIELDS:
        _optional(contact, key, _number)
    for key in CONTACT_DATETIME_FIELDS:
        _optional(contact, key, is_timestamp)
    for key in CONTACT_JSON_FIELDS:
        _optional(contact, key, lambda v: isinstance(v, dict | list))
    assert isinstance(contact["contact_lists"], list)
    assert isinstance(contact["contact_segments"], list)
    for membership in contact["contact_segments"]:
        assert isinstance(membership["email"], str)
        assert isinstance(membership["segment_id"], str)
        assert isinstance(membership["version"], int)
        assert_timestamp(membership["matched_at"])
        assert_timestamp(membership["computed_at"])


def assert_segment(segment: Any) -> None:
    """§3.1 The Segment object."""
    assert isinstance(segment, dict)
    for key in ("id", "name", "color", "timezone"):
        assert isinstance(segment[key], str) and segment[key], key
    assert re.fullmatch(r"[a-z0-9_]{1,32}", segment["id"])
    assert isinstance(segment["tree"], dict)
    assert isinstance(segment["version"], int) and segment["version"] >= 1
    assert segment["status"] in {"building", "active", "deleted"}, segment["status"]
    assert isinstance(segment["users_count"], int) and not isinstance(segment["users_count"], bool)
    assert_timestamp(segment["db_created_at"])
    assert_timestamp(segment["db_updated_at"])


def assert_timeline_entry(entry: Any) -> None:
    """§2.2 The timeline Entry."""
    assert isinstance(entry, dict)
    assert isinstance(entry["id"], str) and entry["id"]
    for key in ("email", "operation", "entity_type", "kind"):
        assert isinstance(entry[key], str) and entry[key], key
    assert "changes" in entry and (entry["changes"] is None or isinstance(entry["changes"], dict))
    _optional(entry, "entity_id", lambda v: isinstance(v, str))
    assert_timestamp(entry["created_at"])
    assert_timestamp(entry["db_created_at"])
    if entry["entity_type"] == "custom_event":
        assert entry["kind"].startswith("custom_event.")
        for key in ("goal_value",):
            change = (entry["changes"] or {}).get(key)
            if change is not None:
                _optional(change, "new", _number)
                _optional(change, "old", _number)
        if "entity_data" in entry and entry["entity_data"] is not None:
            assert_custom_event(entry["entity_data"])


# The console's goal condition (TS/segment.ts): purchase sum >= 1000, anytime ([] as timeframe_values).
CONSOLE_SPENT_1000_TREE = {
    "kind": "branch",
    "branch": {
        "operator": "and",
        "leaves": [
            {
                "kind": "leaf",
                "leaf": {
                    "source": "custom_events_goals",
                    "custom_events_goal": {
                        "goal_type": "purchase",
                        "aggregate_operator": "sum",
                        "operator": "gte",
                        "value": 1000,
                        "timeframe_operator": "anytime",
                        "timeframe_values": [],
                    },
                },
            }
        ],
    },
}
