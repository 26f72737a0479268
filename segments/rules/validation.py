"""Validation of a rule tree: ``validate_tree`` returns it normalised or raises
``TreeValidationError`` with every problem at its full dotted path.

Pure logic, no query. The names it accepts come from ``vocabulary``; what it adds is the
shape of a tree, the limits, and how each value is parsed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from contacts.models import (
    EVENT_NAME_MAX_LENGTH,
    EVENT_NAME_PATTERN,
    GOAL_NAME_MAX_LENGTH,
    normalize_email,
)
from events_platform import parsers
from segments.models import SEGMENT_SLUG_MAX_LENGTH

from .vocabulary import (
    AGGREGATE_OPERATORS,
    AGGREGATES,
    BRANCH_OPERATORS,
    COMPARISON_OPERATORS,
    COMPARISONS,
    CONTACT_FIELD_OPERATORS,
    CONTACT_OPERATORS,
    CONTACT_OPERATORS_BY_NAME,
    COUNT_OPERATORS,
    DIMENSION_ANY_OF,
    DIMENSION_FIELD_TYPES,
    DIMENSION_OPERATOR_NAMES,
    DIMENSION_OPERATORS,
    DIMENSION_TYPE_OPERATORS,
    DIMENSION_TYPES,
    EMAIL_KINDS,
    GOAL_TYPES,
    JSON_VALUE_OPERATORS,
    PROPERTIES_PREFIX,
    PROPERTY_FILTER_OPERATORS,
    PROPERTY_FILTERS,
    RFM_FIELDS,
    SEGMENT_OPERATORS,
    SOURCE_KEYS,
    TIMEFRAME_OPERATORS,
    TIMEFRAMES,
    TIMELINE_TIMEFRAME_OPERATORS,
    contact_field_family,
)

MAX_DEPTH = 20
MAX_LEAVES = 200
MAX_DAYS = 36500
MAX_PROPERTY_FILTERS = 20
MAX_TEXT_VALUE_LENGTH = 255
# Goal values are Decimal(14, 2); rule values must fit the same range to compare in cents.
MAX_ABS_AMOUNT = Decimal("1e15")
# More digits than any bound here has: such a string is out of range without being read.
WHOLE_MAX_DIGITS = 20

EVENT_NAME_RE = re.compile(EVENT_NAME_PATTERN)
SEGMENT_SLUG_RE = re.compile(r"^[a-z0-9_]+$")
# Top-level JSON keys only; starting with a letter keeps PostgreSQL from reading "0" as an index.
PROPERTY_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
RFC3339_RE = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$")

REQUIRED = "This field is required."


class TreeValidationError(ValidationError):
    """A rule tree is invalid; ``errors`` maps full dotted paths (``tree.branch.leaves[1]...``) to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__(errors)


class _Errors:
    def __init__(self) -> None:
        self.by_path: dict[str, list[str]] = {}

    def add(self, path: str, message: str) -> None:
        self.by_path.setdefault(path, []).append(message)


class _Invalid(Exception):
    """One field is invalid; the message goes to that field's path."""


def validate_tree(tree: Any) -> dict[str, Any]:
    """Return the normalised tree, or raise ``TreeValidationError`` listing every problem found.

    A key or string that no query or jsonb column can carry (NUL, a lone surrogate) or a
    non-finite number, anywhere in the tree, is refused first, at its path."""
    unsafe = parsers.unsafe_value(tree, path="tree")
    if unsafe is not None:
        path, problem = unsafe
        raise TreeValidationError({path: [parsers.MESSAGES[problem]]})
    errors = _Errors()
    counter = {"leaves": 0}
    normalised = _validate_node(tree, "tree", 1, errors, counter)
    if counter["leaves"] > MAX_LEAVES:
        errors.add("tree", f"Too many conditions: {counter['leaves']} (at most {MAX_LEAVES}).")
    if errors.by_path:
        raise TreeValidationError(errors.by_path)
    assert normalised is not None
    return normalised


