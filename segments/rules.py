"""The segment rule tree: validate it, and compile it to one ORM condition over contacts.

Pure logic: nothing here runs a query. Services validate a tree before storing it; selectors
compile it and run the single statement.

Tree format (Notifuse-compatible, extended)
-------------------------------------------
A node is ``{"kind": "branch", "branch": {"operator": "and" | "or", "leaves": [node, ...]}}`` or
``{"kind": "leaf", "leaf": {"source": <source>, <source key>: {...}}}``, with an optional
``"negate": true`` on any node. Nesting is capped at ``MAX_DEPTH`` levels and ``MAX_LEAVES`` leaves.

Sources (``source`` -> key):

``custom_events_goals`` -> ``custom_events_goal``
    ``goal_type`` (a ``GoalType`` or ``"*"`` for any), optional exact ``goal_name`` / ``event_name``,
    ``aggregate_operator`` (sum count avg min max first last), ``operator`` (gt gte lt lte eq neq
    between), ``value`` and, for ``between``, ``value_2 >= value``, plus a timeframe.
``custom_events`` -> ``custom_event``
    ``event_name``, optional ``properties`` filters ``[{"key", "operator": equals | not_equals |
    exists, "value"}]``, ``count_operator`` (at_least at_most exactly), ``count_value >= 0``,
    plus a timeframe.
``contacts`` -> ``contact``
    ``field`` (email external_id first_name last_name created_at ``properties.<key>``),
    ``operator`` and ``value``; see ``CONTACT_FIELD_OPERATORS`` for which operator fits which field.
``segment`` -> ``segment``
    ``segment_id`` (another segment's slug) and ``operator`` (in_segment not_in_segment).

Semantics (the tests' oracle implements exactly this)
-----------------------------------------------------
* Only live events count (``deleted_at IS NULL``). Goal leaves see only events with a goal
  (``goal_type`` set); ``goal_type "*"`` means any goal type. An event's goal value is its
  ``goal_value``, or 0 when it has none.
* Qualifying events of a goal leaf are the contact's live goal events matching goal type, names
  and timeframe. Over them: ``sum`` (0 when there are none; refunds, i.e. negative values,
  reduce it), ``count`` (0 when none; refunds are events and count), ``avg`` = sum / count
  compared exactly (as ``sum op value * count``), ``min``/``max``, ``first``/``last`` = the value
  of the earliest/latest qualifying event by ``occurred_at``, ties broken by id. Over zero
  qualifying events ``avg min max first last`` have no value and never match, so "count eq 0"
  or "sum lte 0" match contacts without any event, while "max lt 10" does not.
* Comparisons are exact: values are compared in integer cents, so goal values and rule values
  carry at most two decimal places. Counts compare with whole numbers.
* ``negate`` is the exact complement within the workspace's contacts: every leaf compiles to a
  condition that is never SQL NULL, so ``NOT`` cannot drop rows with missing data.
* Timeframes, with ``now`` and the segment's timezone:
  ``anytime``; ``in_the_last_days N``: ``occurred_at >= now - N*24h`` (no upper bound);
  ``more_than_days_ago N``: ``occurred_at < now - N*24h``;
  ``in_date_range [a, b]``: ``a <= occurred_at <= b`` for RFC 3339 instants, a date-only ``a``
  means the start of that day and a date-only ``b`` includes that whole day
  (``< start of the next day``); ``before_date D``: strictly before (date-only: before the day
  starts); ``after_date D``: strictly after (date-only: from the start of the next day).
  Date-only values are read in the segment's timezone.
* Event property filters look at top-level JSON keys. ``equals`` matches a JSON string equal to
  a string value, or a JSON number numerically equal to a number value (``"5"`` is not ``5``,
  booleans never equal anything); ``not_equals`` is its complement (a missing key is "not
  equal"); ``exists`` means the key is present and not JSON null.
* Contact fields: text fields are never NULL; ``is_set`` means non-empty, ``contains`` is
  case-insensitive (ASCII on SQLite), ``equals`` is exact (an ``email`` value is lower-cased
  first, as stored). ``created_at`` takes ``before``/``after`` (same rules as before_date /
  after_date) and ``in_the_last_days``. ``properties.<key>``: ``is_set`` = key present and not
  JSON null; ``equals``/``not_equals`` as for event properties; ``contains``/``not_contains``
  apply to JSON strings (case-insensitive); ``gt gte lt lte`` compare JSON numbers (anything else
  does not match). ``before``/``after``/``in_the_last_days`` take the same values and boundaries
  as on ``created_at`` (date-only rule values in the segment's timezone) and compare the instant a
  property holds: a JSON string ``YYYY-MM-DD`` (midnight UTC of that day) or a UTC date-time
  ``YYYY-MM-DDTHH:MM[:SS[.f...]]`` (1-6 fraction digits, upper-case ``T``) with an optional ``Z``
  or ``+00:00`` (no suffix = UTC). It must be a real calendar instant (years 0001-9999, no
  2026-02-30, no hour 24, no leap second). Anything else (other offsets, numbers, malformed or
  impossible dates, a missing key, JSON null) never matches these operators, so their negation
  matches it.
* ``segment`` leaves read the current ``SegmentMembership`` rows of the referenced segment; the
  caller resolves slugs to primary keys (existence and cycles need the database).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import operator as op
import re
import zoneinfo
from collections.abc import Callable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    Expression,
    F,
    FloatField,
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

from contacts.models import (
    EVENT_NAME_MAX_LENGTH,
    EVENT_NAME_PATTERN,
    GOAL_NAME_MAX_LENGTH,
    CustomEvent,
    GoalType,
)
from segments.models import SEGMENT_SLUG_MAX_LENGTH, SegmentMembership

MAX_DEPTH = 20
MAX_LEAVES = 200
MAX_DAYS = 36500
MAX_PROPERTY_FILTERS = 20
MAX_TEXT_VALUE_LENGTH = 255
# Goal values are Decimal(14, 2); rule values must fit the same range to compare in cents.
MAX_ABS_AMOUNT = Decimal("1e15")

ANY_GOAL_TYPE = "*"
BRANCH_OPERATORS = ("and", "or")
AGGREGATE_OPERATORS = ("sum", "count", "avg", "min", "max", "first", "last")
COMPARISON_OPERATORS = ("gte", "lte", "eq", "between", "gt", "lt", "neq")
TIMEFRAME_OPERATORS = (
    "anytime",
    "in_the_last_days",
    "in_date_range",
    "before_date",
    "after_date",
    "more_than_days_ago",
)
RELATIVE_TIMEFRAME_OPERATORS = frozenset({"in_the_last_days", "more_than_days_ago"})
PROPERTY_FILTER_OPERATORS = ("equals", "not_equals", "exists")
COUNT_OPERATORS = ("at_least", "at_most", "exactly")
SEGMENT_OPERATORS = ("in_segment", "not_in_segment")

TEXT_FIELD_OPERATORS = ("equals", "not_equals", "contains", "not_contains", "is_set", "is_not_set")
CONTACT_FIELD_OPERATORS: dict[str, tuple[str, ...]] = {
    "email": TEXT_FIELD_OPERATORS,
    "external_id": TEXT_FIELD_OPERATORS,
    "first_name": TEXT_FIELD_OPERATORS,
    "last_name": TEXT_FIELD_OPERATORS,
    "created_at": ("before", "after", "in_the_last_days"),
    "properties": (*TEXT_FIELD_OPERATORS, "gt", "gte", "lt", "lte", "before", "after", "in_the_last_days"),
}
# The date operators, on created_at and on contact properties.
INSTANT_OPERATORS = ("before", "after", "in_the_last_days")
CONTACT_OPERATORS = tuple(dict.fromkeys(o for ops in CONTACT_FIELD_OPERATORS.values() for o in ops))
PROPERTIES_PREFIX = "properties."

SOURCE_KEYS = {
    "custom_events_goals": "custom_events_goal",
    "custom_events": "custom_event",
    "contacts": "contact",
    "segment": "segment",
}

EVENT_NAME_RE = re.compile(EVENT_NAME_PATTERN)
SEGMENT_SLUG_RE = re.compile(r"^[a-z0-9_]+$")
# Top-level JSON keys only; starting with a letter keeps PostgreSQL from reading "0" as an index.
PROPERTY_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# A contact property the date operators read (see the module docstring), calendar included, as
# one regex both databases and Python agree on: ASCII digits only, \A/\Z (not $, which Python
# lets match before a trailing newline), no casts, so bad data can never raise in SQL.
_YEAR = r"(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})"
_LEAP_YEAR = r"([0-9]{2}(0[48]|[2468][048]|[13579][26])|(0[48]|[2468][048]|[13579][26])00)"
_MONTH_DAY = r"((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)|02-(0[1-9]|1[0-9]|2[0-8]))"
PROPERTY_INSTANT_PATTERN = (
    rf"\A({_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|\+00:00)?)?\Z"
)
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

REQUIRED = "This field is required."


class TreeValidationError(ValidationError):
    """A rule tree is invalid; ``errors`` maps full dotted paths (``tree.branch.leaves[1]...``) to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(errors)


