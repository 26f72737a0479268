"""The segment rule tree: validate it, compile it to one ORM condition over contacts, say it in words.

Pure logic: nothing here runs a query. Services validate a tree before storing it; selectors
compile it and run the single statement; the builder, the segment page and explain describe it.

Layout
------
``vocabulary``
    The words, each written once: sources, operators, their arity and value kinds, which
    contact field takes which operator, the labels, and ``describe`` (a condition in words).
``validation``
    ``validate_tree``: the normalised tree, or ``TreeValidationError`` listing every problem.
``tree``
    Facts about a validated tree: its leaves, the segments it refers to, whether time alone
    changes its members.
``compile``
    ``compile_tree``: one ``Q`` over contacts, with same-base goal conditions fused.
``expressions``
    The SQL functions that compiles to (cents, JSON keys, property instants), per backend.
``templates``
    The segment templates: the seed's three, and one per group of each RFM model.

Adding a leaf kind
------------------
Declare the source in ``vocabulary.SOURCES`` (its body key and label), with its operators,
arities and phrases next to the others. Then each concern has one table keyed by source, and
``segments/tests/test_vocabulary.py`` fails until every table covers every source:
``validation.VALIDATORS`` (parse the body), ``compile.COMPILERS`` (its SQL),
``vocabulary.LEAF_PHRASES`` (its sentence), ``builder.LEAF_CONTROLS`` and the template
``segments/_leaf_<source>.html`` (its controls), ``explain.PROBES`` (its actual value) and
``segments.api.schema.CONDITIONS`` (its OpenAPI body). The tests' oracle
(``segments/tests/oracle.py``) gets its independent reading of the new leaf too.

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
    ``operator`` and ``value``; ``vocabulary.CONTACT_FIELDS`` says which operator fits which field.
    Or, Notifuse's spelling, ``filters``: a non-empty list of DimensionFilters, ANDed:
    ``field_name`` (``vocabulary.DIMENSION_FIELD_TYPES``), ``field_type``, ``operator``
    (``vocabulary.DIMENSION_TYPE_OPERATORS``), ``string_values`` / ``number_values`` and, for
    ``custom_json_1..5``, a ``json_path``.
``segment`` -> ``segment``
    ``segment_id`` (another segment's slug) and ``operator`` (in_segment not_in_segment).
``rfm`` -> ``rfm``
    ``model`` (an RFM model's id) and ``field``: ``group`` / ``previous_group`` with ``operator``
    in / not_in and ``values`` (group ids); ``r f m`` (eq gte lte between, whole 1-5) and
    ``recency_days frequency monetary`` (any comparison; money with at most 2 decimals) with
    ``value`` (and ``value_2``); ``group_changed_at`` with a timeframe.
``contact_timeline`` -> ``contact_timeline``
    Notifuse's: ``kind`` (a timeline entry kind, ``custom_event.<event_name>``), ``count_operator``,
    ``count_value >= 0``, a timeframe of ``vocabulary.TIMELINE_TIMEFRAME_OPERATORS`` (RFC 3339
    values only), ``template_id`` with email kinds only; ``filters`` are refused.

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
* DimensionFilters (Notifuse's semantics): fields other than our columns (email external_id
  first_name last_name created_at updated_at) are contact properties of the same name. A field
  that is not set (a text column ``""``; a property missing or JSON null) holds no operator but
  ``is_not_set``, so ``not_equals`` / ``not_contains`` need it set. ``equals`` is exact (an email
  value lower-cased), ``contains`` case-insensitive; several ``contains`` / ``not_contains``
  values are alternatives (ORed). Numbers compare JSON numbers, texts JSON strings (a JSON value
  of another type is "not equal" and "does not contain"). Dates: a date-only value is midnight
  UTC; ``before_date`` / ``after_date`` are strict, ``in_date_range`` is inclusive and
  ``not_in_date_range`` its complement among set values, ``in_the_last_days N`` is later than
  ``now - N*24h``; ``custom_datetime_*`` properties are read as instants like the date operators
  on properties (above). ``json_path`` walks objects by key and arrays by index (a digits
  segment never reads an object key); ``in_array`` holds when the value there is an array with
  that string element or an object with that key; ``is_set`` with a path asks whether its first
  key is present (JSON null included).
* ``contact_timeline`` counts the contact's timeline entries of ``kind`` whose ``created_at``
  is in the timeframe (the event's occurred_at for custom events), inserts and updates alike
  (Notifuse's entries), not this app's own ``delete`` / ``restore`` entries; an event's entries
  stay when it is soft-deleted. A ``template_id`` matches nothing (no message entries here).
* ``segment`` leaves read the current ``SegmentMembership`` rows of the referenced segment; the
  caller resolves slugs to primary keys (existence and cycles need the database).
* ``rfm`` leaves read the contact's stored ``RfmScore`` under the named live model of the
  workspace. A contact without a row (not scored yet, or no such model) is ``prospect`` and has
  no other value: ``group in [..., prospect]`` takes it, ``previous_group``, numeric fields and
  ``group_changed_at`` never match it. A row's NULL values (prospect, lapsed) never match a
  numeric comparison, and ``neq`` needs a value. ``monetary`` compares in cents;
  ``group_changed_at`` timeframes are those of goal leaves. Every branch is an EXISTS, so NOT is
  the exact complement.
"""

