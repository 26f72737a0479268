"""Compilation of a validated tree to ONE ORM condition over contacts, and the fusion of
sibling goal conditions over the same events into one grouped scan.

Pure logic: it builds expressions and runs no query. Each source's compiler (``COMPILERS``)
turns a leaf into a condition that is never SQL NULL, so ``NOT`` is the exact complement.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator as op
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    Exists,
    Expression,
    F,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    IContains,
    IsNull,
    LessThan,
    LessThanOrEqual,
)

from contacts.models import CustomEvent, TimelineEntry
from events_platform.workspaces.planning import workspace_value
from rfm.models import RfmModel, RfmScore
from segments.models import SegmentMembership

from .expressions import AggregatedValue, Cents, InCents, JSONHolds, JSONKey, PropertyInstant, instant_text
from .tree import referenced_segments
from .validation import TreeValidationError, parse_moment, validate_tree
from .vocabulary import (
    ANY_GOAL_TYPE,
    DIMENSION_ANY_OF,
    DIMENSION_COLUMNS,
    DIMENSION_FIELD_TYPES,
    INSTANT_OPERATORS,
    PROPERTIES_PREFIX,
    SOURCE_KEYS,
)


def compile_tree(
    tree: dict[str, Any],
    *,
    workspace_id: str,
    now: dt.datetime,
    timezone_name: str,
    segment_pks: Mapping[str, int],
    semi_join: bool = False,
) -> Q:
    """A ``Q`` over ``Contact`` true exactly for the contacts the tree matches (see the package docstring).

    Every aggregate is a subquery, so ``Contact.objects.filter(workspace_id=...).filter(q)`` is one
    statement. Sibling goal conditions over the same events are fused into one grouped subquery
    (see ``_compile_children``). ``semi_join`` says the ``Q`` is the whole ``WHERE`` of a query
    over the workspace's contacts (not inside a ``NOT``, an ``OR``, a ``CASE`` or a ``FILTER``):
    then fused groups in its top-level conjunction become ``id IN (... GROUP BY contact_id ...)``,
    one pass over the events for all contacts.
    Raises ``TreeValidationError`` for an invalid tree or an unresolved segment slug.
    """
    tree, context = validated_context(
        tree, workspace_id=workspace_id, now=now, timezone_name=timezone_name, segment_pks=segment_pks
    )
    # The root is the only conjunct of an implicit AND, so a fusable root is fused too.
    (condition,) = _compile_children([tree], "and", context, semi_join=semi_join)
    return condition


def validated_context(
    tree: dict[str, Any], *, workspace_id: str, now: dt.datetime, timezone_name: str, segment_pks: Mapping[str, int]
) -> tuple[dict[str, Any], Context]:
    """The normalised tree and the context to compile it in; ``TreeValidationError`` for an
    invalid tree or a segment slug missing from ``segment_pks``."""
    tree = validate_tree(tree)
    missing = sorted(referenced_segments(tree) - set(segment_pks))
    if missing:
        raise TreeValidationError({"tree": [f"Unknown segment: {slug}." for slug in missing]})
    context = Context(workspace_id=workspace_id, now=now, tz=zoneinfo.ZoneInfo(timezone_name), segment_pks=segment_pks)
    return tree, context


class Context:
    def __init__(
        self, *, workspace_id: str, now: dt.datetime, tz: zoneinfo.ZoneInfo, segment_pks: Mapping[str, int]
    ) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.workspace_id = workspace_id
        self.now = now
        self.tz = tz
        self.segment_pks = segment_pks


def _compile_node(node: dict[str, Any], context: Context, *, semi_join: bool = False) -> Q:
    negate = bool(node.get("negate"))
    if node["kind"] == "branch":
        operator = node["branch"]["operator"]
        # Children of a top-level AND are top-level conjuncts themselves; nothing under NOT or OR is.
        parts = _compile_children(
            node["branch"]["leaves"], operator, context, semi_join=semi_join and operator == "and" and not negate
        )
        q = functools.reduce(op.and_ if operator == "and" else op.or_, parts)
    else:
        q = compile_leaf(node["leaf"], context)
    # Every leaf is NULL-free, so NOT is the exact complement.
    return ~q if negate else q


# --------------------------------------------------------------------------- fused goal groups
#
# Goal leaves over the same events (same goal type, goal name and event name: the "base") that
# are siblings in a branch are evaluated together, as conditions on the aggregates of ONE
# grouped scan of the base events (each leaf's timeframe becomes a FILTER on its aggregate):
#
#     SELECT contact_id FROM events WHERE <base> GROUP BY contact_id HAVING <the leaves>
#
# A contact without base events is not in any group, and there each leaf has its value over
# zero events (sum 0, count 0, no avg/min/max), known without a query: ``holds_without_events``.
# So a group condition that is false without events matches exactly the contacts in
# ``GROUP BY ... HAVING condition``, and one that is true without events exactly those NOT in
# ``GROUP BY ... HAVING NOT condition``. In an AND, a sibling first/last leaf of the same base
# never holds without a base event either, so it too makes "in the group" a requirement.
# first/last need the earliest/latest event's own value, not an aggregate: they stay correlated.

FUSED_AGGREGATES = frozenset({"sum", "count", "avg", "min", "max"})
Base = tuple[str, str | None, str | None]


def goal_base(body: dict[str, Any]) -> Base:
    return (body["goal_type"], body.get("goal_name"), body.get("event_name"))


def _fused_base(node: dict[str, Any]) -> Base | None:
    """The base shared by every leaf of this node, if all are goal leaves that can be fused."""
    if node["kind"] == "leaf":
        leaf = node["leaf"]
        if leaf["source"] != "custom_events_goals":
            return None
        body = leaf["custom_events_goal"]
        return goal_base(body) if body["aggregate_operator"] in FUSED_AGGREGATES else None
    bases = {_fused_base(child) for child in node["branch"]["leaves"]}
    if len(bases) != 1:
        return None
    (base,) = bases
    return base


def _leaf_count(node: dict[str, Any]) -> int:
    return 1 if node["kind"] == "leaf" else sum(_leaf_count(child) for child in node["branch"]["leaves"])


def holds_without_events(node: dict[str, Any]) -> bool:
    """Whether a fusable node holds for a contact with no event of its base."""
    if node["kind"] == "branch":
        results = [holds_without_events(child) for child in node["branch"]["leaves"]]
        held = all(results) if node["branch"]["operator"] == "and" else any(results)
    else:
        body = node["leaf"]["custom_events_goal"]
        aggregate, operator = body["aggregate_operator"], body["operator"]
        if aggregate in ("sum", "count"):
            value = Decimal(str(body["value"]))
            value_2 = Decimal(str(body["value_2"])) if "value_2" in body else None
            zero = Decimal(0)
            held = {
                "gte": zero >= value,
                "gt": zero > value,
                "lte": zero <= value,
                "lt": zero < value,
                "eq": zero == value,
                "neq": zero != value,
                "between": value_2 is not None and value <= zero <= value_2,
            }[operator]
        else:
            held = False  # no value over zero events
    return not held if node.get("negate") else held


def _first_last_base(node: dict[str, Any]) -> Base | None:
    """The base of a non-negated first/last goal leaf (it holds only with a base event)."""
    if node["kind"] != "leaf" or node.get("negate") or node["leaf"]["source"] != "custom_events_goals":
        return None
    body = node["leaf"]["custom_events_goal"]
    return goal_base(body) if body["aggregate_operator"] in ("first", "last") else None


def _compile_children(children: list[dict[str, Any]], operator: str, context: Context, *, semi_join: bool) -> list[Q]:
    """One ``Q`` per child of an ``operator`` branch, same-base goal siblings fused into one ``Q``
    (placed where the first of them was; the others dropped)."""
    groups: dict[Base, list[int]] = {}
    for index, child in enumerate(children):
        base = _fused_base(child)
        if base is not None:
            groups.setdefault(base, []).append(index)
    anchored = {_first_last_base(child) for child in children} if operator == "and" else set()
    combine = op.and_ if operator == "and" else op.or_
    fused: dict[int, Q | None] = {}
    for base, indices in groups.items():
        members = [children[index] for index in indices]
        holds = [holds_without_events(member) for member in members]
        held_without_events = all(holds) if operator == "and" else any(holds)
        if base in anchored:
            held_without_events = False
        # semi_join is only ever set for the children of a top-level AND.
        one_scan_for_all = semi_join and not held_without_events
        if sum(_leaf_count(member) for member in members) < 2 and not one_scan_for_all:
            continue  # a lone correlated leaf is as cheap
        condition = functools.reduce(combine, [fused_condition(member, context) for member in members])
        events = grouped_events(base, context, per_contact=not one_scan_for_all)
        if one_scan_for_all:
            q = Q(pk__in=events.filter(condition).values("contact_id"))
        elif held_without_events:
            q = ~Q(Exists(events.filter(~condition, contact_id=OuterRef("pk"))))
        else:
            q = Q(Exists(events.filter(condition, contact_id=OuterRef("pk"))))
        fused |= dict.fromkeys(indices[1:], None)
        fused[indices[0]] = q
    parts: list[Q] = []
    child_semi_join = semi_join and operator == "and"
    for index, child in enumerate(children):
        if index not in fused:
            grouped = _timeline_semi_join(child, context) if child_semi_join else None
            parts.append(grouped or _compile_node(child, context, semi_join=child_semi_join))
        elif (fused_q := fused[index]) is not None:
            parts.append(fused_q)
    return parts


def grouped_events(base: Base, context: Context, *, per_contact: bool = False) -> QuerySet[CustomEvent, Any]:
    """The workspace's live events of this base, grouped by contact (a condition on aggregates
    filters the groups: HAVING). ``per_contact``: the caller correlates it with the outer
    contact, so the workspace is a value the planner cannot estimate (``_live_events``)."""
    goal_type, goal_name, event_name = base
    lookups: dict[str, Any] = {"goal_type__isnull": False}
    if goal_type != ANY_GOAL_TYPE:
        lookups["goal_type"] = goal_type
    if goal_name is not None:
        lookups["goal_name"] = goal_name
    if event_name is not None:
        lookups["event_name"] = event_name
    workspace = workspace_value(context.workspace_id) if per_contact else context.workspace_id
    return (
        CustomEvent.objects.filter(workspace_id=workspace, deleted_at__isnull=True, **lookups)
        .order_by()
        .values("contact_id")
        # An aggregate alias makes values() a GROUP BY without selecting anything more.
        .alias(fused_group=Count("contact_id"))
    )


def fused_condition(node: dict[str, Any], context: Context) -> Q:
    """A fusable node as a condition on its group's aggregates (never NULL, like every leaf)."""
    if node["kind"] == "branch":
        parts = [fused_condition(child, context) for child in node["branch"]["leaves"]]
        q = functools.reduce(op.and_ if node["branch"]["operator"] == "and" else op.or_, parts)
    else:
        body = node["leaf"]["custom_events_goal"]
        window = _window_q("occurred_at", body["timeframe_operator"], body["timeframe_values"], context)
        only = window if window else None
        aggregate = body["aggregate_operator"]
        # COUNT of a NOT NULL column: COUNT(*) takes no FILTER in Django; contact_id keeps the
        # scan index-only (the id column is not in the index).
        count = Count("contact_id", filter=only, output_field=BigIntegerField())
        total = Coalesce(
            InCents(Sum(AggregatedValue(F("goal_value"), skip_null=True), filter=only)),
            Value(0),
            output_field=BigIntegerField(),
        )
        extreme = None
        if aggregate in ("min", "max"):
            function = Min if aggregate == "min" else Max
            extreme = InCents(function(AggregatedValue(F("goal_value")), filter=only))
        q = _goal_condition(body, count=count, total=total, extreme=extreme)
    return ~q if node.get("negate") else q


