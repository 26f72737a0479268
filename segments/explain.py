"""Why one contact is in or out: each condition of a tree, its actual value and whether it held.

Pure logic like ``rules``: it builds the expressions; ``selectors.segment_explain`` evaluates
them for one contact in ONE statement (an annotated single-row query). It reuses the compiled
pieces of ``rules`` so an explanation can never disagree with the segment itself.
"""

from __future__ import annotations

import json
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import BooleanField, Case, Exists, F, JSONField, Q, Subquery, Value, When
from django.db.models.expressions import Combinable
from django.db.models.functions import Coalesce

from segments import rules


@dataclass(frozen=True)
class LeafProbe:
    """One leaf to explain: where it is, what it says, and the expressions to evaluate."""

    path: str
    negated: bool
    description: str  # ``rules.describe`` of the leaf, its own negation included
    held: Q
    values: dict[str, Combinable]
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
        if self.kind in ("events", "timeline"):
            return f"count = {value['count']}"
        if self.kind == "filters":
            return "; ".join(_filter_actual(name, value, index) for index, name in enumerate(self.field.split(",")))
        if self.kind == "segment":
            return "member" if value["member"] else "not a member"
        if self.kind == "rfm":
            return _rfm_actual(self.field, value)
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


# A probe's kind, the expressions of the leaf's actual value, and what ``actual`` needs besides.
ProbeValues = tuple[str, dict[str, Combinable], dict[str, str]]


def _money(cents: Any) -> str:
    return f"{(Decimal(cents) / 100).quantize(Decimal('0.01'))}"


def _goal_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    events = rules.goal_matches(body, context)
    values: dict[str, Combinable] = {"count": rules.count_of(events), "sum": rules.sum_cents(events)}
    if body["aggregate_operator"] in ("min", "max", "first", "last"):
        values["extreme"] = rules.goal_extreme(events, body["aggregate_operator"])
    return "goal", values, {"aggregate": body["aggregate_operator"]}


def _event_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    return "events", {"count": rules.count_of(rules.custom_event_matches(body, context))}, {}


def _contact_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    if "filters" in body:
        return _dimension_filter_values(body["filters"])
    field = body["field"]
    if not field.startswith(rules.PROPERTIES_PREFIX):
        return "contact", {"field": F(field)}, {"field": field}
    key = field[len(rules.PROPERTIES_PREFIX) :]
    if body["operator"] in rules.INSTANT_OPERATORS:
        # The stored text, and the instant it was read as (None when it holds none).
        values: dict[str, Combinable] = {
            "type": rules.JSONKey("properties", key, "type"),
            "field": rules.JSONKey("properties", key, "string"),
            "instant": rules.PropertyInstant("properties", key),
        }
        return "property_instant", values, {"field": field}
    return "contact", {"field": Coalesce(rules.JSONKey("properties", key, "string"), Value(""))}, {"field": field}


def _dimension_filter_values(filters: list[dict[str, Any]]) -> ProbeValues:
    """Each filter's field as stored: a column, or the JSON value at the property's path (its
    type, and its text or number)."""
    values: dict[str, Combinable] = {}
    names = []
    for index, item in enumerate(filters):
        name = item["field_name"]
        path = [name, *item.get("json_path", [])]
        names.append(".".join(path))
        if name in rules.vocabulary.DIMENSION_COLUMNS:
            values[f"f{index}_column"] = F(name)
            continue
        values[f"f{index}_type"] = rules.JSONKey("properties", path, "type")
        values[f"f{index}_string"] = rules.JSONKey("properties", path, "string")
        values[f"f{index}_number"] = rules.JSONKey("properties", path, "number")
    return "filters", values, {"field": ",".join(names)}


def _filter_actual(name: str, value: Mapping[str, Any], index: int) -> str:
    if f"f{index}_column" in value:
        return f"{name} = {value[f'f{index}_column']!r}"
    json_type = value[f"f{index}_type"]
    if json_type is None:
        return f"{name} is missing"
    if value[f"f{index}_string"] is not None:
        return f"{name} = {value[f'f{index}_string']!r}"
    if value[f"f{index}_number"] is not None:
        return f"{name} = {value[f'f{index}_number']}"
    return f"{name} is JSON {_JSON_TYPE_NAMES.get(json_type, json_type)}"


def _timeline_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    return "timeline", {"count": rules.count_of(rules.timeline_matches(body, context))}, {}


def _segment_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    return "segment", {"member": rules.segment_membership(body, context)}, {}


_RFM_DIMENSIONS = {"r": "recency", "f": "frequency", "m": "monetary"}
_RFM_RAW = {"recency": "recency_days", "frequency": "frequency", "monetary": "monetary_cents"}
_RFM_RAW_DIMENSION = {"recency_days": "recency", "frequency": "frequency", "monetary": "monetary"}