def _check_keys(data: dict[str, Any], allowed: AbstractSet[object], path: str, errors: _Errors) -> None:
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
    allowed: set[object] = {"kind", "negate", "branch", "leaf"} if other is None else {"kind", "negate", kind}
    if other is not None and node.get(other) is not None:
        errors.add(f"{path}.{other}", f"Not allowed in a {kind} node.")
    _check_keys(node, allowed | ({other} if other else set()), path, errors)

    negate = node.get("negate", False)
    if negate is None:
        negate = False
    if not isinstance(negate, bool):
        errors.add(f"{path}.negate", "Must be true or false.")

    result: dict[str, Any] | None
    normalised: dict[str, Any]
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
    normalised = VALIDATORS[source](body, body_path, errors)
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
    exponent = value.as_tuple().exponent  # an int: _decimal refuses NaN and infinities
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
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
            if len(raw.strip().lstrip("-").lstrip("0")) > WHOLE_MAX_DIGITS:  # int() of 5,000 digits raises
                raise _Invalid(f"Must be between {minimum} and {maximum}.")
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


def _instant(raw: Any) -> str:
    """An RFC 3339 date-time with an offset (no date-only value)."""
    if not isinstance(raw, str) or not RFC3339_RE.match(raw.strip()):
        raise _Invalid("Must be an RFC 3339 date-time with an offset.")
    return _moment(raw)


def _validate_timeframe(
    fields: _Fields, operators: tuple[str, ...] = TIMEFRAME_OPERATORS, *, instants_only: bool = False
) -> tuple[str, list[str]] | None:
    """Validate ``timeframe_operator`` / ``timeframe_values``; return them normalised. ``operators``
    are the ones the leaf takes; ``instants_only`` refuses date-only values."""
    operator = fields.get("timeframe_operator", _choice(operators), required=False, default="anytime")
    if operator is None:
        return None
    raw_values = fields.body.get("timeframe_values")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, list):
        fields.fail("timeframe_values", "Must be a list.")
        return None
    timeframe = TIMEFRAMES[operator]
    expected = timeframe.arity
    if expected == 0:
        # Some clients send [] or [""] with "anytime"; nothing to read either way.
        return operator, []
    if len(raw_values) != expected:
        fields.fail("timeframe_values", f"'{operator}' takes exactly {expected} value(s).")
        return None
    values: list[str] = []
    for index, raw in enumerate(raw_values):
        name = f"timeframe_values[{index}]"
        try:
            if timeframe.takes == "days":
                values.append(str(_whole(1, MAX_DAYS)(raw)))
            else:
                values.append(_instant(raw) if instants_only else _moment(raw))
        except _Invalid as exc:
            fields.fail(name, str(exc))
    if len(values) != expected:
        return None
    if expected == 2:
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
    goal_type = fields.get("goal_type", _choice(tuple(GOAL_TYPES)))
    goal_name = fields.get("goal_name", _text(GOAL_NAME_MAX_LENGTH), required=False)
    event_name = fields.get("event_name", _text(EVENT_NAME_MAX_LENGTH, EVENT_NAME_RE), required=False)
    aggregate = fields.get("aggregate_operator", _choice(AGGREGATE_OPERATORS))
    operator = fields.get("operator", _choice(COMPARISON_OPERATORS))
    parse_value = _count_value if aggregate is not None and AGGREGATES[aggregate].takes == "count" else _amount
    value = fields.get("value", parse_value)
    value_2 = None
    takes_two = operator is not None and COMPARISONS[operator].arity == 2
    if takes_two:
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
    if takes_two:
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
        takes_value = operator is not None and PROPERTY_FILTERS[operator].arity == 1
        if takes_value:
            value = item_fields.get("value", _scalar)
        if not item_fields.ok:
            fields.ok = False
            continue
        normalised = {"key": key, "operator": operator}
        if takes_value:
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
    return normalised | _counted(count_operator, count_value, timeframe)