def compile_leaf(leaf: dict[str, Any], context: Context) -> Q:
    """One validated leaf as a NULL-free condition on the outer contact (its own ``negate`` not applied)."""
    return COMPILERS[leaf["source"]](leaf[SOURCE_KEYS[leaf["source"]]], context)


def start_of_day(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz)


def _window_q(field: str, operator: str, values: list[str], context: Context) -> Q:
    """The timeframe as a condition on a datetime column (see the package docstring)."""
    if operator == "anytime":
        return Q()
    if operator == "in_the_last_days":
        return Q(**{f"{field}__gte": context.now - dt.timedelta(days=int(values[0]))})
    if operator == "more_than_days_ago":
        return Q(**{f"{field}__lt": context.now - dt.timedelta(days=int(values[0]))})
    moments = [parse_moment(v) for v in values]
    if operator == "before_date":
        (moment,) = moments
        if isinstance(moment, dt.datetime):
            return Q(**{f"{field}__lt": moment})
        return Q(**{f"{field}__lt": start_of_day(moment, context.tz)})
    if operator == "after_date":
        (moment,) = moments
        if isinstance(moment, dt.datetime):
            return Q(**{f"{field}__gt": moment})
        return Q(**{f"{field}__gte": start_of_day(moment + dt.timedelta(days=1), context.tz)})
    start, end = moments
    lower = start if isinstance(start, dt.datetime) else start_of_day(start, context.tz)
    if isinstance(end, dt.datetime):
        return Q(**{f"{field}__gte": lower, f"{field}__lte": end})
    return Q(**{f"{field}__gte": lower, f"{field}__lt": start_of_day(end + dt.timedelta(days=1), context.tz)})


