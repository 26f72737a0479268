"""An independent, pure-Python reading of the segment rules, for property tests against the SQL.

Written from the semantics stated in ``segments/rules.py``'s docstring, not from its compiler:
it walks the tree and, per contact, filters that contact's events in plain Python, using
``Fraction`` for exact arithmetic. Inputs are plain dicts:

* contact: ``id, email, external_id, first_name, last_name, properties, created_at``
* event: ``id, contact_id, event_name, properties, occurred_at, goal_type, goal_name,
  goal_value (Decimal | None), deleted_at``
* memberships: ``{segment slug: {contact id, ...}}``
* rfm_scores: ``{rfm model id: {contact id: {group, previous_group, group_changed_at, r, f, m,
  recency_days, frequency, monetary_cents}}}`` (the stored rows; a contact without one is prospect)
* timeline entries: ``contact_id, kind, operation, created_at`` (the stored ones; every event
  also has its insert entry, ``custom_event.<name>`` at its ``occurred_at``, added here)

Notifuse's two leaves (``contacts`` with ``filters``, ``contact_timeline``) are read from the
contract (``NOTIFUSE-API.md`` §3.4-3.5) and the README's Segments section: contacts also carry
``updated_at``, and Notifuse's other contact fields are properties of the same name.
"""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from collections.abc import Iterable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any

Row = Mapping[str, Any]


def matching_contact_ids(
    tree: dict[str, Any],
    *,
    contacts: Iterable[Row],
    events: Iterable[Row],
    now: dt.datetime,
    timezone_name: str,
    memberships: Mapping[str, set[int]] | None = None,
    rfm_scores: Mapping[str, Mapping[int, Row]] | None = None,
    timeline: Iterable[Row] = (),
) -> set[int]:
    events = list(events)
    # An event's insert entry is the event itself (contacts migration 0011): as a test writes
    # them (no later version), at its occurred_at, whether deleted since or not.
    timeline = [
        *timeline,
        *(
            {
                "contact_id": event["contact_id"],
                "kind": f"custom_event.{event['event_name']}",
                "operation": "insert",
                "created_at": event["occurred_at"],
            }
            for event in events
        ),
    ]
    evaluator = _Evaluator(now=now, tz=zoneinfo.ZoneInfo(timezone_name), memberships=memberships or {})
    evaluator.rfm_scores = rfm_scores or {}
    matched = set()
    for contact in contacts:
        own_events = [event for event in events if event["contact_id"] == contact["id"]]
        evaluator.entries = [entry for entry in timeline if entry["contact_id"] == contact["id"]]
        if evaluator.node(tree, contact, own_events):
            matched.add(contact["id"])
    return matched


def _moment(text: str) -> dt.date | dt.datetime:
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text)
    instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    assert instant.tzinfo is not None
    return instant


# A contact property read as an instant: a date (midnight UTC) or a UTC date-time, seconds and a
# 1-6 digit fraction optional, suffix Z, +00:00 or none; the calendar is checked by ``datetime``.
_PROPERTY_INSTANT = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})(?:T([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,6}))?)?(?:Z|\+00:00)?)?"
)


def property_instant(stored: Any) -> dt.datetime | None:
    """The UTC instant a contact property holds, or None when it holds none (see ``rules``)."""
    if not isinstance(stored, str):
        return None
    match = _PROPERTY_INSTANT.fullmatch(stored)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction = match.groups()
    try:
        return dt.datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "").ljust(6, "0")),
            tzinfo=dt.UTC,
        )
    except ValueError:  # 2026-02-30, hour 24, second 60, year 0 ...
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(actual: Fraction | None, operator: str, value: Fraction, value_2: Fraction | None) -> bool:
    if actual is None:
        return False
    if operator == "between":
        assert value_2 is not None
        return value <= actual <= value_2
    return {
        "gt": actual > value,
        "gte": actual >= value,
        "lt": actual < value,
        "lte": actual <= value,
        "eq": actual == value,
        "neq": actual != value,
    }[operator]