# --------------------------------------------------------------------------- validation


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)


class _Invalid(Exception):
    """One field is invalid; the message goes to that field's path."""


def validate_tree(tree: Any) -> dict[str, Any]:
    """Return the normalised tree, or raise ``TreeValidationError`` listing every problem found."""
    errors = _Errors()
    counter = {"leaves": 0}
    normalised = _validate_node(tree, "tree", 1, errors, counter)
    if counter["leaves"] > MAX_LEAVES:
        errors.add("tree", f"Too many conditions: {counter['leaves']} (at most {MAX_LEAVES}).")
    if errors.by_path:
        raise TreeValidationError(errors.by_path)
    assert normalised is not None
    return normalised


def _check_keys(data: dict[str, Any], allowed: set[str], path: str, errors: _Errors) -> None:
    for key in data:
        if key not in allowed:
            errors.add(f"{path}.{key}", "Unknown field.")


def _validate_node(node: Any, path: str, depth: int, errors: _Errors, counter: dict[str, int]) -> dict[str, Any] | None:
    if not isinstance(node, dict):
        errors.add(path, "Must be an object with a kind.")
        return None
    if depth > MAX_DEPTH:
        errors.add(path, f"Too deeply nested (at most {MAX_DEPTH} levels).")
        return None
    kind = node.get("kind")
    # The unused member may be present as null (some clients send both).
    other = {"branch": "leaf", "leaf": "branch"}.get(kind) if isinstance(kind, str) else None
    allowed = {"kind", "negate", "branch", "leaf"} if other is None else {"kind", "negate", kind}
    if other is not None and node.get(other) is not None:
        errors.add(f"{path}.{other}", f"Not allowed in a {kind} node.")
    _check_keys(node, allowed | ({other} if other else set()), path, errors)

    negate = node.get("negate", False)
    if negate is None:
        negate = False
    if not isinstance(negate, bool):
        errors.add(f"{path}.negate", "Must be true or false.")

    result: dict[str, Any] | None
    if kind == "branch":
        result = _validate_branch(node.get("branch"), f"{path}.branch", depth, errors, counter)
        normalised = {"kind": "branch", "branch": result}
    elif kind == "leaf":
        counter["leaves"] += 1
        result = _validate_leaf(node.get("leaf"), f"{path}.leaf", errors)
        normalised = {"kind": "leaf", "leaf": result}
    else:
        errors.add(f"{path}.kind", REQUIRED if kind is None else "Must be 'branch' or 'leaf'.")
        return None
    if negate is True:
        normalised["negate"] = True
    return normalised if result is not None else None