def _live_events(context: Context, *filters: Q, **lookups: Any) -> QuerySet[CustomEvent, Any]:
    """The outer contact's live events; ``order_by()`` clears the model ordering, which would
    otherwise break aggregate subqueries on PostgreSQL.

    The workspace is a value the planner cannot estimate (events_platform/workspaces/planning.py):
    on statistics from before a new workspace had events, its literal id had the planner read
    each contact's events by a scan of the whole workspace's (event_ws_occurred_idx) instead of
    the contact's own (event_contact_occurred_idx)."""
    return (
        CustomEvent.objects.filter(
            *filters,
            workspace_id=workspace_value(context.workspace_id),
            contact_id=OuterRef("pk"),
            deleted_at__isnull=True,
            **lookups,
        )
        .order_by()
        .values("contact_id")
    )


def _scalar_subquery(events: QuerySet[Any, Any], expression: Expression) -> Subquery:
    return Subquery(events.annotate(agg_value=expression).values("agg_value"), output_field=BigIntegerField())


def sum_cents(events: QuerySet[CustomEvent, Any]) -> Expression:
    # A plain SQL function (not an ORM aggregate) so Django adds no GROUP BY: one row, NULL if empty.
    total = Func(Cents(F("goal_value")), function="SUM", output_field=BigIntegerField())
    return Coalesce(_scalar_subquery(events, total), Value(0), output_field=BigIntegerField())