class _Evaluator:
    def __init__(self, *, now: dt.datetime, tz: zoneinfo.ZoneInfo, memberships: Mapping[str, set[int]]) -> None:
        self.now = now
        self.tz = tz
        self.memberships = memberships
        self.rfm_scores: Mapping[str, Mapping[int, Row]] = {}
        self.entries: list[Row] = []  # the current contact's timeline

    def midnight(self, day: dt.date) -> dt.datetime:
        return dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)

    def in_timeframe(self, moment: dt.datetime, operator: str, values: list[Any]) -> bool:
        if operator == "anytime":
            return True
        if operator == "in_the_last_days":
            return moment >= self.now - dt.timedelta(days=int(values[0]))
        if operator == "more_than_days_ago":
            return moment < self.now - dt.timedelta(days=int(values[0]))
        if operator == "before_date":
            limit = _moment(values[0])
            if isinstance(limit, dt.datetime):
                return moment < limit
            return moment < self.midnight(limit)
        if operator == "after_date":
            limit = _moment(values[0])
            if isinstance(limit, dt.datetime):
                return moment > limit
            # Strictly after the whole day.
            return moment >= self.midnight(limit + dt.timedelta(days=1))
        assert operator == "in_date_range"
        start, end = (_moment(v) for v in values)
        after_start = moment >= (start if isinstance(start, dt.datetime) else self.midnight(start))
        if isinstance(end, dt.datetime):
            return after_start and moment <= end
        return after_start and moment < self.midnight(end + dt.timedelta(days=1))

    def node(self, node: dict[str, Any], contact: Row, events: list[Row]) -> bool:
        if node["kind"] == "branch":
            results = [self.node(child, contact, events) for child in node["branch"]["leaves"]]
            result = all(results) if node["branch"]["operator"] == "and" else any(results)
        else:
            result = self.leaf(node["leaf"], contact, events)
        return not result if node.get("negate") else result

    def leaf(self, leaf: dict[str, Any], contact: Row, events: list[Row]) -> bool:
        source = leaf["source"]
        if source == "custom_events_goals":
            return self.goal(leaf["custom_events_goal"], events)
        if source == "custom_events":
            return self.custom_event(leaf["custom_event"], events)
        if source == "contacts" and "filters" in leaf["contact"]:
            return all(_dimension_filter(item, contact, self.now) for item in leaf["contact"]["filters"])
        if source == "contacts":
            return self.contact(leaf["contact"], contact)
        if source == "rfm":
            return self.rfm(leaf["rfm"], contact)
        if source == "contact_timeline":
            return self.timeline_count(leaf["contact_timeline"])
        assert source == "segment"
        rule = leaf["segment"]
        member = contact["id"] in self.memberships.get(rule["segment_id"], set())
        return member if rule["operator"] == "in_segment" else not member

    def rfm(self, rule: dict[str, Any], contact: Row) -> bool:
        row = self.rfm_scores.get(rule["model"], {}).get(contact["id"])
        field = rule["field"]
        if field in ("group", "previous_group"):
            if row is None:
                value = "prospect" if field == "group" else ""
            else:
                value = row[field]
            inside = value in rule["values"]
            return inside if rule["operator"] == "in" else not inside
        if row is None:
            return False
        if field == "group_changed_at":
            changed = row["group_changed_at"]
            return changed is not None and self.in_timeframe(
                changed, rule["timeframe_operator"], rule["timeframe_values"]
            )
        stored = row["monetary_cents"] if field == "monetary" else row[field]
        if stored is None:
            return False
        scale = 100 if field == "monetary" else 1
        bound = Fraction(Decimal(str(rule["value"]))) * scale
        bound_2 = Fraction(Decimal(str(rule["value_2"]))) * scale if "value_2" in rule else None
        return _compare(Fraction(stored), rule["operator"], bound, bound_2)

    def goal(self, rule: dict[str, Any], events: list[Row]) -> bool:
        qualifying = [
            event
            for event in events
            if event["deleted_at"] is None
            and event["goal_type"] is not None
            and rule["goal_type"] in ("*", event["goal_type"])
            and rule.get("goal_name", event["goal_name"]) == event["goal_name"]
            and rule.get("event_name", event["event_name"]) == event["event_name"]
            and self.in_timeframe(event["occurred_at"], rule["timeframe_operator"], rule["timeframe_values"])
        ]
        qualifying.sort(key=lambda event: (event["occurred_at"], event["id"]))
        amounts = [
            Fraction(event["goal_value"] if event["goal_value"] is not None else Decimal(0)) for event in qualifying
        ]
        aggregate = rule["aggregate_operator"]
        actual: Fraction | None
        if aggregate == "sum":
            actual = sum(amounts, Fraction(0))
        elif aggregate == "count":
            actual = Fraction(len(amounts))
        elif not amounts:
            actual = None
        elif aggregate == "avg":
            actual = sum(amounts, Fraction(0)) / len(amounts)
        elif aggregate == "min":
            actual = min(amounts)
        elif aggregate == "max":
            actual = max(amounts)
        elif aggregate == "first":
            actual = amounts[0]
        else:
            assert aggregate == "last"
            actual = amounts[-1]
        value = Fraction(Decimal(str(rule["value"])))
        value_2 = Fraction(Decimal(str(rule["value_2"]))) if "value_2" in rule else None
        return _compare(actual, rule["operator"], value, value_2)

    @staticmethod
    def json_equals(properties: Mapping[str, Any], key: str, value: Any) -> bool:
        if key not in properties:
            return False
        stored = properties[key]
        if isinstance(value, str):
            return isinstance(stored, str) and stored == value
        return _is_number(stored) and stored == value

    @staticmethod
    def json_is_set(properties: Mapping[str, Any], key: str) -> bool:
        return key in properties and properties[key] is not None

    def custom_event(self, rule: dict[str, Any], events: list[Row]) -> bool:
        def passes_filters(event: Row) -> bool:
            for item in rule.get("properties", []):
                props = event["properties"]
                if item["operator"] == "exists" and not self.json_is_set(props, item["key"]):
                    return False
                if item["operator"] == "equals" and not self.json_equals(props, item["key"], item["value"]):
                    return False
                if item["operator"] == "not_equals" and self.json_equals(props, item["key"], item["value"]):
                    return False
            return True

        count = sum(
            1
            for event in events
            if event["deleted_at"] is None
            and event["event_name"] == rule["event_name"]
            and self.in_timeframe(event["occurred_at"], rule["timeframe_operator"], rule["timeframe_values"])
            and passes_filters(event)
        )
        wanted = rule["count_value"]
        return {"at_least": count >= wanted, "at_most": count <= wanted, "exactly": count == wanted}[
            rule["count_operator"]
        ]

    def contact(self, rule: dict[str, Any], contact: Row) -> bool:
        field, operator = rule["field"], rule["operator"]
        value: Any = rule.get("value")  # its type follows from the operator
        if field == "created_at":
            if operator == "in_the_last_days":
                return contact["created_at"] >= self.now - dt.timedelta(days=int(value))
            return self.in_timeframe(contact["created_at"], f"{operator}_date", [value])
        if field.startswith("properties."):
            return self.contact_property(contact["properties"], field.removeprefix("properties."), operator, value)
        text = contact[field]
        if field == "email" and isinstance(value, str):
            value = value.strip().lower()
        return {
            "is_set": lambda: text != "",
            "is_not_set": lambda: text == "",
            "equals": lambda: text == value,
            "not_equals": lambda: text != value,
            "contains": lambda: value.lower() in text.lower(),
            "not_contains": lambda: value.lower() not in text.lower(),
        }[operator]()

    def contact_property(self, properties: Mapping[str, Any], key: str, operator: str, value: Any) -> bool:
        if operator == "is_set":
            return self.json_is_set(properties, key)
        if operator == "is_not_set":
            return not self.json_is_set(properties, key)
        if operator == "equals":
            return self.json_equals(properties, key, value)
        if operator == "not_equals":
            return not self.json_equals(properties, key, value)
        stored = properties.get(key)
        if operator in ("before", "after", "in_the_last_days"):
            instant = property_instant(stored)
            if instant is None:
                return False
            if operator == "in_the_last_days":
                return instant >= self.now - dt.timedelta(days=int(value))
            return self.in_timeframe(instant, f"{operator}_date", [value])
        if operator in ("contains", "not_contains"):
            found = isinstance(stored, str) and value.lower() in stored.lower()
            return found if operator == "contains" else not found
        if not _is_number(stored):
            return False
        return {"gt": stored > value, "gte": stored >= value, "lt": stored < value, "lte": stored <= value}[operator]

    def timeline_count(self, rule: dict[str, Any]) -> bool:
        """Entries of the kind in the timeframe, Notifuse's inserts and updates (not this app's
        delete/restore entries); a template filter matches nothing (no message entries here)."""
        count = sum(
            1
            for entry in self.entries
            if entry["kind"] == rule["kind"]
            and entry["operation"] in ("insert", "update")
            and "template_id" not in rule
            and self.in_timeframe(entry["created_at"], rule["timeframe_operator"], rule["timeframe_values"])
        )
        wanted = rule["count_value"]
        return {"at_least": count >= wanted, "at_most": count <= wanted, "exactly": count == wanted}[
            rule["count_operator"]
        ]


