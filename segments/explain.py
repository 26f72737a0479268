"""Why one contact is in or out: each condition of a tree, its actual value and whether it held.

Pure logic like ``rules``: it builds the expressions; ``selectors.segment_explain`` evaluates
them for one contact in ONE statement (an annotated single-row query). It reuses the compiled
pieces of ``rules`` so an explanation can never disagree with the segment itself.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Case, Exists, Expression, F, OuterRef, Q, Value, When
from django.db.models.functions import Coalesce

from segments import rules
from segments.models import SegmentMembership

TIMEFRAME_LABELS = {
    "anytime": "at any time",
    "in_the_last_days": "in the last {0} days",
    "more_than_days_ago": "more than {0} days ago",
    "in_date_range": "between {0} and {1}",
    "before_date": "before {0}",
    "after_date": "after {0}",
}
COMPARISON_LABELS = {
    "gte": "at least",
    "gt": "more than",
    "lte": "at most",
    "lt": "less than",
    "eq": "exactly",
    "neq": "not",
    "between": "between",
}
COUNT_LABELS = {"at_least": "at least", "at_most": "at most", "exactly": "exactly"}
AGGREGATE_LABELS = {
    "sum": "total value",
    "count": "number",
    "avg": "average value",
    "min": "smallest value",
    "max": "largest value",
    "first": "value of the first",
    "last": "value of the latest",
}


def _timeframe(body: dict[str, Any]) -> str:
    return TIMEFRAME_LABELS[body["timeframe_operator"]].format(*body.get("timeframe_values", []))


def _comparison(operator: str, value: Any, value_2: Any = None) -> str:
    if operator == "between":
        return f"between {value} and {value_2}"
    return f"{COMPARISON_LABELS[operator]} {value}"


def describe_leaf(leaf: dict[str, Any]) -> str:
    """A marketer-readable sentence for one (validated) leaf."""
    source = leaf["source"]
    body = leaf[rules.SOURCE_KEYS[source]]
    if source == "custom_events_goals":
        goal = "any goal" if body["goal_type"] == rules.ANY_GOAL_TYPE else body["goal_type"]
        names = "".join(f", {key} {body[key]}" for key in ("goal_name", "event_name") if key in body)
        what = f"{AGGREGATE_LABELS[body['aggregate_operator']]} of {goal} events{names}"
        return f"{what} {_timeframe(body)} is {_comparison(body['operator'], body['value'], body.get('value_2'))}"
    if source == "custom_events":
        filters = "".join(
            f", where {p['key']} {p['operator'].replace('_', ' ')}" + (f" {p['value']}" if "value" in p else "")
            for p in body.get("properties", [])
        )
        times = "time" if body["count_value"] == 1 else "times"
        return (
            f"did {body['event_name']}{filters} {COUNT_LABELS[body['count_operator']]} "
            f"{body['count_value']} {times} {_timeframe(body)}"
        )
    if source == "contacts":
        value = f" {body['value']}" if "value" in body else ""
        return f"contact {body['field']} {body['operator'].replace('_', ' ')}{value}"
    verb = "is" if body["operator"] == "in_segment" else "is not"
    return f"{verb} in segment {body['segment_id']}"


@dataclass(frozen=True)
class LeafProbe:
    """One leaf to explain: where it is, what it says, and the expressions to evaluate."""

    path: str
    negated: bool
    description: str
    held: Q
    values: dict[str, Expression]
    kind: str
    aggregate: str = ""
    field: str = ""

    def actual(self, value: Mapping[str, Any]) -> str:
        """The leaf's actual value for the contact, as a sentence fragment."""
        if self.kind == "goal":
            count = value["count"]
            if self.aggregate == "count":
                return f"count = {count}"
            if self.aggregate == "sum":
                return f"sum = {_money(value['sum'])}"
            if self.aggregate == "avg":
                return "no qualifying events" if not count else f"avg = {_money(Decimal(value['sum']) / count)}"
            extreme = value["extreme"]
            return "no qualifying events" if extreme is None else f"{self.aggregate} = {_money(extreme)}"
        if self.kind == "events":
            return f"count = {value['count']}"
        if self.kind == "segment":
            return "member" if value["member"] else "not a member"
        if self.kind == "property_instant":
            if value["type"] is None:
                return f"{self.field} is missing"
            if value["instant"] is not None:
                return f"{self.field} = {value['field']!r} ({value['instant'].replace('T', ' ')} UTC)"
            if value["field"] is not None:
                return f"{self.field} = {value['field']!r} (not a UTC date or date-time)"
            return f"{self.field} is JSON {_JSON_TYPE_NAMES.get(value['type'], value['type'])}, not a date"
        return f"{self.field} = {value['field']!r}"