def count_of(events: QuerySet[Any, Any]) -> Expression:
    return Coalesce(
        _scalar_subquery(events, Func(template="COUNT(*)", output_field=BigIntegerField())),
        Value(0),
        output_field=BigIntegerField(),
    )


def _compare(lhs: Any, operator: str, value: Any, value_2: Any = None) -> Q:
    """``lhs <operator> value``; ``lhs`` and the values must be non-NULL for the result to be."""
    if operator == "between":
        return Q(GreaterThanOrEqual(lhs, value)) & Q(LessThanOrEqual(lhs, value_2))
    if operator == "neq":
        return ~Q(Exact(lhs, value))
    lookup = {
        "gte": GreaterThanOrEqual,
        "gt": GreaterThan,
        "lte": LessThanOrEqual,
        "lt": LessThan,
        "eq": Exact,
    }[operator]
    return Q(lookup(lhs, value))


def _to_cents(value: int | float) -> int:
    return int(Decimal(str(value)) * 100)


def goal_matches(body: dict[str, Any], context: Context) -> QuerySet[CustomEvent, Any]:
    """The outer contact's qualifying events of a ``custom_events_goals`` leaf."""
    lookups: dict[str, Any] = {"goal_type__isnull": False}
    if body["goal_type"] != ANY_GOAL_TYPE:
        lookups["goal_type"] = body["goal_type"]
    for name in ("goal_name", "event_name"):
        if name in body:
            lookups[name] = body[name]
    window = _window_q("occurred_at", body["timeframe_operator"], body["timeframe_values"], context)
    return _live_events(context, window, **lookups)


def goal_extreme(events: QuerySet[CustomEvent, Any], aggregate: str) -> Subquery:
    """min / max / first / last goal value in cents of these events (NULL when there are none)."""
    if aggregate in ("min", "max"):
        function = "MIN" if aggregate == "min" else "MAX"
        return _scalar_subquery(events, Func(Cents(F("goal_value")), function=function))
    order = ("occurred_at", "id") if aggregate == "first" else ("-occurred_at", "-id")
    return Subquery(
        events.order_by(*order).values(agg_value=Cents(F("goal_value")))[:1], output_field=BigIntegerField()
    )