def _counted(count_operator: str, count_value: int, timeframe: tuple[str, list[str]]) -> dict[str, Any]:
    """The normalised tail of a leaf that counts rows: how many, and when."""
    return {
        "count_operator": count_operator,
        "count_value": count_value,
        "timeframe_operator": timeframe[0],
        "timeframe_values": timeframe[1],
    }


def _validate_contact(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    if "filters" in body:
        return _validate_contact_filters(body, path, errors)
    fields = _Fields(body, path, errors, {"field", "operator", "value"})
    field = fields.get("field", _contact_field)
    operator = fields.get("operator", _choice(CONTACT_OPERATORS))
    if field is None or operator is None:
        return None
    family = contact_field_family(field)
    if operator not in CONTACT_FIELD_OPERATORS[family]:
        fields.fail("operator", f"'{field}' takes one of: {', '.join(CONTACT_FIELD_OPERATORS[family])}.")
        return None
    word = CONTACT_OPERATORS_BY_NAME[operator]
    value: Any = None
    if word.arity == 0:
        pass
    elif word.takes == "days":
        value = fields.get("value", _whole(1, MAX_DAYS))
    elif word.takes == "date":
        value = fields.get("value", _moment)
    elif word.takes == "number":
        value = fields.get("value", _number)
    elif word.takes == "text":
        value = fields.get("value", _text(MAX_TEXT_VALUE_LENGTH))
    elif family == "properties":
        value = fields.get("value", _scalar)
    else:
        value = fields.get("value", _text(MAX_TEXT_VALUE_LENGTH, allow_empty=True))
        if field == "email" and value is not None:
            value = normalize_email(value)
    if not fields.ok:
        return None
    normalised: dict[str, Any] = {"field": field, "operator": operator}
    if word.arity:
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


# --------------------------------------------------------------------------- contacts: dimension filters

MAX_DIMENSION_FILTERS = 20
MAX_DIMENSION_VALUES = 20
MAX_JSON_PATH = 10
# An object key (as a property name) or an array index (digits).
JSON_PATH_SEGMENT_RE = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_-]{0,99}|[0-9]{1,6})$")