def _validate_branch(
    branch: Any, path: str, depth: int, errors: _Errors, counter: dict[str, int]
) -> dict[str, Any] | None:
    if not isinstance(branch, dict):
        errors.add(path, REQUIRED if branch is None else "Must be an object.")
        return None
    _check_keys(branch, {"operator", "leaves"}, path, errors)
    operator = branch.get("operator")
    if operator not in BRANCH_OPERATORS:
        errors.add(f"{path}.operator", REQUIRED if operator is None else "Must be 'and' or 'or'.")
    leaves = branch.get("leaves")
    if not isinstance(leaves, list) or not leaves:
        errors.add(f"{path}.leaves", "Must be a non-empty list of nodes.")
        return None
    children = [
        _validate_node(child, f"{path}.leaves[{index}]", depth + 1, errors, counter)
        for index, child in enumerate(leaves)
    ]
    if operator not in BRANCH_OPERATORS or any(child is None for child in children):
        return None
    return {"operator": operator, "leaves": children}


def _validate_leaf(leaf: Any, path: str, errors: _Errors) -> dict[str, Any] | None:
    if not isinstance(leaf, dict):
        errors.add(path, REQUIRED if leaf is None else "Must be an object.")
        return None
    source = leaf.get("source")
    if source not in SOURCE_KEYS:
        choices = ", ".join(SOURCE_KEYS)
        errors.add(f"{path}.source", REQUIRED if source is None else f"Must be one of: {choices}.")
        return None
    key = SOURCE_KEYS[source]
    # Keys of other sources are tolerated when null, like the unused member of a node.
    unknown = {k for k, v in leaf.items() if k not in {"source", key} and not (k in SOURCE_KEYS.values() and v is None)}
    for k in sorted(unknown):
        errors.add(f"{path}.{k}", "Unknown field.")
    body = leaf.get(key)
    body_path = f"{path}.{key}"
    if not isinstance(body, dict):
        errors.add(body_path, f"Required for source '{source}'." if body is None else "Must be an object.")
        return None
    validator = {
        "custom_events_goals": _validate_goal,
        "custom_events": _validate_custom_event,
        "contacts": _validate_contact,
        "segment": _validate_segment,
    }[source]
    normalised = validator(body, body_path, errors)
    if normalised is None:
        return None
    return {"source": source, key: normalised}


class _Fields:
    """Reads the fields of one leaf body, recording each problem at its path."""

    def __init__(self, body: dict[str, Any], path: str, errors: _Errors, allowed: set[str]) -> None:
        self.body = body
        self.path = path
        self.errors = errors
        self.ok = True
        _check_keys(body, allowed, path, errors)
        if any(key not in allowed for key in body):
            self.ok = False

    def get(self, name: str, parse: Callable[[Any], Any], *, required: bool = True, default: Any = None) -> Any:
        raw = self.body.get(name)
        if raw is None:
            if required:
                self.fail(name, REQUIRED)
            return default
        try:
            return parse(raw)
        except _Invalid as exc:
            self.fail(name, str(exc))
            return None

    def fail(self, name: str, message: str) -> None:
        self.ok = False
        self.errors.add(f"{self.path}.{name}" if name else self.path, message)


def _choice(choices: tuple[str, ...] | list[str]) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if raw not in choices:
            raise _Invalid(f"Must be one of: {', '.join(choices)}.")
        return str(raw)

    return parse


def _text(
    max_length: int, pattern: re.Pattern[str] | None = None, *, allow_empty: bool = False
) -> Callable[[Any], str]:
    def parse(raw: Any) -> str:
        if not isinstance(raw, str):
            raise _Invalid("Must be a string.")
        if not raw and not allow_empty:
            raise _Invalid("Must not be empty.")
        if len(raw) > max_length:
            raise _Invalid(f"At most {max_length} characters.")
        if pattern is not None and not pattern.match(raw):
            raise _Invalid(f"Must match {pattern.pattern}.")
        return raw

    return parse


def _amount(raw: Any) -> int | float:
    """A money amount: a finite number with at most two decimals, kept as a JSON number."""
    value = _decimal(raw)
    if value.as_tuple().exponent < -2 and value != value.quantize(Decimal("0.01")):  # type: ignore[operator]
        raise _Invalid("At most two decimal places.")
    return _json_number(value)


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
        raise _Invalid("Must be a number.")
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        raise _Invalid("Must be a number.") from None
    if not value.is_finite():
        raise _Invalid("Must be a finite number.")
    if abs(value) >= MAX_ABS_AMOUNT:
        raise _Invalid("Out of range.")
    return value


def _json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _number(raw: Any) -> int | float:
    return _json_number(_decimal(raw))


def _whole(minimum: int, maximum: int) -> Callable[[Any], int]:
    def parse(raw: Any) -> int:
        if isinstance(raw, bool):
            raise _Invalid("Must be a whole number.")
        if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
            raw = int(raw)
        if isinstance(raw, float) and raw.is_integer():
            raw = int(raw)
        if not isinstance(raw, int):
            raise _Invalid("Must be a whole number.")
        if not minimum <= raw <= maximum:
            raise _Invalid(f"Must be between {minimum} and {maximum}.")
        return raw

    return parse


def _scalar(raw: Any) -> str | int | float:
    if isinstance(raw, str):
        if len(raw) > MAX_TEXT_VALUE_LENGTH:
            raise _Invalid(f"At most {MAX_TEXT_VALUE_LENGTH} characters.")
        return raw
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise _Invalid("Must be a string or a number.")
    return _number(raw)