def _compile_goal(body: dict[str, Any], context: Context) -> Q:
    events = goal_matches(body, context)
    aggregate = body["aggregate_operator"]
    extreme = goal_extreme(events, aggregate) if aggregate in ("min", "max", "first", "last") else None
    return _goal_condition(body, count=count_of(events), total=sum_cents(events), extreme=extreme)


def _goal_condition(body: dict[str, Any], *, count: Any, total: Any, extreme: Any) -> Q:
    """The leaf's comparison over its qualifying events' ``count``, ``total`` (sum in cents, 0
    when none) and ``extreme`` (min/max/first/last in cents, NULL when none)."""
    aggregate, operator = body["aggregate_operator"], body["operator"]
    if aggregate == "count":
        return _compare(count, operator, body["value"], body.get("value_2"))
    value = _to_cents(body["value"])
    value_2 = _to_cents(body["value_2"]) if "value_2" in body else None
    if aggregate == "sum":
        return _compare(total, operator, value, value_2)
    if aggregate == "avg":
        # avg op v  <=>  sum op v * count, for count > 0: exact, no division.
        scaled = Value(value, output_field=BigIntegerField()) * count
        scaled_2 = Value(value_2, output_field=BigIntegerField()) * count if value_2 is not None else None
        return Q(GreaterThan(count, 0)) & _compare(total, operator, scaled, scaled_2)
    # No qualifying event: no value (NULL), never matches, and the NOT of it does. The CASE
    # reads a correlated value once where "IS NOT NULL AND ..." would evaluate it twice.
    held = When(_compare(extreme, operator, value, value_2), then=Value(True))
    return Q(Case(held, default=Value(False), output_field=BooleanField()))


def _json_is_set(field: str, key: str | list[str]) -> Q:
    kind = JSONKey(field, key, "type")
    return Q(IsNull(kind, False)) & ~Q(Exact(kind, "null"))


def _json_equals(field: str, key: str, value: str | int | float) -> Q:
    typed = JSONKey(field, key, "string" if isinstance(value, str) else "number")
    return Q(IsNull(typed, False)) & Q(Exact(typed, value))


def custom_event_matches(body: dict[str, Any], context: Context) -> QuerySet[CustomEvent, Any]:
    """The outer contact's live events that a ``custom_events`` leaf counts."""
    filters = [_window_q("occurred_at", body["timeframe_operator"], body["timeframe_values"], context)]
    for item in body.get("properties", []):
        if item["operator"] == "exists":
            filters.append(_json_is_set("properties", item["key"]))
        elif item["operator"] == "equals":
            filters.append(_json_equals("properties", item["key"], item["value"]))
        else:
            filters.append(~_json_equals("properties", item["key"], item["value"]))
    return _live_events(context, *filters, event_name=body["event_name"])


def _compile_custom_event(body: dict[str, Any], context: Context) -> Q:
    return _count_condition(custom_event_matches(body, context), body["count_operator"], body["count_value"])


# A leaf's count_operator as the comparison of its count with count_value.
COUNT_COMPARISONS = {"at_least": "gte", "at_most": "lte", "exactly": "eq"}


def _count_condition(rows: QuerySet[Any, Any], count_operator: str, count_value: int) -> Q:
    """How many of these correlated rows there are, compared (``at_least`` / ``at_most`` / ``exactly``)."""
    # "Did it at least once" / "never did it" are the common cases: EXISTS stops at the first row.
    if count_operator == "at_least" and count_value == 1:
        return Q(Exists(rows))
    if count_operator in ("at_most", "exactly") and count_value == 0:
        return ~Q(Exists(rows))
    return _compare(count_of(rows), COUNT_COMPARISONS[count_operator], count_value)


