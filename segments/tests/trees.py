"""Rule trees and the raw histories they are evaluated on, for tests: one builder per kind of
node and of row. Defaults are the common case; a test that pins data passes what it pins."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

# --------------------------------------------------------------------------- trees


def leaf(source: str, key: str, body: dict[str, Any], *, negate: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "leaf", "leaf": {"source": source, key: body}}
    return negated(node) if negate else node


def goal_leaf(
    aggregate: str,
    operator: str,
    value: Any,
    timeframe: str = "anytime",
    days: int | None = None,
    *,
    goal_type: str = "purchase",
    value_2: Any = None,
    negate: bool = False,
    **fields: Any,
) -> dict[str, Any]:
    """A ``custom_events_goals`` leaf; ``days`` is the value of a day-counting timeframe, other
    body fields (``timeframe_values``, ``goal_name``, ...) are passed as they are."""
    body: dict[str, Any] = {
        "goal_type": goal_type,
        "aggregate_operator": aggregate,
        "operator": operator,
        "value": value,
        "timeframe_operator": timeframe,
        "timeframe_values": [str(days)] if days is not None else [],
    }
    if value_2 is not None:
        body["value_2"] = value_2
    return leaf("custom_events_goals", "custom_events_goal", body | fields, negate=negate)


def event_leaf(
    event_name: str,
    count_operator: str = "at_least",
    count_value: int = 1,
    *,
    timeframe: str = "anytime",
    values: list[str] | None = None,
    properties: list[dict[str, Any]] | None = None,
    negate: bool = False,
) -> dict[str, Any]:
    """A ``custom_events`` leaf: did ``event_name`` (matching ``properties``) so many times."""
    body: dict[str, Any] = {"event_name": event_name}
    if properties is not None:
        body["properties"] = properties
    body |= {
        "count_operator": count_operator,
        "count_value": count_value,
        "timeframe_operator": timeframe,
        "timeframe_values": values or [],
    }
    return leaf("custom_events", "custom_event", body, negate=negate)


def timeline_leaf(
    kind: str, count_operator: str, count_value: int, timeframe: str = "anytime", *values: str, negate: bool = False
) -> dict[str, Any]:
    """A ``contact_timeline`` leaf (Notifuse's): entries of ``kind`` so many times, ``values`` the timeframe's."""
    body = {
        "kind": kind,
        "count_operator": count_operator,
        "count_value": count_value,
        "timeframe_operator": timeframe,
        "timeframe_values": list(values),
    }
    return leaf("contact_timeline", "contact_timeline", body, negate=negate)


def contact_leaf(field: str, operator: str, value: Any = None, *, negate: bool = False) -> dict[str, Any]:
    """A ``contacts`` leaf; ``value`` None leaves it out (``is_set``, ``is_not_set``)."""
    body: dict[str, Any] = {"field": field, "operator": operator}
    if value is not None:
        body["value"] = value
    return leaf("contacts", "contact", body, negate=negate)


def segment_leaf(slug: str, operator: str = "in_segment", *, negate: bool = False) -> dict[str, Any]:
    return leaf("segment", "segment", {"segment_id": slug, "operator": operator}, negate=negate)


def branch(operator: str, *nodes: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    node: dict[str, Any] = {"kind": "branch", "branch": {"operator": operator, "leaves": list(nodes)}}
    return negated(node) if negate else node


def all_of(*nodes: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return branch("and", *nodes, negate=negate)


def any_of(*nodes: dict[str, Any], negate: bool = False) -> dict[str, Any]:
    return branch("or", *nodes, negate=negate)


def negated(node: dict[str, Any]) -> dict[str, Any]:
    return node | {"negate": True}


# --------------------------------------------------------------------------- histories (conftest.store_history)


def contact_row(key: Any, *, created_at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A contact as ``store_history`` writes it: ``<key>@example.test``, empty names, no properties."""
    return {
        "key": key,
        "email": f"{key}@example.test",
        "external_id": "",
        "first_name": "",
        "last_name": "",
        "properties": {},
        "created_at": created_at,
    } | fields


def event_row(key: Any, occurred_at: dt.datetime, *, event_name: str = "order", **fields: Any) -> dict[str, Any]:
    """An event of contact ``key`` as ``store_history`` writes it: live, no goal unless given."""
    return {
        "contact_key": key,
        "event_name": event_name,
        "properties": {},
        "occurred_at": occurred_at,
        "goal_type": None,
        "goal_name": None,
        "goal_value": None,
        "deleted_at": None,
    } | fields


def purchase_row(key: Any, amount: str, occurred_at: dt.datetime, **fields: Any) -> dict[str, Any]:
    """A live purchase goal event worth ``amount``."""
    return event_row(key, occurred_at, **{"goal_type": "purchase", "goal_value": Decimal(amount), **fields})