def parse_moment(raw: str) -> dt.date | dt.datetime:
    """``YYYY-MM-DD`` -> date; RFC 3339 with an offset -> aware datetime."""
    if DATE_RE.match(raw):
        return dt.date.fromisoformat(raw)
    if RFC3339_RE.match(raw):
        return dt.datetime.fromisoformat(raw.upper().replace("Z", "+00:00"))
    raise ValueError(raw)


# Rule dates are shifted by a day and read in any timezone; keeping them a year inside what
# Python can represent means no boundary computation can overflow (no segment needs more).
MOMENT_YEARS = (2, 9998)


def _moment(raw: Any) -> str:
    if not isinstance(raw, str):
        raise _Invalid("Must be a date (YYYY-MM-DD) or an RFC 3339 date-time with an offset.")
    try:
        moment = parse_moment(raw.strip())
    except ValueError:
        raise _Invalid("Must be a date (YYYY-MM-DD) or an RFC 3339 date-time with an offset.") from None
    low, high = MOMENT_YEARS
    if not low <= moment.year <= high:
        raise _Invalid(f"Must be a date between the years {low} and {high}.")
    return raw.strip()


def _validate_timeframe(fields: _Fields) -> tuple[str, list[str]] | None:
    """Validate ``timeframe_operator`` / ``timeframe_values``; return them normalised."""
    operator = fields.get("timeframe_operator", _choice(TIMEFRAME_OPERATORS), required=False, default="anytime")
    if operator is None:
        return None
    raw_values = fields.body.get("timeframe_values")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, list):
        fields.fail("timeframe_values", "Must be a list.")
        return None
    expected = {
        "anytime": 0,
        "in_the_last_days": 1,
        "more_than_days_ago": 1,
        "before_date": 1,
        "after_date": 1,
        "in_date_range": 2,
    }[operator]
    if operator == "anytime":
        # Some clients send [] or [""] with "anytime"; nothing to read either way.
        return operator, []
    if len(raw_values) != expected:
        fields.fail("timeframe_values", f"'{operator}' takes exactly {expected} value(s).")
        return None
    values: list[str] = []
    for index, raw in enumerate(raw_values):
        name = f"timeframe_values[{index}]"
        try:
            if operator in RELATIVE_TIMEFRAME_OPERATORS:
                values.append(str(_whole(1, MAX_DAYS)(raw)))
            else:
                values.append(_moment(raw))
        except _Invalid as exc:
            fields.fail(name, str(exc))
    if len(values) != expected:
        return None
    if operator == "in_date_range":
        # Compared in UTC here; the segment's timezone shifts both ends alike.
        start, end = (_as_utc_bounds(parse_moment(v)) for v in values)
        if end[1] < start[0]:
            fields.fail("timeframe_values[1]", "The end of the range must not be before its start.")
            return None
    return operator, values