def _compile_contact(body: dict[str, Any], context: Context) -> Q:
    if "filters" in body:
        return functools.reduce(op.and_, [compile_dimension_filter(item, context) for item in body["filters"]])
    field, operator = body["field"], body["operator"]
    value: Any = body.get("value")  # its type follows from the operator (validation made sure)
    if field == "created_at":
        if operator == "in_the_last_days":
            return Q(created_at__gte=context.now - dt.timedelta(days=value))
        return _window_q("created_at", f"{operator}_date", [value], context)
    if field.startswith(PROPERTIES_PREFIX):
        key = field[len(PROPERTIES_PREFIX) :]
        if operator in INSTANT_OPERATORS:
            return _compile_contact_property_instant(key, operator, value, context)
        return _compile_contact_property(key, operator, value)
    # Text columns are NOT NULL (empty string when unknown), so plain lookups negate exactly.
    if operator == "is_set":
        return ~Q(**{field: ""})
    if operator == "is_not_set":
        return Q(**{field: ""})
    if operator in ("contains", "not_contains"):
        q = Q(**{f"{field}__icontains": value})
        return q if operator == "contains" else ~q
    q = Q(**{field: value})
    return q if operator == "equals" else ~q


def _compile_contact_property(key: str, operator: str, value: Any) -> Q:
    if operator in ("is_set", "is_not_set"):
        q = _json_is_set("properties", key)
        return q if operator == "is_set" else ~q
    if operator in ("equals", "not_equals"):
        q = _json_equals("properties", key, value)
        return q if operator == "equals" else ~q
    if operator in ("contains", "not_contains"):
        text = JSONKey("properties", key, "string")
        q = Q(IsNull(text, False)) & Q(IContains(text, value))
        return q if operator == "contains" else ~q
    number = JSONKey("properties", key, "number")
    return Q(IsNull(number, False)) & _compare(number, operator, value)


def instant_bound(operator: str, value: Any, context: Context) -> tuple[str, dt.datetime]:
    """The comparison and boundary of a date operator on a contact field (as on ``created_at``)."""
    if operator == "in_the_last_days":
        return "gte", context.now - dt.timedelta(days=int(value))
    moment = parse_moment(value)
    if operator == "before":
        return "lt", moment if isinstance(moment, dt.datetime) else start_of_day(moment, context.tz)
    if isinstance(moment, dt.datetime):
        return "gt", moment
    return "gte", start_of_day(moment + dt.timedelta(days=1), context.tz)


def _compile_contact_property_instant(key: str, operator: str, value: Any, context: Context) -> Q:
    instant = PropertyInstant("properties", key)
    try:
        comparison, bound = instant_bound(operator, value, context)
        text = instant_text(bound)
    except OverflowError:
        # A boundary past year 9999 ("after 9999-12-31") or before year 1: "~" sorts after every
        # normalised instant and "" before, so each operator keeps its meaning at the ends of time.
        comparison = {"before": "lt", "after": "gt"}[operator]
        text = "~" if str(value).startswith("9999") else ""
    return Q(IsNull(instant, False)) & _compare(instant, comparison, text)


# --------------------------------------------------------------------------- contacts: dimension filters
#
# Notifuse's semantics (see README, Segments): a filter on a field that is not set never holds,
# except ``is_not_set``; so ``not_equals`` and ``not_contains`` need the field set. Our text
# columns are "" when unknown, so there "" is "not set"; a property is set when present and not
# JSON null. Date-only values are midnight UTC.

ALWAYS = Q(pk__isnull=False)


def compile_dimension_filter(item: dict[str, Any], context: Context) -> Q:
    """One validated DimensionFilter as a NULL-free condition on the outer contact."""
    name, operator = item["field_name"], item["operator"]
    values: list[Any] = item.get("number_values") or item.get("string_values") or []
    if name in DIMENSION_COLUMNS:
        if DIMENSION_FIELD_TYPES[name] == "time":
            # created_at / updated_at: NOT NULL columns, always set.
            if operator in ("is_set", "is_not_set"):
                return ALWAYS if operator == "is_set" else ~ALWAYS
            return _dimension_time(lambda lookup, moment: Q(**{f"{name}__{lookup}": moment}), operator, values, context)
        return _dimension_text_column(name, operator, values)
    path = [name, *item.get("json_path", [])]
    is_set = _json_is_set("properties", path)
    if operator in ("is_set", "is_not_set"):
        if item.get("json_path"):
            # Notifuse: the first key of the path is present (JSON null included).
            is_set = Q(IsNull(JSONKey("properties", path[:2], "type"), False))
        return is_set if operator == "is_set" else ~is_set
    if DIMENSION_FIELD_TYPES[name] == "time":
        instant = PropertyInstant("properties", name)
        held = _dimension_time(
            lambda lookup, moment: _compare(instant, lookup, instant_text(moment)), operator, values, context
        )
        return Q(IsNull(instant, False)) & held
    if item["field_type"] == "number":
        number = JSONKey("properties", path, "number")
        comparison = "eq" if operator in ("equals", "not_equals") else operator
        held = Q(IsNull(number, False)) & _compare(number, comparison, values[0])
        return is_set & ~held if operator == "not_equals" else held
    if operator == "in_array":
        return Q(JSONHolds("properties", path, values[0]))
    text = JSONKey("properties", path, "string")
    present = Q(IsNull(text, False))
    if operator in ("equals", "not_equals"):
        held = present & Q(Exact(text, values[0]))
        return held if operator == "equals" else is_set & ~held
    contained = [present & Q(IContains(text, value)) for value in values]
    if operator == "contains":
        return functools.reduce(op.or_, contained)
    return is_set & functools.reduce(op.or_, [~held for held in contained])