from . import vocabulary
from .compile import (
    FUSED_AGGREGATES,
    Base,
    Context,
    compile_leaf,
    compile_tree,
    count_of,
    custom_event_matches,
    goal_extreme,
    goal_matches,
    instant_bound,
    rfm_scores,
    segment_membership,
    start_of_day,
    sum_cents,
    timeline_matches,
)
from .expressions import PROPERTY_INSTANT_PATTERN, JSONKey, PropertyInstant, instant_text
from .templates import TEMPLATES, rfm_group_templates, template_defaults
from .tree import has_relative_timeframe, iter_leaves, referenced_rfm_models, referenced_segments
from .validation import (
    DATE_RE,
    EVENT_NAME_RE,
    MAX_ABS_AMOUNT,
    MAX_DAYS,
    MAX_DEPTH,
    MAX_DIMENSION_FILTERS,
    MAX_DIMENSION_VALUES,
    MAX_LEAVES,
    MAX_PROPERTY_FILTERS,
    MAX_TEXT_VALUE_LENGTH,
    MOMENT_YEARS,
    PROPERTY_KEY_RE,
    REQUIRED,
    RFC3339_RE,
    SEGMENT_SLUG_RE,
    TreeValidationError,
    parse_moment,
    validate_tree,
)
from .vocabulary import (
    AGGREGATE_OPERATORS,
    ANY_GOAL_TYPE,
    BRANCH_OPERATORS,
    COMPARISON_OPERATORS,
    CONTACT_FIELD_OPERATORS,
    CONTACT_OPERATORS,
    COUNT_OPERATORS,
    INSTANT_OPERATORS,
    PROPERTIES_PREFIX,
    PROPERTY_FILTER_OPERATORS,
    RELATIVE_TIMEFRAME_OPERATORS,
    SEGMENT_OPERATORS,
    SOURCE_KEYS,
    TEXT_FIELD_OPERATORS,
    TIMEFRAME_OPERATORS,
    describe,
)

__all__ = [
    "AGGREGATE_OPERATORS",
    "ANY_GOAL_TYPE",
    "BRANCH_OPERATORS",
    "COMPARISON_OPERATORS",
    "CONTACT_FIELD_OPERATORS",
    "CONTACT_OPERATORS",
    "COUNT_OPERATORS",
    "DATE_RE",
    "EVENT_NAME_RE",
    "FUSED_AGGREGATES",
    "INSTANT_OPERATORS",
    "MAX_ABS_AMOUNT",
    "MAX_DAYS",
    "MAX_DEPTH",
    "MAX_DIMENSION_FILTERS",
    "MAX_DIMENSION_VALUES",
    "MAX_LEAVES",
    "MAX_PROPERTY_FILTERS",
    "MAX_TEXT_VALUE_LENGTH",
    "MOMENT_YEARS",
    "PROPERTIES_PREFIX",
    "PROPERTY_FILTER_OPERATORS",
    "PROPERTY_INSTANT_PATTERN",
    "PROPERTY_KEY_RE",
    "RELATIVE_TIMEFRAME_OPERATORS",
    "REQUIRED",
    "RFC3339_RE",
    "SEGMENT_OPERATORS",
    "SEGMENT_SLUG_RE",
    "SOURCE_KEYS",
    "TEMPLATES",
    "TEXT_FIELD_OPERATORS",
    "TIMEFRAME_OPERATORS",
    "Base",
    "Context",
    "JSONKey",
    "PropertyInstant",
    "TreeValidationError",
    "compile_leaf",
    "compile_tree",
    "count_of",
    "custom_event_matches",
    "describe",
    "goal_extreme",
    "goal_matches",
    "has_relative_timeframe",
    "instant_bound",
    "instant_text",
    "iter_leaves",
    "parse_moment",
    "referenced_rfm_models",
    "referenced_segments",
    "rfm_group_templates",
    "rfm_scores",
    "segment_membership",
    "start_of_day",
    "sum_cents",
    "template_defaults",
    "timeline_matches",
    "validate_tree",
    "vocabulary",
]