# SQLite's json_type names, as PostgreSQL's jsonb_typeof (and JSON itself) calls them.
_JSON_TYPE_NAMES = {"integer": "number", "real": "number", "text": "string", "true": "boolean", "false": "boolean"}


def _money(cents: Any) -> str:
    return f"{(Decimal(cents) / 100).quantize(Decimal('0.01'))}"


def _probe(leaf: dict[str, Any], path: str, negated: bool, context: rules.Context) -> LeafProbe:
    source = leaf["source"]
    body = leaf[rules.SOURCE_KEYS[source]]
    held = rules.compile_leaf(leaf, context)
    values: dict[str, Expression] = {}
    extra: dict[str, str] = {}
    if source == "custom_events_goals":
        kind = "goal"
        events = rules.goal_matches(body, context)
        extra["aggregate"] = body["aggregate_operator"]
        values["count"] = rules.count_of(events)
        values["sum"] = rules.sum_cents(events)
        if body["aggregate_operator"] in ("min", "max", "first", "last"):
            values["extreme"] = rules.goal_extreme(events, body["aggregate_operator"])
    elif source == "custom_events":
        kind = "events"
        values["count"] = rules.count_of(rules.custom_event_matches(body, context))
    elif source == "segment":
        kind = "segment"
        pk = context.segment_pks[body["segment_id"]]
        values["member"] = Exists(SegmentMembership.objects.filter(segment_id=pk, contact_id=OuterRef("pk")))
    else:
        kind = "contact"
        field = body["field"]
        extra["field"] = field
        if field.startswith(rules.PROPERTIES_PREFIX) and body["operator"] in rules.INSTANT_OPERATORS:
            # The stored text, and the instant it was read as (None when it holds none).
            kind = "property_instant"
            key = field[len(rules.PROPERTIES_PREFIX) :]
            values["type"] = rules.JSONKey("properties", key, "type")
            values["field"] = rules.JSONKey("properties", key, "string")
            values["instant"] = rules.PropertyInstant("properties", key)
        elif field.startswith(rules.PROPERTIES_PREFIX):
            key = field[len(rules.PROPERTIES_PREFIX) :]
            values["field"] = Coalesce(rules.JSONKey("properties", key, "string"), Value(""))
        else:
            values["field"] = F(field)
    return LeafProbe(
        path=path,
        negated=negated,
        description=describe_leaf(leaf),
        held=~held if negated else held,
        values=values,
        kind=kind,
        **extra,
    )


def iter_leaves(node: dict[str, Any], path: str = "tree", negated: bool = False) -> Iterator[tuple[dict, str, bool]]:
    negated = negated ^ bool(node.get("negate"))
    if node["kind"] == "branch":
        for index, child in enumerate(node["branch"]["leaves"]):
            yield from iter_leaves(child, f"{path}.branch.leaves[{index}]", negated)
    else:
        yield node["leaf"], path, bool(node.get("negate"))


def probes(
    tree: dict[str, Any], *, workspace_id: str, now: datetime, timezone_name: str, segment_pks: Mapping[str, int]
) -> tuple[Q, list[LeafProbe]]:
    """The whole tree's condition and one probe per leaf (its own ``negate`` applied)."""
    tree = rules.validate_tree(tree)
    whole = rules.compile_tree(
        tree, workspace_id=workspace_id, now=now, timezone_name=timezone_name, segment_pks=segment_pks
    )
    context = rules.Context(
        workspace_id=workspace_id, now=now, tz=zoneinfo.ZoneInfo(timezone_name), segment_pks=segment_pks
    )
    return whole, [_probe(leaf, path, negated, context) for leaf, path, negated in iter_leaves(tree)]


def as_flag(condition: Q) -> Case:
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())