def _dimension_text_column(name: str, operator: str, values: list[str]) -> Q:
    is_set = ~Q(**{name: ""})
    if operator in ("is_set", "is_not_set"):
        return is_set if operator == "is_set" else ~is_set
    if operator in ("equals", "not_equals"):
        held = Q(**{name: values[0]})
        return is_set & (held if operator == "equals" else ~held)
    assert operator in DIMENSION_ANY_OF
    contained = [Q(**{f"{name}__icontains": value}) for value in values]
    if operator == "contains":
        return is_set & functools.reduce(op.or_, contained)
    return is_set & functools.reduce(op.or_, [~held for held in contained])


def _dimension_time(compare: Callable[[str, dt.datetime], Q], operator: str, values: list[str], context: Context) -> Q:
    """A time filter; ``compare(lookup, boundary)`` compares the (non-NULL) field with a boundary."""
    if operator == "in_the_last_days":
        return compare("gt", context.now - dt.timedelta(days=int(values[0])))
    moments = [_midnight_utc(parse_moment(value)) for value in values]
    if operator == "before_date":
        return compare("lt", moments[0])
    if operator == "after_date":
        return compare("gt", moments[0])
    within = compare("gte", moments[0]) & compare("lte", moments[1])
    return within if operator == "in_date_range" else ~within


def _midnight_utc(moment: dt.date | dt.datetime) -> dt.datetime:
    if isinstance(moment, dt.datetime):
        return moment
    return dt.datetime.combine(moment, dt.time.min, tzinfo=dt.UTC)


# --------------------------------------------------------------------------- contact timeline

# This app writes its own "delete" and "restore" entries where Notifuse writes "update"; they are
# not counted (see README, Segments).
COUNTED_TIMELINE_OPERATIONS = (TimelineEntry.Operation.INSERT, TimelineEntry.Operation.UPDATE)


def _timeline_counted(body: dict[str, Any], context: Context) -> QuerySet[TimelineEntry, Any]:
    window = _window_q("created_at", body["timeframe_operator"], body["timeframe_values"], context)
    entries = TimelineEntry.objects.filter(window, kind=body["kind"], operation__in=COUNTED_TIMELINE_OPERATIONS)
    if "template_id" in body:
        # Only message entries carry a template, and this app sends no messages: none match.
        entries = entries.filter(pk__isnull=True)
    return entries.order_by()


def timeline_matches(body: dict[str, Any], context: Context) -> QuerySet[TimelineEntry, Any]:
    """The outer contact's timeline entries that a ``contact_timeline`` leaf counts."""
    return _timeline_counted(body, context).filter(contact_id=OuterRef("pk")).values("contact_id")


