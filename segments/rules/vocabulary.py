"""The words of the rule language, each written once: which sources, operators and contact
fields exist, how many values each operator takes and of what kind, and how a person reads it.

Validation checks names and arities against these tables, the builder offers them as its
choices, the OpenAPI schema lists them as enums, and ``describe`` says a condition in words
for the builder, the segment page and explain alike. What an operator *means* (its SQL, its
oracle) is not here: ``compile`` and the tests' oracle implement each name listed here.

A word has two forms: ``label``, the choice a marketer picks ("at least"), and ``phrase``, the
same word in a sentence with its values as ``{0}`` / ``{1}`` ("at least {0}").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from contacts.models import GoalType


@dataclass(frozen=True)
class Operator:
    """An operator: ``arity`` values of kind ``takes`` follow it.

    Kinds: ``days`` (a whole number of days), ``date`` (a date or an RFC 3339 date-time),
    ``amount`` (money), ``count`` (a whole number), ``number`` (a JSON number), ``text``
    (non-empty text), ``value`` (a text or a number, compared as JSON), ``""`` (nothing).
    """

    label: str
    phrase: str
    arity: int = 1
    takes: str = ""


@dataclass(frozen=True)
class Source:
    """A kind of leaf: ``key`` names its body in the leaf (``{"source": name, key: {...}}``)."""

    key: str
    label: str


@dataclass(frozen=True)
class ContactField:
    """A contact field a ``contacts`` leaf compares; ``may_be_empty``: the column is ``""`` when
    unknown, so comparing it with an empty value means something."""

    label: str
    phrase: str
    operators: tuple[str, ...]
    may_be_empty: bool = False


# --------------------------------------------------------------------------- the tree

SOURCES: dict[str, Source] = {
    "custom_events_goals": Source("custom_events_goal", "Goal"),
    "custom_events": Source("custom_event", "Event"),
    "contacts": Source("contact", "Contact field"),
    "segment": Source("segment", "Segment"),
    "rfm": Source("rfm", "RFM"),
    "contact_timeline": Source("contact_timeline", "Timeline entries"),
}
SOURCE_KEYS = {name: source.key for name, source in SOURCES.items()}

BRANCHES: dict[str, Operator] = {
    "and": Operator("ALL", "all of ({0})"),
    "or": Operator("ANY", "any of ({0})"),
}
BRANCH_OPERATORS = tuple(BRANCHES)
NEGATED = "not: {0}"
CONDITION_SEPARATOR = "; "

# --------------------------------------------------------------------------- goals

ANY_GOAL_TYPE = "*"
GOAL_TYPES: dict[str, str] = {**dict(GoalType.choices), ANY_GOAL_TYPE: "Any goal type"}
GOAL_EVENTS = "{0} events"
ANY_GOAL_EVENTS = "goal events"
GOAL_NAME = "goal name {0}"
EVENT_NAME = "event {0}"

AGGREGATES: dict[str, Operator] = {
    "sum": Operator("Total value", "total value of {0}", takes="amount"),
    "count": Operator("Number", "number of {0}", takes="count"),
    "avg": Operator("Average value", "average value of {0}", takes="amount"),
    "min": Operator("Smallest value", "smallest value of {0}", takes="amount"),
    "max": Operator("Largest value", "largest value of {0}", takes="amount"),
    "first": Operator("First value", "first value of {0}", takes="amount"),
    "last": Operator("Latest value", "latest value of {0}", takes="amount"),
}
AGGREGATE_OPERATORS = tuple(AGGREGATES)

# The value kind of a comparison is the aggregate's (goals) or the field's (contacts).
COMPARISONS: dict[str, Operator] = {
    "gte": Operator("is at least", "is at least {0}"),
    "lte": Operator("is at most", "is at most {0}"),
    "eq": Operator("is exactly", "is exactly {0}"),
    "between": Operator("is between", "is between {0} and {1}", arity=2),
    "gt": Operator("is more than", "is more than {0}"),
    "lt": Operator("is less than", "is less than {0}"),
    "neq": Operator("is not", "is not {0}"),
}
COMPARISON_OPERATORS = tuple(COMPARISONS)

TIMEFRAMES: dict[str, Operator] = {
    # Said by leaving the timeframe out: "number of purchase events is at least 5".
    "anytime": Operator("at any time", "", arity=0),
    "in_the_last_days": Operator("in the last … days", "in the last {0}", takes="days"),
    "in_date_range": Operator("between two dates", "between {0} and {1}", arity=2, takes="date"),
    "before_date": Operator("before a date", "before {0}", takes="date"),
    "after_date": Operator("after a date", "after {0}", takes="date"),
    "more_than_days_ago": Operator("more than … days ago", "more than {0} ago", takes="days"),
}
TIMEFRAME_OPERATORS = tuple(TIMEFRAMES)
# Counted back from now: membership changes with time alone.
RELATIVE_TIMEFRAME_OPERATORS = frozenset(name for name, word in TIMEFRAMES.items() if word.takes == "days")

# --------------------------------------------------------------------------- events

IS = Operator("is", "is {0}", takes="value")
IS_NOT = Operator("is not", "is not {0}", takes="value")
PROPERTY_FILTERS: dict[str, Operator] = {
    "equals": IS,
    "not_equals": IS_NOT,
    "exists": Operator("is present", "is present", arity=0),
}
PROPERTY_FILTER_OPERATORS = tuple(PROPERTY_FILTERS)
DID_EVENT = "did {0}"
WHERE = "where {0}"
PROPERTY_FILTER_SEPARATOR = " and "

COUNTS: dict[str, Operator] = {
    "at_least": Operator("at least", "at least {0}", takes="count"),
    "at_most": Operator("at most", "at most {0}", takes="count"),
    "exactly": Operator("exactly", "exactly {0}", takes="count"),
}
COUNT_OPERATORS = tuple(COUNTS)
ONCE, TIMES = "once", "{0} times"

# --------------------------------------------------------------------------- contacts

CONTACT_OPERATORS_BY_NAME: dict[str, Operator] = {
    "equals": IS,
    "not_equals": IS_NOT,
    "contains": Operator("contains", "contains {0}", takes="text"),
    "not_contains": Operator("does not contain", "does not contain {0}", takes="text"),
    "is_set": Operator("is set", "is set", arity=0),
    "is_not_set": Operator("is not set", "is not set", arity=0),
    "before": Operator("is before", "is before {0}", takes="date"),
    "after": Operator("is after", "is after {0}", takes="date"),
    "in_the_last_days": Operator("is in the last … days", "is in the last {0}", takes="days"),
    **{name: dataclasses.replace(COMPARISONS[name], takes="number") for name in ("gt", "gte", "lt", "lte")},
}
TEXT_FIELD_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set")
# The date operators, on created_at and on contact properties.
INSTANT_OPERATORS = ("before", "after", "in_the_last_days")
PROPERTIES_PREFIX = "properties."
CONTACT_FIELDS: dict[str, ContactField] = {
    "email": ContactField("Email", "email", TEXT_FIELD_OPERATORS),
    "external_id": ContactField("External id", "external id", TEXT_FIELD_OPERATORS, may_be_empty=True),
    "first_name": ContactField("First name", "first name", TEXT_FIELD_OPERATORS, may_be_empty=True),
    "last_name": ContactField("Last name", "last name", TEXT_FIELD_OPERATORS, may_be_empty=True),
    "created_at": ContactField("Creation date", "creation date", INSTANT_OPERATORS),
    # Stands for every ``properties.<key>``.
    "properties": ContactField(
        "Property…", "property {0}", (*TEXT_FIELD_OPERATORS, "gt", "gte", "lt", "lte", *INSTANT_OPERATORS)
    ),
}
CONTACT_FIELD_OPERATORS = {name: field.operators for name, field in CONTACT_FIELDS.items()}
CONTACT_OPERATORS = tuple(dict.fromkeys(name for field in CONTACT_FIELDS.values() for name in field.operators))
CONTACT = "contact {0} {1}"

# --------------------------------------------------------------------------- contacts: Notifuse's dimension filters
#
# The other spelling of a ``contacts`` leaf, ``{"filters": [DimensionFilter, ...]}`` (ANDed):
# Notifuse's field names, types and operators. Fields that are not our columns are contact
# properties of the same name (``phone`` is ``properties.phone``).

DIMENSION_COLUMNS = frozenset({"email", "external_id", "first_name", "last_name", "created_at", "updated_at"})
DIMENSION_FIELD_TYPES: dict[str, str] = {
    **dict.fromkeys(
        [
            "email",
            "external_id",
            "timezone",
            "language",
            "first_name",
            "last_name",
            "phone",
            "address_line_1",
            "address_line_2",
            "country",
            "postcode",
            "state",
            "job_title",
            *(f"custom_string_{n}" for n in range(1, 6)),
        ],
        "string",
    ),
    **{f"custom_number_{n}": "number" for n in range(1, 6)},
    **dict.fromkeys(["created_at", "updated_at", *(f"custom_datetime_{n}" for n in range(1, 6))], "time"),
    **{f"custom_json_{n}": "json" for n in range(1, 6)},
}
DIMENSION_TYPES = ("string", "number", "time", "json")
DIMENSION_OPERATORS: dict[str, Operator] = {
    "equals": IS,
    "not_equals": IS_NOT,
    # Several values are alternatives (ORed), for not_contains too, as in Notifuse.
    "contains": CONTACT_OPERATORS_BY_NAME["contains"],
    "not_contains": CONTACT_OPERATORS_BY_NAME["not_contains"],
    **{name: dataclasses.replace(COMPARISONS[name], takes="number") for name in ("gt", "gte", "lt", "lte")},
    "is_set": CONTACT_OPERATORS_BY_NAME["is_set"],
    "is_not_set": CONTACT_OPERATORS_BY_NAME["is_not_set"],
    "before_date": Operator("is before", "is before {0}", takes="date"),
    "after_date": Operator("is after", "is after {0}", takes="date"),
    "in_date_range": Operator("is between", "is between {0} and {1}", arity=2, takes="date"),
    "not_in_date_range": Operator("is not between", "is not between {0} and {1}", arity=2, takes="date"),
    "in_the_last_days": CONTACT_OPERATORS_BY_NAME["in_the_last_days"],
    "in_array": Operator("holds", "holds {0}", takes="text"),
}
DIMENSION_OPERATOR_NAMES = tuple(DIMENSION_OPERATORS)
# Operators taking one or more alternative values; the others take exactly their arity.
DIMENSION_ANY_OF = frozenset({"contains", "not_contains"})
# Which operators each field_type takes. A custom_json field's field_type is the type of the
# value at its json_path (the console sends string, number or time there; json reads as string).
DIMENSION_TYPE_OPERATORS: dict[str, tuple[str, ...]] = {
    "string": ("equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set"),
    "number": ("equals", "not_equals", "gt", "gte", "lt", "lte", "is_set", "is_not_set"),
    "time": (
        "is_set",
        "is_not_set",
        "before_date",
        "after_date",
        "in_date_range",
        "not_in_date_range",
        "in_the_last_days",
    ),
    "json": ("equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set", "in_array"),
}
JSON_VALUE_OPERATORS: dict[str, tuple[str, ...]] = {
    "string": DIMENSION_TYPE_OPERATORS["json"],
    "json": DIMENSION_TYPE_OPERATORS["json"],
    "number": DIMENSION_TYPE_OPERATORS["number"],
    "time": ("is_set", "is_not_set"),
}
DIMENSION_FILTER_SEPARATOR = " and "
ANY_OF_SEPARATOR = " or "
JSON_PATH = "{0} at {1}"

# --------------------------------------------------------------------------- contact timeline
#
# Notifuse's ``contact_timeline`` leaf: how many timeline entries of one kind the contact has.

TIMELINE_TIMEFRAME_OPERATORS = ("anytime", "in_the_last_days", "in_date_range", "before_date", "after_date")
# Kinds whose entries carry a template; ``template_id`` is allowed with these only.
EMAIL_KINDS = frozenset(
    {"open_email", "click_email", "bounce_email", "complain_email", "unsubscribe_email", "insert_message_history"}
)
TIMELINE_HAS = "has timeline entries {0}"
TIMELINE_TEMPLATE = "template {0}"

# --------------------------------------------------------------------------- segments

SEGMENTS: dict[str, Operator] = {
    "in_segment": Operator("is in", "in segment {0}"),
    "not_in_segment": Operator("is not in", "not in segment {0}"),
}
SEGMENT_OPERATORS = tuple(SEGMENTS)


# --------------------------------------------------------------------------- rfm

GROUP_MEMBERSHIP: dict[str, Operator] = {
    "in": Operator("is one of", "is one of {0}", takes="groups"),
    "not_in": Operator("is none of", "is none of {0}", takes="groups"),
}
RFM_GROUP_OPERATORS = tuple(GROUP_MEMBERSHIP)
RFM_SCORE_OPERATORS = ("eq", "gte", "lte", "between")


@dataclass(frozen=True)
class RfmField:
    """A stored RFM fact an ``rfm`` leaf compares: ``takes`` is the kind of its values."""

    label: str
    phrase: str
    operators: tuple[str, ...]
    takes: str


RFM_FIELDS: dict[str, RfmField] = {
    "group": RfmField("Group", "RFM group", RFM_GROUP_OPERATORS, "groups"),
    "previous_group": RfmField("Previous group", "previous RFM group", RFM_GROUP_OPERATORS, "groups"),
    "r": RfmField("R score", "R score", RFM_SCORE_OPERATORS, "count"),
    "f": RfmField("F score", "F score", RFM_SCORE_OPERATORS, "count"),
    "m": RfmField("M score", "M score", RFM_SCORE_OPERATORS, "count"),
    "recency_days": RfmField("Days since last order", "days since the last order", COMPARISON_OPERATORS, "count"),
    "frequency": RfmField("Orders", "number of orders", COMPARISON_OPERATORS, "count"),
    "monetary": RfmField("Net revenue", "net revenue", COMPARISON_OPERATORS, "amount"),
    # Its timeframe is the leaf's timeframe_operator / timeframe_values, as on goal and event leaves.
    "group_changed_at": RfmField("Group changed", "RFM group changed", (), "timeframe"),
}
RFM_FIELD_OPERATORS = {name: field.operators for name, field in RFM_FIELDS.items()}
RFM = "{0} ({1}) {2}"


def choices(words: Mapping[str, Operator | Source | ContactField | RfmField]) -> list[tuple[str, str]]:
    """``(name, label)`` pairs, in the table's order: a builder select's options."""
    return [(name, word.label) for name, word in words.items()]


def contact_field_family(field: str) -> str:
    """The ``CONTACT_FIELDS`` entry of a field name (every ``properties.<key>`` is ``properties``)."""
    return "properties" if field.startswith(PROPERTIES_PREFIX) else field


# --------------------------------------------------------------------------- describe


def describe(node: Mapping[str, Any], *, segment_names: Mapping[str, str] | None = None) -> str:
    """A validated node in words, as every page says it: ``total value of purchase events in the
    last 60 days is at least 1,000.00``. Sentences start in lower case (pages capitalise them);
    a group is ``all of (...; ...)``, a negated node ``not: ...``; a segment is named by
    ``segment_names[slug]`` when given, else by its slug."""
    names = segment_names or {}
    if node["kind"] == "branch":
        branch = node["branch"]
        inner = CONDITION_SEPARATOR.join(describe(child, segment_names=names) for child in branch["leaves"])
        text = BRANCHES[branch["operator"]].phrase.format(inner)
    else:
        leaf = node["leaf"]
        text = LEAF_PHRASES[leaf["source"]](leaf[SOURCE_KEYS[leaf["source"]]], names)
    return NEGATED.format(text) if node.get("negate") else text


def say(word: Operator, values: list[Any] | tuple[Any, ...] = (), takes: str | None = None) -> str:
    """An operator with its values, each written as its kind is read (``takes`` overrides the
    operator's own kind, for comparisons whose values are the aggregate's or the field's)."""
    kind = word.takes if takes is None else takes
    return word.phrase.format(*(say_value(value, kind) for value in values))


def say_value(value: Any, kind: str) -> str:
    """One value as a person reads it: money with cents, numbers with thousands separators,
    days counted, texts in quotes (so the text "5" and the number 5 read differently)."""
    if kind == "amount":
        return f"{Decimal(str(value)):,.2f}"
    if kind == "days":
        days = int(value)
        return f"{days:,} day" if days == 1 else f"{days:,} days"
    if kind in ("text", "value") and isinstance(value, str):
        return f"“{value}”"
    if kind in ("count", "number", "value") and isinstance(value, int | float):
        return f"{value:,}"
    return str(value)


def _words(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def _times(count: int) -> str:
    return ONCE if count == 1 else TIMES.format(f"{count:,}")


def _goal_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    goal_type = body["goal_type"]
    events = ANY_GOAL_EVENTS if goal_type == ANY_GOAL_TYPE else GOAL_EVENTS.format(GOAL_TYPES[goal_type].lower())
    only = [GOAL_NAME.format(say_value(body["goal_name"], "text"))] if "goal_name" in body else []
    only += [EVENT_NAME.format(body["event_name"])] if "event_name" in body else []
    if only:
        events += f" ({', '.join(only)})"
    aggregate = AGGREGATES[body["aggregate_operator"]]
    comparison = COMPARISONS[body["operator"]]
    values = [body["value"], body["value_2"]] if comparison.arity == 2 else [body["value"]]
    return _words(
        aggregate.phrase.format(events), _timeframe_phrase(body), say(comparison, values, takes=aggregate.takes)
    )


def _timeframe_phrase(body: Mapping[str, Any]) -> str:
    return say(TIMEFRAMES[body["timeframe_operator"]], body.get("timeframe_values", []))


def _event_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    event = DID_EVENT.format(body["event_name"])
    filters = [
        f"{item['key']} {say(PROPERTY_FILTERS[item['operator']], [item['value']] if 'value' in item else [])}"
        for item in body.get("properties", [])
    ]
    if filters:
        event += f" ({WHERE.format(PROPERTY_FILTER_SEPARATOR.join(filters))})"
    count = COUNTS[body["count_operator"]].phrase.format(_times(body["count_value"]))
    return _words(event, count, _timeframe_phrase(body))


def _contact_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    if "filters" in body:
        return DIMENSION_FILTER_SEPARATOR.join(_dimension_filter_phrase(item) for item in body["filters"])
    name = body["field"]
    field = CONTACT_FIELDS[contact_field_family(name)]
    subject = field.phrase.format(name.removeprefix(PROPERTIES_PREFIX))
    operator = CONTACT_OPERATORS_BY_NAME[body["operator"]]
    return CONTACT.format(subject, say(operator, [body["value"]] if "value" in body else []))


def _segment_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    slug = body["segment_id"]
    return SEGMENTS[body["operator"]].phrase.format(say_value(names[slug], "text") if slug in names else slug)


def _rfm_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    field = RFM_FIELDS[body["field"]]
    if field.takes == "groups":
        said = GROUP_MEMBERSHIP[body["operator"]].phrase.format(", ".join(body["values"]))
    elif field.takes == "timeframe":
        said = _timeframe_phrase(body) or TIMEFRAMES["anytime"].label
    else:
        comparison = COMPARISONS[body["operator"]]
        values = [body["value"], body["value_2"]] if comparison.arity == 2 else [body["value"]]
        said = say(comparison, values, takes=field.takes)
    return RFM.format(field.phrase, body["model"], said)


def _dimension_filter_phrase(item: Mapping[str, Any]) -> str:
    name = item["field_name"]
    subject = CONTACT_FIELDS[name].phrase if name in CONTACT_FIELDS else name
    if item.get("json_path"):
        subject = JSON_PATH.format(subject, ".".join(item["json_path"]))
    operator = DIMENSION_OPERATORS[item["operator"]]
    values = item.get("number_values") or item.get("string_values") or []
    if item["operator"] == "in_the_last_days":
        values = [int(values[0])]
    if item["operator"] in DIMENSION_ANY_OF:
        kind = operator.takes
        said = operator.phrase.format(ANY_OF_SEPARATOR.join(say_value(value, kind) for value in values))
    else:
        said = say(operator, values)
    return CONTACT.format(subject, said)


def _timeline_phrase(body: Mapping[str, Any], names: Mapping[str, str]) -> str:
    kind = say_value(body["kind"], "text")
    if "template_id" in body:
        kind += f" ({TIMELINE_TEMPLATE.format(say_value(body['template_id'], 'text'))})"
    count = COUNTS[body["count_operator"]].phrase.format(_times(body["count_value"]))
    return _words(TIMELINE_HAS.format(kind), count, _timeframe_phrase(body))


LEAF_PHRASES: dict[str, Callable[[Mapping[str, Any], Mapping[str, str]], str]] = {
    "custom_events_goals": _goal_phrase,
    "custom_events": _event_phrase,
    "contacts": _contact_phrase,
    "segment": _segment_phrase,
    "rfm": _rfm_phrase,
    "contact_timeline": _timeline_phrase,
}