# --------------------------------------------------------------------------- Notifuse's DimensionFilter

_MISSING = object()
_COLUMNS = ("email", "external_id", "first_name", "last_name")


def _at(value: Any, path: list[str]) -> Any:
    """The JSON value at a path (digits index arrays only), or ``_MISSING``."""
    for segment in path:
        if segment.isdigit():
            if not isinstance(value, list) or int(segment) >= len(value):
                return _MISSING
            value = value[int(segment)]
        else:
            if not isinstance(value, dict) or segment not in value:
                return _MISSING
            value = value[segment]
    return value


def _utc_moment(text: str) -> dt.datetime:
    """A filter's date: date-only is midnight UTC."""
    moment = _moment(text)
    if isinstance(moment, dt.datetime):
        return moment
    return dt.datetime(moment.year, moment.month, moment.day, tzinfo=dt.UTC)


def _time_holds(moment: dt.datetime, operator: str, values: list[Any], now: dt.datetime) -> bool:
    if operator == "in_the_last_days":
        return moment > now - dt.timedelta(days=int(values[0]))
    bounds = [_utc_moment(value) for value in values]
    if operator == "before_date":
        return moment < bounds[0]
    if operator == "after_date":
        return moment > bounds[0]
    within = bounds[0] <= moment <= bounds[1]
    return within if operator == "in_date_range" else not within