def _as_utc_bounds(moment: dt.date | dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    if isinstance(moment, dt.datetime):
        return moment, moment
    start = dt.datetime.combine(moment, dt.time.min, tzinfo=dt.UTC)
    return start, start + dt.timedelta(days=1)


def _validate_goal(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(
        body,
        path,
        errors,
        {
            "goal_type",
            "goal_name",
            "event_name",
            "aggregate_operator",
            "operator",
            "value",
            "value_2",
            "timeframe_operator",
            "timeframe_values",
        },
    )
    goal_type = fields.get("goal_type", _choice([*GoalType.values, ANY_GOAL_TYPE]))
    goal_name = fields.get("goal_name", _text(GOAL_NAME_MAX_LENGTH), required=False)
    event_name = fields.get("event_name", _text(EVENT_NAME_MAX_LENGTH, EVENT_NAME_RE), required=False)
    aggregate = fields.get("aggregate_operator", _choice(AGGREGATE_OPERATORS))
    operator = fields.get("operator", _choice(COMPARISON_OPERATORS))
    parse_value = _count_value if aggregate == "count" else _amount
    value = fields.get("value", parse_value)
    value_2 = None
    if operator == "between":
        value_2 = fields.get("value_2", parse_value)
        if value is not None and value_2 is not None and Decimal(str(value_2)) < Decimal(str(value)):
            fields.fail("value_2", "Must be greater than or equal to value.")
    timeframe = _validate_timeframe(fields)
    if not fields.ok or timeframe is None:
        return None
    normalised: dict[str, Any] = {"goal_type": goal_type}
    if goal_name is not None:
        normalised["goal_name"] = goal_name
    if event_name is not None:
        normalised["event_name"] = event_name
    normalised |= {"aggregate_operator": aggregate, "operator": operator, "value": value}
    if operator == "between":
        normalised["value_2"] = value_2
    normalised |= {"timeframe_operator": timeframe[0], "timeframe_values": timeframe[1]}
    return normalised


def _count_value(raw: Any) -> int:
    try:
        return _whole(-(10**12), 10**12)(raw)
    except _Invalid:
        raise _Invalid("Counts compare with whole numbers.") from None


def _validate_property_filters(fields: _Fields) -> list[dict[str, Any]] | None:
    raw = fields.body.get("properties")
    if raw is None:
        return []
    if not isinstance(raw, list):
        fields.fail("properties", "Must be a list of filters.")
        return None
    if len(raw) > MAX_PROPERTY_FILTERS:
        fields.fail("properties", f"At most {MAX_PROPERTY_FILTERS} filters.")
        return None
    filters: list[dict[str, Any]] = []
    for index, item in enumerate(raw):
        item_path = f"{fields.path}.properties[{index}]"
        if not isinstance(item, dict):
            fields.fail(f"properties[{index}]", "Must be an object with key, operator and value.")
            continue
        item_fields = _Fields(item, item_path, fields.errors, {"key", "operator", "value"})
        key = item_fields.get("key", _property_key)
        operator = item_fields.get("operator", _choice(PROPERTY_FILTER_OPERATORS))
        value = None
        if operator in ("equals", "not_equals"):
            value = item_fields.get("value", _scalar)
        if not item_fields.ok:
            fields.ok = False
            continue
        normalised = {"key": key, "operator": operator}
        if operator != "exists":
            normalised["value"] = value
        filters.append(normalised)
    return filters if fields.ok else None


def _property_key(raw: Any) -> str:
    if not isinstance(raw, str) or not PROPERTY_KEY_RE.match(raw):
        raise _Invalid("Must be a top-level property name: a letter or _, then letters, digits, _ or - (at most 100).")
    return raw


def _validate_custom_event(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(
        body,
        path,
        errors,
        {"event_name", "properties", "count_operator", "count_value", "timeframe_operator", "timeframe_values"},
    )
    event_name = fields.get("event_name", _text(EVENT_NAME_MAX_LENGTH, EVENT_NAME_RE))
    filters = _validate_property_filters(fields)
    count_operator = fields.get("count_operator", _choice(COUNT_OPERATORS))
    count_value = fields.get("count_value", _whole(0, 10**12))
    timeframe = _validate_timeframe(fields)
    if not fields.ok or timeframe is None or filters is None:
        return None
    normalised: dict[str, Any] = {"event_name": event_name}
    if filters:
        normalised["properties"] = filters
    return normalised | {
        "count_operator": count_operator,
        "count_value": count_value,
        "timeframe_operator": timeframe[0],
        "timeframe_values": timeframe[1],
    }


def _validate_contact(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(body, path, errors, {"field", "operator", "value"})
    field = fields.get("field", _contact_field)
    operator = fields.get("operator", _choice(CONTACT_OPERATORS))
    if field is None or operator is None:
        return None
    family = "properties" if field.startswith(PROPERTIES_PREFIX) else field
    if operator not in CONTACT_FIELD_OPERATORS[family]:
        fields.fail("operator", f"'{field}' takes one of: {', '.join(CONTACT_FIELD_OPERATORS[family])}.")
        return None
    value: Any = None
    if operator in ("is_set", "is_not_set"):
        pass
    elif operator == "in_the_last_days":
        value = fields.get("value", _whole(1, MAX_DAYS))
    elif operator in ("before", "after"):
        value = fields.get("value", _moment)
    elif operator in ("gt", "gte", "lt", "lte"):
        value = fields.get("value", _number)
    elif operator in ("contains", "not_contains"):
        value = fields.get("value", _text(MAX_TEXT_VALUE_LENGTH))
    elif family == "properties":
        value = fields.get("value", _scalar)
    else:
        value = fields.get("value", _text(MAX_TEXT_VALUE_LENGTH, allow_empty=True))
        if field == "email" and value is not None:
            value = value.strip().lower()
    if not fields.ok:
        return None
    normalised: dict[str, Any] = {"field": field, "operator": operator}
    if operator not in ("is_set", "is_not_set"):
        normalised["value"] = value
    return normalised


def _contact_field(raw: Any) -> str:
    if isinstance(raw, str) and raw.startswith(PROPERTIES_PREFIX):
        _property_key(raw[len(PROPERTIES_PREFIX) :])
        return raw
    if raw not in CONTACT_FIELD_OPERATORS or raw == "properties":
        fields = ", ".join(f for f in CONTACT_FIELD_OPERATORS if f != "properties")
        raise _Invalid(f"Must be one of: {fields}, or properties.<key>.")
    return str(raw)


def _validate_segment(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(body, path, errors, {"segment_id", "operator"})
    segment_id = fields.get("segment_id", _text(SEGMENT_SLUG_MAX_LENGTH, SEGMENT_SLUG_RE))
    operator = fields.get("operator", _choice(SEGMENT_OPERATORS))
    if not fields.ok:
        return None
    return {"segment_id": segment_id, "operator": operator}


# --------------------------------------------------------------------------- tree facts


def _iter_leaves(node: dict[str, Any]) -> Any:
    if node["kind"] == "branch":
        for child in node["branch"]["leaves"]:
            yield from _iter_leaves(child)
    else:
        yield node["leaf"]


def referenced_segments(tree: dict[str, Any]) -> set[str]:
    """Slugs of the segments a (validated) tree refers to."""
    return {leaf["segment"]["segment_id"] for leaf in _iter_leaves(tree) if leaf["source"] == "segment"}


def has_relative_timeframe(tree: dict[str, Any]) -> bool:
    """Whether membership can change with time alone (so the segment needs scheduled rebuilds)."""
    for leaf in _iter_leaves(tree):
        body = leaf[SOURCE_KEYS[leaf["source"]]]
        if body.get("timeframe_operator") in RELATIVE_TIMEFRAME_OPERATORS:
            return True
        if leaf["source"] == "contacts" and body["operator"] == "in_the_last_days":
            return True
    return False


# --------------------------------------------------------------------------- compilation


def compile_tree(
    tree: dict[str, Any],
    *,
    workspace_id: str,
    now: dt.datetime,
    timezone_name: str,
    segment_pks: Mapping[str, int],
    semi_join: bool = False,
) -> Q:
    """A ``Q`` over ``Contact`` true exactly for the contacts the tree matches (see module docstring).

    Every aggregate is a subquery, so ``Contact.objects.filter(workspace_id=...).filter(q)`` is one
    statement. Sibling goal conditions over the same events are fused into one grouped subquery
    (see ``_compile_children``). ``semi_join`` says the ``Q`` is the whole ``WHERE`` of a query
    over the workspace's contacts (not inside a ``NOT``, an ``OR``, a ``CASE`` or a ``FILTER``):
    then fused groups in its top-level conjunction become ``id IN (... GROUP BY contact_id ...)``,
    one pass over the events for all contacts.
    Raises ``TreeValidationError`` for an invalid tree or an unresolved segment slug.
    """
    tree = validate_tree(tree)
    missing = sorted(referenced_segments(tree) - set(segment_pks))
    if missing:
        raise TreeValidationError({"tree": [f"Unknown segment: {slug}." for slug in missing]})
    context = Context(workspace_id=workspace_id, now=now, tz=zoneinfo.ZoneInfo(timezone_name), segment_pks=segment_pks)
    # The root is the only conjunct of an implicit AND, so a fusable root is fused too.
    (condition,) = _compile_children([tree], "and", context, semi_join=semi_join)
    return condition


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
        q = _compile_leaf(node["leaf"], context)
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
# zero events (sum 0, count 0, no avg/min/max), known without a query: ``_holds_without_events``.
# So a group condition that is false without events matches exactly the contacts in
# ``GROUP BY ... HAVING condition``, and one that is true without events exactly those NOT in
# ``GROUP BY ... HAVING NOT condition``. In an AND, a sibling first/last leaf of the same base
# never holds without a base event either, so it too makes "in the group" a requirement.
# first/last need the earliest/latest event's own value, not an aggregate: they stay correlated.

FUSED_AGGREGATES = frozenset({"sum", "count", "avg", "min", "max"})
Base = tuple[str, str | None, str | None]


def _goal_base(body: dict[str, Any]) -> Base:
    return (body["goal_type"], body.get("goal_name"), body.get("event_name"))


def _fused_base(node: dict[str, Any]) -> Base | None:
    """The base shared by every leaf of this node, if all are goal leaves that can be fused."""
    if node["kind"] == "leaf":
        leaf = node["leaf"]
        if leaf["source"] != "custom_events_goals":
            return None
        body = leaf["custom_events_goal"]
        return _goal_base(body) if body["aggregate_operator"] in FUSED_AGGREGATES else None
    bases = {_fused_base(child) for child in node["branch"]["leaves"]}
    if len(bases) != 1:
        return None
    (base,) = bases
    return base


def _leaf_count(node: dict[str, Any]) -> int:
    return 1 if node["kind"] == "leaf" else sum(_leaf_count(child) for child in node["branch"]["leaves"])


def _holds_without_events(node: dict[str, Any]) -> bool:
    """Whether a fusable node holds for a contact with no event of its base."""
    if node["kind"] == "branch":
        results = [_holds_without_events(child) for child in node["branch"]["leaves"]]
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
    return _goal_base(body) if body["aggregate_operator"] in ("first", "last") else None


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
        holds = [_holds_without_events(member) for member in members]
        holds_without_events = all(holds) if operator == "and" else any(holds)
        if base in anchored:
            holds_without_events = False
        # semi_join is only ever set for the children of a top-level AND.
        one_scan_for_all = semi_join and not holds_without_events
        if sum(_leaf_count(member) for member in members) < 2 and not one_scan_for_all:
            continue  # a lone correlated leaf is as cheap
        condition = functools.reduce(combine, [_fused_condition(member, context) for member in members])
        events = _grouped_events(base, context)
        if one_scan_for_all:
            q = Q(pk__in=events.filter(condition).values("contact_id"))
        elif holds_without_events:
            q = ~Q(Exists(events.filter(~condition, contact_id=OuterRef("pk"))))
        else:
            q = Q(Exists(events.filter(condition, contact_id=OuterRef("pk"))))
        fused |= dict.fromkeys(indices[1:], None)
        fused[indices[0]] = q
    parts: list[Q] = []
    child_semi_join = semi_join and operator == "and"
    for index, child in enumerate(children):
        if index not in fused:
            parts.append(_compile_node(child, context, semi_join=child_semi_join))
        elif (q := fused[index]) is not None:
            parts.append(q)
    return parts


def _grouped_events(base: Base, context: Context) -> QuerySet[CustomEvent]:
    """The workspace's live events of this base, grouped by contact (a condition on aggregates
    filters the groups: HAVING)."""
    goal_type, goal_name, event_name = base
    lookups: dict[str, Any] = {"goal_type__isnull": False}
    if goal_type != ANY_GOAL_TYPE:
        lookups["goal_type"] = goal_type
    if goal_name is not None:
        lookups["goal_name"] = goal_name
    if event_name is not None:
        lookups["event_name"] = event_name
    return (
        CustomEvent.objects.filter(workspace_id=context.workspace_id, deleted_at__isnull=True, **lookups)
        .order_by()
        .values("contact_id")
        # An aggregate alias makes values() a GROUP BY without selecting anything more.
        .alias(fused_group=Count("contact_id"))
    )


def _fused_condition(node: dict[str, Any], context: Context) -> Q:
    """A fusable node as a condition on its group's aggregates (never NULL, like every leaf)."""
    if node["kind"] == "branch":
        parts = [_fused_condition(child, context) for child in node["branch"]["leaves"]]
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
            _InCents(Sum(_AggregatedValue(F("goal_value"), skip_null=True), filter=only)),
            Value(0),
            output_field=BigIntegerField(),
        )
        extreme = None
        if aggregate in ("min", "max"):
            function = Min if aggregate == "min" else Max
            extreme = _InCents(function(_AggregatedValue(F("goal_value")), filter=only))
        q = _goal_condition(body, count=count, total=total, extreme=extreme)
    return ~q if node.get("negate") else q


def _compile_leaf(leaf: dict[str, Any], context: Context) -> Q:
    source = leaf["source"]
    body = leaf[SOURCE_KEYS[source]]
    if source == "custom_events_goals":
        return _compile_goal(body, context)
    if source == "custom_events":
        return _compile_custom_event(body, context)
    if source == "contacts":
        return _compile_contact(body, context)
    pk = context.segment_pks[body["segment_id"]]
    in_segment = Q(Exists(SegmentMembership.objects.filter(segment_id=pk, contact_id=OuterRef("pk"))))
    return in_segment if body["operator"] == "in_segment" else ~in_segment


def start_of_day(day: dt.date, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.min, tzinfo=tz)


def _window_q(field: str, operator: str, values: list[str], context: Context) -> Q:
    """The timeframe as a condition on a datetime column (see module docstring)."""
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


def _live_events(context: Context, *filters: Q, **lookups: Any) -> QuerySet[CustomEvent]:
    """The outer contact's live events; ``order_by()`` clears the model ordering, which would
    otherwise break aggregate subqueries on PostgreSQL."""
    return (
        CustomEvent.objects.filter(
            *filters, workspace_id=context.workspace_id, contact_id=OuterRef("pk"), deleted_at__isnull=True, **lookups
        )
        .order_by()
        .values("contact_id")
    )


class _Cents(Func):
    """An event's goal value in integer cents (0 without a value): exact on SQLite too, where
    decimals are stored as floating point and SUM over them would round."""

    template = "CAST(ROUND(COALESCE(%(expressions)s, 0) * 100) AS BIGINT)"
    output_field = BigIntegerField()


class _AggregatedValue(Func):
    """An event's goal value (0 without one) as fed to SUM/MIN/MAX of a grouped scan, scaled to
    cents by ``_InCents`` around the aggregate. SQLite stores decimals as floating point, so
    there each value is rounded to whole cents first; PostgreSQL aggregates the exact numerics
    and scales once (per-row rounding and casting cost a third of the scan). SUM skips NULLs,
    which is the same as adding 0, so ``skip_null`` leaves them to it."""

    output_field = BigIntegerField()

    def __init__(self, expression: Any, *, skip_null: bool = False) -> None:
        super().__init__(expression)
        self.skip_null = skip_null

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return compiler.compile(_Cents(*self.get_source_expressions()))

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return (sql, params) if self.skip_null else (f"COALESCE({sql}, 0)", params)


class _InCents(Func):
    """An aggregate of ``_AggregatedValue`` in integer cents (NULL stays NULL)."""

    output_field = BigIntegerField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return compiler.compile(self.get_source_expressions()[0])

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"({sql} * 100)", params


def _scalar_subquery(events: QuerySet[CustomEvent], expression: Expression) -> Subquery:
    return Subquery(events.annotate(agg_value=expression).values("agg_value"), output_field=BigIntegerField())


def sum_cents(events: QuerySet[CustomEvent]) -> Expression:
    # A plain SQL function (not an ORM aggregate) so Django adds no GROUP BY: one row, NULL if empty.
    total = Func(_Cents(F("goal_value")), function="SUM", output_field=BigIntegerField())
    return Coalesce(_scalar_subquery(events, total), Value(0), output_field=BigIntegerField())


def count_of(events: QuerySet[CustomEvent]) -> Expression:
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


def goal_matches(body: dict[str, Any], context: Context) -> QuerySet[CustomEvent]:
    """The outer contact's qualifying events of a ``custom_events_goals`` leaf."""
    lookups: dict[str, Any] = {"goal_type__isnull": False}
    if body["goal_type"] != ANY_GOAL_TYPE:
        lookups["goal_type"] = body["goal_type"]
    for name in ("goal_name", "event_name"):
        if name in body:
            lookups[name] = body[name]
    window = _window_q("occurred_at", body["timeframe_operator"], body["timeframe_values"], context)
    return _live_events(context, window, **lookups)


def goal_extreme(events: QuerySet[CustomEvent], aggregate: str) -> Subquery:
    """min / max / first / last goal value in cents of these events (NULL when there are none)."""
    if aggregate in ("min", "max"):
        function = "MIN" if aggregate == "min" else "MAX"
        return _scalar_subquery(events, Func(_Cents(F("goal_value")), function=function))
    order = ("occurred_at", "id") if aggregate == "first" else ("-occurred_at", "-id")
    return Subquery(
        events.order_by(*order).values(agg_value=_Cents(F("goal_value")))[:1], output_field=BigIntegerField()
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


class _JSONKey(Func):
    """One top-level key of a JSON column, per backend: ``kind`` is ``type`` (the JSON type name,
    'null' for JSON null, SQL NULL when absent), ``number`` (the value if a JSON number, else NULL)
    or ``string`` (the text if a JSON string, else NULL)."""

    def __init__(self, field: str, key: str, kind: str) -> None:
        output = {"type": CharField(), "number": FloatField(), "string": CharField()}[kind]
        super().__init__(F(field), output_field=output)
        self.key = key
        self.kind = kind

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotImplementedError(f"JSON key conditions support PostgreSQL and SQLite, not {connection.vendor}.")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        typeof = f"jsonb_typeof({column} -> %s::text)"
        if self.kind == "type":
            return typeof, [*params, self.key]
        wanted = "number" if self.kind == "number" else "string"
        cast = "::numeric" if self.kind == "number" else ""
        sql = f"(CASE WHEN {typeof} = '{wanted}' THEN ({column} ->> %s::text){cast} END)"
        return sql, [*params, self.key, *params, self.key]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = "$." + json.dumps(self.key)
        typeof = f"json_type({column}, %s)"
        if self.kind == "type":
            return typeof, [*params, path]
        wanted = "('integer', 'real')" if self.kind == "number" else "('text')"
        sql = f"(CASE WHEN {typeof} IN {wanted} THEN json_extract({column}, %s) END)"
        return sql, [*params, path, *params, path]


def _json_is_set(field: str, key: str) -> Q:
    kind = _JSONKey(field, key, "type")
    return Q(IsNull(kind, False)) & ~Q(Exact(kind, "null"))


def _json_equals(field: str, key: str, value: str | int | float) -> Q:
    typed = _JSONKey(field, key, "string" if isinstance(value, str) else "number")
    return Q(IsNull(typed, False)) & Q(Exact(typed, value))


def custom_event_matches(body: dict[str, Any], context: Context) -> QuerySet[CustomEvent]:
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
    events = custom_event_matches(body, context)
    count_operator, count_value = body["count_operator"], body["count_value"]
    # "Did it at least once" / "never did it" are the common cases: EXISTS stops at the first row.
    if count_operator == "at_least" and count_value == 1:
        return Q(Exists(events))
    if count_operator in ("at_most", "exactly") and count_value == 0:
        return ~Q(Exists(events))
    operator = {"at_least": "gte", "at_most": "lte", "exactly": "eq"}[count_operator]
    return _compare(count_of(events), operator, count_value)


def _compile_contact(body: dict[str, Any], context: Context) -> Q:
    field, operator, value = body["field"], body["operator"], body.get("value")
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
        text = _JSONKey("properties", key, "string")
        q = Q(IsNull(text, False)) & Q(IContains(text, value))
        return q if operator == "contains" else ~q
    number = _JSONKey("properties", key, "number")
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


def instant_text(moment: dt.datetime) -> str:
    """An instant as ``PropertyInstant`` normalises a property: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffff``."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(timespec="microseconds")


class PropertyInstant(Func):
    """A contact property as a fixed-width UTC text ``YYYY-MM-DDTHH:MM:SS.ffffff`` when it is a JSON
    string holding a valid instant (``PROPERTY_INSTANT_PATTERN``), else NULL. Text of one width
    and format orders as the instants do, so comparisons need no cast that bad data could break."""

    output_field = CharField()
    # The tail of the full form; a valid value of length L (10, 16, 19, 21-26) without its suffix
    # is completed by this text from position L - 9.
    PADDING = "T00:00:00.000000"

    def __init__(self, field: str, key: str) -> None:
        super().__init__(F(field))
        self.key = key

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        raise NotImplementedError(f"JSON key conditions support PostgreSQL and SQLite, not {connection.vendor}.")

    def _normalised(self, text: str, valid: str, params: list[Any]) -> tuple[str, list[Any]]:
        # The pattern allows "Z" and "+00:00" only as a suffix, so removing them anywhere is safe.
        core = f"replace(replace({text}, 'Z', ''), '+00:00', '')"
        sql = f"(CASE WHEN {valid} THEN {core} || substr('{self.PADDING}', length({core}) - 9) END)"
        return sql, params

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        text = f"({column} ->> %s::text)"
        valid = f"jsonb_typeof({column} -> %s::text) = 'string' AND {text} ~ %s"
        # Placeholders in order: valid (typeof key, text key, pattern), then core twice (text key).
        args = [*params, self.key, *params, self.key, PROPERTY_INSTANT_PATTERN]
        args += [*params, self.key, *params, self.key]
        sql, args = self._normalised(text, valid, args)
        # Byte order, whatever the database's collation: the format alone decides the order.
        return f'({sql} COLLATE "C")', args

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        column, params = compiler.compile(self.source_expressions[0])
        path = "$." + json.dumps(self.key)
        text = f"json_extract({column}, %s)"
        valid = f"json_type({column}, %s) = 'text' AND {text} REGEXP %s"
        args = [*params, path, *params, path, PROPERTY_INSTANT_PATTERN]
        args += [*params, path, *params, path]
        return self._normalised(text, valid, args)


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


# --------------------------------------------------------------------------- templates


def _goal(aggregate: str, operator: str, value: int, timeframe: str = "anytime", days: int | None = None) -> dict:
    return {
        "kind": "leaf",
        "leaf": {
            "source": "custom_events_goals",
            "custom_events_goal": {
                "goal_type": GoalType.PURCHASE.value,
                "aggregate_operator": aggregate,
                "operator": operator,
                "value": value,
                "timeframe_operator": timeframe,
                "timeframe_values": [str(days)] if days is not None else [],
            },
        },
    }


def _all_of(*nodes: dict) -> dict:
    return {"kind": "branch", "branch": {"operator": "and", "leaves": list(nodes)}}


TEMPLATES: dict[str, dict[str, Any]] = {
    "vip": {
        "name": "VIP",
        "description": "Spent 1,000 or more in at least 5 purchases, and bought in the last 60 days.",
        "color": "#7c3aed",
        "tree": _all_of(
            _goal("sum", "gte", 1000),
            _goal("count", "gte", 5),
            _goal("count", "gte", 1, "in_the_last_days", 60),
        ),
    },
    "at_risk_high_value": {
        "name": "At-Risk High-Value",
        "description": "Spent 500 or more overall, but no purchase in the last 90 days.",
        "color": "#dc2626",
        "tree": _all_of(
            _goal("sum", "gte", 500),
            _goal("count", "eq", 0, "in_the_last_days", 90),
        ),
    },
    "new_high_potential": {
        "name": "New High-Potential",
        # Precisely: the contact's earliest live purchase ever is worth more than 200 and
        # happened in the last 30 days (no purchase before that, at least one within it).
        "description": "First purchase, made in the last 30 days, was over 200.",
        "color": "#059669",
        "tree": _all_of(
            _goal("first", "gt", 200),
            _goal("count", "eq", 0, "more_than_days_ago", 30),
            _goal("count", "gte", 1, "in_the_last_days", 30),
        ),
    },
}