def _rfm_raw(dimension: str, raw: Any) -> str:
    if raw is None:
        return "no value"
    if dimension == "recency":
        return "1 day" if raw == 1 else f"{raw} days"
    if dimension == "frequency":
        return "1 order" if raw == 1 else f"{raw} orders"
    return _money(raw)


def _cut_points(dimension: str, cutpoints: Any) -> str:
    """The boundaries a score was read against: a threshold dimension's cuts, a quantile one's
    worst value per score above 1 (as of the last full run), lowest first."""
    entry = (cutpoints or {}).get(dimension) if isinstance(cutpoints, dict) else None
    if not entry:
        return "no cut points yet"
    values = entry.get("cuts") or [v for v in (entry.get("values") or [])[1:] if v is not None]
    values = sorted(set(values))
    return "cut points " + " / ".join(_rfm_raw(dimension, v).split(" ")[0] for v in values) if values else "all tied"


def _rfm_actual(field: str, value: Mapping[str, Any]) -> str:
    if not value["scored"]:
        return "not scored yet (prospect)" if field in ("group", "previous_group") else "not scored yet"
    if field == "group":
        return f"group = {value['group']}"
    if field == "previous_group":
        return f"previous group = {value['previous_group']}" if value["previous_group"] else "no previous group"
    if field == "group_changed_at":
        changed = value["group_changed_at"]
        return f"group changed {changed:%Y-%m-%d %H:%M} UTC" if changed else "group never changed"
    cutpoints = value["cutpoints"]
    if isinstance(cutpoints, str):
        cutpoints = json.loads(cutpoints)
    if field in _RFM_DIMENSIONS:
        dimension = _RFM_DIMENSIONS[field]
        if value["score"] is None:
            return f"{field}: no score ({value['group']})"
        return f"{field} = {value['score']}: {_rfm_raw(dimension, value['raw'])}; {_cut_points(dimension, cutpoints)}"
    dimension = _RFM_RAW_DIMENSION[field]
    return f"{field} = {_rfm_raw(dimension, value['raw'])}"


def _rfm_values(body: dict[str, Any], context: rules.Context) -> ProbeValues:
    scores = rules.rfm_scores(body, context)
    field = body["field"]
    dimension = _RFM_DIMENSIONS.get(field) or _RFM_RAW_DIMENSION.get(field, "frequency")
    values: dict[str, Combinable] = {
        "scored": Exists(scores),
        "group": Subquery(scores.values("group")[:1]),
        "previous_group": Subquery(scores.values("previous_group")[:1]),
        "group_changed_at": Subquery(scores.values("group_changed_at")[:1]),
        "score": Subquery(scores.values(field if field in _RFM_DIMENSIONS else "r")[:1]),
        "raw": Subquery(scores.values(_RFM_RAW[dimension])[:1]),
        "cutpoints": Subquery(scores.values("model__cutpoints")[:1], output_field=JSONField()),
    }
    return "rfm", values, {"field": field}


# One per source (``rules.vocabulary.SOURCES``).
PROBES: dict[str, Callable[[dict[str, Any], rules.Context], ProbeValues]] = {
    "custom_events_goals": _goal_values,
    "custom_events": _event_values,
    "contacts": _contact_values,
    "segment": _segment_values,
    "rfm": _rfm_values,
    "contact_timeline": _timeline_values,
}


def _probe(
    leaf: dict[str, Any], path: str, negated: bool, context: rules.Context, names: Mapping[str, str]
) -> LeafProbe:
    held = rules.compile_leaf(leaf, context)
    kind, values, extra = PROBES[leaf["source"]](leaf[rules.SOURCE_KEYS[leaf["source"]]], context)
    return LeafProbe(
        path=path,
        negated=negated,
        description=rules.describe({"kind": "leaf", "leaf": leaf, "negate": negated}, segment_names=names),
        held=~held if negated else held,
        values=values,
        kind=kind,
        **extra,
    )


def probes(
    tree: dict[str, Any],
    *,
    workspace_id: str,
    now: datetime,
    timezone_name: str,
    segment_pks: Mapping[str, int],
    segment_names: Mapping[str, str] | None = None,
) -> tuple[Q, list[LeafProbe]]:
    """The whole tree's condition and one probe per leaf (its own ``negate`` applied); a probe's
    ``description`` is ``rules.describe`` of the leaf, ``not: ...`` when negated."""
    tree = rules.validate_tree(tree)
    whole = rules.compile_tree(
        tree, workspace_id=workspace_id, now=now, timezone_name=timezone_name, segment_pks=segment_pks
    )
    context = rules.Context(
        workspace_id=workspace_id, now=now, tz=zoneinfo.ZoneInfo(timezone_name), segment_pks=segment_pks
    )
    names = segment_names or {}
    return whole, [_probe(leaf, path, negated, context, names) for leaf, path, negated in rules.iter_leaves(tree)]


def as_flag(condition: Q) -> Case:
    return Case(When(condition, then=Value(True)), default=Value(False), output_field=BooleanField())