def _validate_contact_filters(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    """Notifuse's spelling of a contacts leaf: ``{"filters": [DimensionFilter, ...]}``, ANDed."""
    fields = _Fields(body, path, errors, {"filters"})
    raw = body.get("filters")
    if not isinstance(raw, list) or not raw:
        fields.fail("filters", "Must be a non-empty list of filters.")
        return None
    if len(raw) > MAX_DIMENSION_FILTERS:
        fields.fail("filters", f"At most {MAX_DIMENSION_FILTERS} filters.")
        return None
    filters = [_validate_dimension_filter(item, f"{path}.filters[{index}]", errors) for index, item in enumerate(raw)]
    if not fields.ok or any(item is None for item in filters):
        return None
    return {"filters": filters}


def _validate_dimension_filter(item: Any, path: str, errors: _Errors) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        errors.add(path, "Must be an object with field_name, field_type and operator.")
        return None
    fields = _Fields(
        item, path, errors, {"field_name", "field_type", "operator", "string_values", "number_values", "json_path"}
    )
    field_name = fields.get("field_name", _choice(tuple(DIMENSION_FIELD_TYPES)))
    field_type = fields.get("field_type", _choice(DIMENSION_TYPES))
    operator = fields.get("operator", _choice(DIMENSION_OPERATOR_NAMES))
    if field_name is None or field_type is None or operator is None or not fields.ok:
        return None
    declared = DIMENSION_FIELD_TYPES[field_name]
    if declared == "json":
        operators = JSON_VALUE_OPERATORS[field_type]
    elif field_type != declared:
        fields.fail("field_type", f"'{field_name}' is a {declared} field.")
        return None
    else:
        operators = DIMENSION_TYPE_OPERATORS[declared]
    if operator not in operators:
        fields.fail("operator", f"A {field_type} filter takes one of: {', '.join(operators)}.")
        return None
    normalised: dict[str, Any] = {"field_name": field_name, "field_type": field_type, "operator": operator}
    json_path = _json_path(fields, declared)
    if json_path is None:
        return None
    if json_path:
        normalised["json_path"] = json_path
    word = DIMENSION_OPERATORS[operator]
    if word.arity == 0:
        return normalised if fields.ok else None
    key = "number_values" if field_type == "number" else "string_values"
    raw_values = item.get(key)
    if not isinstance(raw_values, list) or not raw_values:
        fields.fail(key, f"'{operator}' needs {key}.")
        return None
    if operator in DIMENSION_ANY_OF:
        if len(raw_values) > MAX_DIMENSION_VALUES:
            fields.fail(key, f"At most {MAX_DIMENSION_VALUES} values.")
            return None
    elif len(raw_values) != word.arity:
        fields.fail(key, f"'{operator}' takes exactly {word.arity} value(s).")
        return None
    parse: Callable[[Any], Any]
    if field_type == "number":
        parse = _number
    elif word.takes == "days":
        parse = _days_text
    elif word.takes == "date":
        parse = _moment
    else:
        parse = _text(MAX_TEXT_VALUE_LENGTH, allow_empty=True)
    values: list[Any] = []
    for index, raw in enumerate(raw_values):
        try:
            values.append(parse(raw))
        except _Invalid as exc:
            fields.fail(f"{key}[{index}]", str(exc))
    if not fields.ok:
        return None
    if field_name == "email" and operator in ("equals", "not_equals"):
        values = [normalize_email(value) for value in values]  # emails are stored lower-cased
    if operator in ("in_date_range", "not_in_date_range"):
        # Notifuse reads a date-only value as midnight UTC: the start of its UTC day.
        start, end = (_as_utc_bounds(parse_moment(value))[0] for value in values)
        if end < start:
            fields.fail(f"{key}[1]", "The end of the range must not be before its start.")
            return None
    normalised[key] = values
    return normalised


def _json_path(fields: _Fields, declared: str) -> list[str] | None:
    """The filter's ``json_path`` (``[]`` when none), or None when it is invalid."""
    raw = fields.body.get("json_path")
    if raw is None or raw == []:
        return []
    if declared != "json":
        fields.fail("json_path", "Only custom_json_1..5 take a json_path.")
        return None
    if not isinstance(raw, list) or len(raw) > MAX_JSON_PATH:
        fields.fail("json_path", f"Must be a list of at most {MAX_JSON_PATH} keys or array indexes.")
        return None
    for index, segment in enumerate(raw):
        if not isinstance(segment, str) or not JSON_PATH_SEGMENT_RE.match(segment):
            fields.fail(
                f"json_path[{index}]",
                "Must be an object key (a letter or _, then letters, digits, _ or -) or an array index (digits).",
            )
    return list(raw) if fields.ok else None


def _days_text(raw: Any) -> str:
    """A whole number of days, kept as the text Notifuse sends (``"30"``)."""
    return str(_whole(1, MAX_DAYS)(raw))


# --------------------------------------------------------------------------- contact timeline

MAX_TIMELINE_KIND_LENGTH = 255


def _validate_contact_timeline(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(
        body,
        path,
        errors,
        {
            "kind",
            "count_operator",
            "count_value",
            "timeframe_operator",
            "timeframe_values",
            "template_id",
            "filters",
        },
    )
    kind = fields.get("kind", _text(MAX_TIMELINE_KIND_LENGTH))
    count_operator = fields.get("count_operator", _choice(COUNT_OPERATORS))
    count_value = fields.get("count_value", _whole(0, 10**12))
    template_id = fields.get("template_id", _text(MAX_TEXT_VALUE_LENGTH), required=False)
    if template_id is not None and kind is not None and kind not in EMAIL_KINDS:
        fields.fail("template_id", f"Only with the email kinds: {', '.join(sorted(EMAIL_KINDS))}.")
    if body.get("filters") not in (None, []):
        fields.fail(
            "filters",
            "Timeline entries carry no contact fields to filter on: put the contact conditions in a "
            "contacts leaf beside this one.",
        )
    timeframe = _validate_timeframe(fields, TIMELINE_TIMEFRAME_OPERATORS, instants_only=True)
    if not fields.ok or timeframe is None:
        return None
    normalised: dict[str, Any] = {"kind": kind}
    if template_id is not None:
        normalised["template_id"] = template_id
    return normalised | _counted(count_operator, count_value, timeframe)


def _validate_segment(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(body, path, errors, {"segment_id", "operator"})
    segment_id = fields.get("segment_id", _text(SEGMENT_SLUG_MAX_LENGTH, SEGMENT_SLUG_RE))
    operator = fields.get("operator", _choice(SEGMENT_OPERATORS))
    if not fields.ok:
        return None
    return {"segment_id": segment_id, "operator": operator}


# One validator per source (``vocabulary.SOURCES``): the body of a leaf, normalised, or None.
RFM_MODEL_RE = re.compile(r"^[a-z0-9_]{1,32}\Z")
RFM_GROUP_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}\Z")
MAX_RFM_GROUPS = 20
MAX_RFM_RAW = 10**9


def _rfm_groups(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or len(raw) > MAX_RFM_GROUPS:
        raise _Invalid(f"Must be a list of 1 to {MAX_RFM_GROUPS} group ids (champions, prospect, ...).")
    for item in raw:
        if not isinstance(item, str) or not RFM_GROUP_RE.match(item):
            raise _Invalid(f"'{item}' is not a group id (lowercase letters, digits and _).")
    return sorted(set(raw))


def _validate_rfm(body: dict[str, Any], path: str, errors: _Errors) -> dict[str, Any] | None:
    fields = _Fields(
        body,
        path,
        errors,
        {"model", "field", "operator", "values", "value", "value_2", "timeframe_operator", "timeframe_values"},
    )
    model = fields.get("model", _text(32, RFM_MODEL_RE))
    name = fields.get("field", _choice(tuple(RFM_FIELDS)))
    if name is None or model is None:
        return None
    rfm_field = RFM_FIELDS[name]
    normalised: dict[str, Any] = {"model": model, "field": name}
    if rfm_field.takes == "timeframe":
        timeframe = _validate_timeframe(fields)
        if not fields.ok or timeframe is None:
            return None
        return normalised | {"timeframe_operator": timeframe[0], "timeframe_values": timeframe[1]}
    operator = fields.get("operator", _choice(rfm_field.operators))
    if rfm_field.takes == "groups":
        values = fields.get("values", _rfm_groups)
        if not fields.ok:
            return None
        return normalised | {"operator": operator, "values": values}
    if name in ("r", "f", "m"):
        parse: Callable[[Any], Any] = _whole(1, 5)
    elif rfm_field.takes == "amount":
        parse = _amount
    else:
        parse = _whole(0, MAX_RFM_RAW)
    value = fields.get("value", parse)
    normalised |= {"operator": operator, "value": value}
    if operator is not None and COMPARISONS[operator].arity == 2:
        value_2 = fields.get("value_2", parse)
        if value is not None and value_2 is not None and Decimal(str(value_2)) < Decimal(str(value)):
            fields.fail("value_2", "Must be greater than or equal to value.")
        normalised["value_2"] = value_2
    return normalised if fields.ok else None


VALIDATORS: dict[str, Callable[[dict[str, Any], str, _Errors], dict[str, Any] | None]] = {
    "custom_events_goals": _validate_goal,
    "custom_events": _validate_custom_event,
    "contacts": _validate_contact,
    "segment": _validate_segment,
    "rfm": _validate_rfm,
    "contact_timeline": _validate_contact_timeline,
}