def _timeline_semi_join(node: dict[str, Any], context: Context) -> Q | None:
    """A top-level conjunct of a whole-workspace query that is a (non-negated) timeline leaf
    counting "at least N" (N > 1) or "exactly N" (N > 0) entries: the contacts of ONE grouped
    pass over the workspace's entries (``id IN (... GROUP BY contact_id HAVING count(*) ...)``)
    instead of a count per contact; at the default bench size "at least 3 orders" went from
    4.5 s (100k correlated counts, each reading the contact's events) to 0.8 s.

    Only a count that is false for a contact without entries can be a semi-join; "at least 1"
    stays EXISTS (PostgreSQL already runs it as one hashed semi-join), every other leaf stays
    correlated (None)."""
    if node["kind"] != "leaf" or node.get("negate") or node["leaf"]["source"] != "contact_timeline":
        return None
    body = node["leaf"]["contact_timeline"]
    operator, value = body["count_operator"], body["count_value"]
    if not ((operator == "at_least" and value > 1) or (operator == "exactly" and value > 0)):
        return None
    groups = (
        _timeline_counted(body, context)
        .filter(workspace_id=context.workspace_id)
        .values("contact_id")
        .annotate(timeline_count=Count("contact_id"))
        .filter(_compare(F("timeline_count"), COUNT_COMPARISONS[operator], value))
        .values("contact_id")
    )
    return Q(pk__in=groups)


def _compile_contact_timeline(body: dict[str, Any], context: Context) -> Q:
    return _count_condition(timeline_matches(body, context), body["count_operator"], body["count_value"])


def segment_membership(body: dict[str, Any], context: Context) -> Exists:
    """Whether the outer contact is a current member of a ``segment`` leaf's segment."""
    pk = context.segment_pks[body["segment_id"]]
    return Exists(SegmentMembership.objects.filter(segment_id=pk, contact_id=OuterRef("pk")))


def _compile_segment(body: dict[str, Any], context: Context) -> Q:
    in_segment = Q(segment_membership(body, context))
    return in_segment if body["operator"] == "in_segment" else ~in_segment


def rfm_scores(body: dict[str, Any], context: Context) -> QuerySet[RfmScore, Any]:
    """The outer contact's score row under the leaf's model (a live model of the workspace)."""
    return RfmScore.objects.filter(
        contact_id=OuterRef("pk"),
        model__workspace_id=context.workspace_id,
        model__slug=body["model"],
        model__status__in=RFM_LIVE_STATUSES,
    ).order_by()


RFM_LIVE_STATUSES = tuple(status for status in RfmModel.Status.values if status != RfmModel.Status.DELETED)
_RFM_COLUMNS = {"monetary": "monetary_cents"}


def _compile_rfm(body: dict[str, Any], context: Context) -> Q:
    """An ``rfm`` leaf: EXISTS of the contact's score row meeting the condition. A contact
    without a row (not scored yet, or no such model) is ``prospect`` with no other value, so
    ``group in [..prospect..]`` also takes the contact without a row; every branch is NULL-free."""
    name = body["field"]
    scores = rfm_scores(body, context)
    if name == "group_changed_at":
        window = _window_q("group_changed_at", body["timeframe_operator"], body["timeframe_values"], context)
        return Q(Exists(scores.filter(window, group_changed_at__isnull=False)))
    if name in ("group", "previous_group"):
        held = Q(Exists(scores.filter(**{f"{name}__in": body["values"]})))
        if name == "group" and "prospect" in body["values"]:
            held |= ~Q(Exists(scores))
        return held if body["operator"] == "in" else ~held
    column = _RFM_COLUMNS.get(name, name)
    values = [body["value"], body.get("value_2")]
    if name == "monetary":
        values = [None if v is None else int(Decimal(str(v)) * 100) for v in values]
    operator = body["operator"]
    lookups = {
        "eq": {column: values[0]},
        "gte": {f"{column}__gte": values[0]},
        "lte": {f"{column}__lte": values[0]},
        "gt": {f"{column}__gt": values[0]},
        "lt": {f"{column}__lt": values[0]},
        "between": {f"{column}__gte": values[0], f"{column}__lte": values[1]},
    }
    if operator == "neq":
        return Q(Exists(scores.filter(**{f"{column}__isnull": False}).exclude(**{column: values[0]})))
    return Q(Exists(scores.filter(**lookups[operator])))


# One compiler per source (``vocabulary.SOURCES``): the leaf's body as a condition on the contact.
COMPILERS: dict[str, Callable[[dict[str, Any], Context], Q]] = {
    "custom_events_goals": _compile_goal,
    "custom_events": _compile_custom_event,
    "contacts": _compile_contact,
    "segment": _compile_segment,
    "rfm": _compile_rfm,
    "contact_timeline": _compile_contact_timeline,
}