def _text_holds(text: str, operator: str, values: list[str]) -> bool:
    if operator == "equals":
        return text == values[0]
    if operator == "not_equals":
        return text != values[0]
    found = [value.lower() in text.lower() for value in values]
    return any(found) if operator == "contains" else not all(found)


def _dimension_filter(item: Mapping[str, Any], contact: Row, now: dt.datetime) -> bool:
    """A field that is not set holds only ``is_not_set``; our text columns are unset when ""."""
    name, operator = item["field_name"], item["operator"]
    values = item.get("number_values") or item.get("string_values") or []
    if name in ("created_at", "updated_at"):
        if operator in ("is_set", "is_not_set"):
            return operator == "is_set"
        return _time_holds(contact[name], operator, values, now)
    if name in _COLUMNS:
        text = contact[name]
        if text == "":
            return operator == "is_not_set"
        return operator == "is_set" or (operator != "is_not_set" and _text_holds(text, operator, values))
    path = item.get("json_path", [])
    if operator in ("is_set", "is_not_set"):
        if path:  # Notifuse: the first key of the path is present, even as JSON null
            present = _at(contact["properties"], [name, path[0]]) is not _MISSING
        else:
            present = _at(contact["properties"], [name]) not in (_MISSING, None)
        return present == (operator == "is_set")
    value = _at(contact["properties"], [name, *path])
    if value is _MISSING or value is None:
        return False
    if name.startswith("custom_datetime_"):
        instant = property_instant(value)
        return instant is not None and _time_holds(instant, operator, values, now)
    if item["field_type"] == "number":
        if not _is_number(value):
            return operator == "not_equals"
        return {
            "equals": value == values[0],
            "not_equals": value != values[0],
            "gt": value > values[0],
            "gte": value >= values[0],
            "lt": value < values[0],
            "lte": value <= values[0],
        }[operator]
    if operator == "in_array":
        if isinstance(value, list):
            return any(isinstance(element, str) and element == values[0] for element in value)
        return isinstance(value, dict) and values[0] in value
    if not isinstance(value, str):
        return operator in ("not_equals", "not_contains")
    return _text_holds(value, operator, values)
