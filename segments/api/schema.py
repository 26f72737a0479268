"""The OpenAPI description of a rule tree (drf-spectacular extension), every enum and arity
drawn from the rule vocabulary, so the documented operators are exactly the accepted ones."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.plumbing import ResolvedComponent

from segments import rules
from segments.rules import vocabulary as v

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _enum(names: tuple[str, ...] | list[str], description: str = "") -> Schema:
    schema: Schema = {"type": "string", "enum": list(names)}
    if description:
        schema["description"] = description
    return schema


def _arities(words: dict[str, v.Operator]) -> str:
    return "; ".join(
        f"`{name}`: {word.arity}" + (f" ({word.takes})" if word.arity else "") for name, word in words.items()
    )


def _timeframe() -> Schema:
    return {
        "timeframe_operator": _enum(rules.TIMEFRAME_OPERATORS, "Default `anytime`."),
        "timeframe_values": {
            "type": "array",
            "items": {"type": "string"},
            "description": "How many values each timeframe takes: " + _arities(v.TIMEFRAMES) + ".",
        },
    }


def _goal_condition() -> Schema:
    return {
        "type": "object",
        "required": ["goal_type", "aggregate_operator", "operator", "value"],
        "properties": {
            "goal_type": _ref("RuleGoalType"),
            "goal_name": {"type": "string"},
            "event_name": {"type": "string"},
            "aggregate_operator": _enum(rules.AGGREGATE_OPERATORS),
            "operator": _enum(rules.COMPARISON_OPERATORS),
            "value": {"type": "number", "description": "Money (at most 2 decimals), a whole number for `count`."},
            "value_2": {"type": "number", "description": "With `between`: the upper bound (>= value)."},
            **_timeframe(),
        },
    }


def _event_condition() -> Schema:
    return {
        "type": "object",
        "required": ["event_name", "count_operator", "count_value"],
        "properties": {
            "event_name": {"type": "string"},
            "properties": {
                "type": "array",
                "maxItems": rules.MAX_PROPERTY_FILTERS,
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": {"type": "string", "pattern": rules.PROPERTY_KEY_RE.pattern},
                        "operator": _enum(rules.PROPERTY_FILTER_OPERATORS, _arities(v.PROPERTY_FILTERS) + "."),
                        "value": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                    },
                },
            },
            "count_operator": _enum(rules.COUNT_OPERATORS),
            "count_value": {"type": "integer", "minimum": 0},
            **_timeframe(),
        },
    }


def _contact_filters() -> Schema:
    return {
        "type": "object",
        "required": ["filters"],
        "properties": {"filters": {"type": "array", "minItems": 1, "items": _ref("RuleDimensionFilter")}},
    }


def _dimension_filter() -> Schema:
    by_type = "; ".join(f"`{name}`: {', '.join(ops)}" for name, ops in v.DIMENSION_TYPE_OPERATORS.items())
    fields = "; ".join(
        f"{kind}: {', '.join(name for name, t in v.DIMENSION_FIELD_TYPES.items() if t == kind)}"
        for kind in v.DIMENSION_TYPES
    )
    return {
        "type": "object",
        "description": "Notifuse's DimensionFilter. Fields other than email, external_id, first_name, last_name, "
        "created_at and updated_at are contact properties of the same name.",
        "required": ["field_name", "field_type", "operator"],
        "properties": {
            "field_name": _enum(list(v.DIMENSION_FIELD_TYPES), f"By type: {fields}."),
            "field_type": _enum(
                v.DIMENSION_TYPES,
                "The field's type; for custom_json_1..5 the type of the value at `json_path` "
                "(`json` reads as `string`).",
            ),
            "operator": _enum(v.DIMENSION_OPERATOR_NAMES, f"By field_type: {by_type}."),
            "string_values": {
                "type": "array",
                "items": {"type": "string"},
                "description": "For string, time and json filters: one value; two for the date ranges; one or "
                "more alternatives for contains / not_contains. Dates are RFC 3339 or YYYY-MM-DD (midnight UTC); "
                'in_the_last_days takes a number of days as text (`"30"`).',
            },
            "number_values": {"type": "array", "items": {"type": "number"}, "description": "For number filters: one."},
            "json_path": {
                "type": "array",
                "items": {"type": "string"},
                "maxItems": 10,
                "description": "custom_json_1..5 only: keys, and digits for array indexes.",
            },
        },
    }


def _timeline_condition() -> Schema:
    return {
        "type": "object",
        "description": "How many timeline entries of `kind` the contact has (0 for none).",
        "required": ["kind", "count_operator", "count_value"],
        "properties": {
            "kind": {"type": "string", "description": "A timeline entry kind: `custom_event.<event_name>`, ..."},
            "count_operator": _enum(rules.COUNT_OPERATORS),
            "count_value": {"type": "integer", "minimum": 0},
            "timeframe_operator": _enum(v.TIMELINE_TIMEFRAME_OPERATORS, "Default `anytime`."),
            "timeframe_values": {
                "type": "array",
                "items": {"type": "string"},
                "description": "RFC 3339 date-times; a number of days as text for in_the_last_days.",
            },
            "template_id": {"type": "string", "description": "Email kinds only."},
        },
    }


def _contact_condition() -> Schema:
    fields = [name for name in v.CONTACT_FIELDS if name != "properties"]
    shown = {"properties": f"{v.PROPERTIES_PREFIX}<key>"}
    by_field = "; ".join(f"`{shown.get(name, name)}`: {', '.join(f.operators)}" for name, f in v.CONTACT_FIELDS.items())
    return {
        "type": "object",
        "required": ["field", "operator"],
        "properties": {
            "field": {
                "type": "string",
                "description": f"One of {', '.join(fields)}, or `{v.PROPERTIES_PREFIX}<key>`.",
            },
            "operator": _enum(rules.CONTACT_OPERATORS, f"Which field takes which: {by_field}."),
            "value": {
                "oneOf": [{"type": "string"}, {"type": "number"}],
                "description": "How many values each operator takes: " + _arities(v.CONTACT_OPERATORS_BY_NAME) + ".",
            },
        },
    }


def _segment_condition() -> Schema:
    return {
        "type": "object",
        "required": ["segment_id", "operator"],
        "properties": {
            "segment_id": {"type": "string", "description": "Another segment's id (slug)."},
            "operator": _enum(rules.SEGMENT_OPERATORS),
        },
    }


def _rfm_condition() -> Schema:
    by_field = "; ".join(
        f"`{name}`: " + (", ".join(field.operators) if field.operators else "a timeframe")
        for name, field in v.RFM_FIELDS.items()
    )
    return {
        "type": "object",
        "required": ["model", "field"],
        "properties": {
            "model": {"type": "string", "description": "An RFM model's id (rfmModels.list)."},
            "field": _enum(list(v.RFM_FIELDS), f"Which field takes which operator: {by_field}."),
            "operator": _enum([*v.RFM_GROUP_OPERATORS, *rules.COMPARISON_OPERATORS]),
            "values": {
                "type": "array",
                "items": {"type": "string"},
                "description": "group / previous_group: group ids (prospect and lapsed included).",
            },
            "value": {"type": "number", "description": "r f m: 1-5; days and orders whole; money 2 decimals."},
            "value_2": {"type": "number", "description": "With `between`: the upper bound (>= value)."},
            **_timeframe(),
        },
    }


# One body schema per source (``vocabulary.SOURCES``): its component name and schema.
CONDITIONS: dict[str, tuple[str, Any]] = {
    "custom_events_goals": ("RuleGoalCondition", _goal_condition),
    "custom_events": ("RuleEventCondition", _event_condition),
    "contacts": ("RuleContactCondition", _contact_condition),
    "segment": ("RuleSegmentCondition", _segment_condition),
    "rfm": ("RuleRfmCondition", _rfm_condition),
    "contact_timeline": ("RuleTimelineCondition", _timeline_condition),
}


def rule_tree_components() -> dict[str, Schema]:
    """The components of a rule tree, by name: ``RuleNode`` is the tree (and each node in it)."""
    components: dict[str, Schema] = {
        "RuleNode": {
            "type": "object",
            "description": "A rule tree node: a `branch` of nodes or a `leaf` condition; `negate` is the "
            f"exact complement. At most {rules.MAX_DEPTH} levels and {rules.MAX_LEAVES} leaves.",
            "required": ["kind"],
            "properties": {
                "kind": _enum(["branch", "leaf"]),
                "negate": {"type": "boolean", "default": False},
                "branch": _ref("RuleBranch"),
                "leaf": _ref("RuleLeaf"),
            },
        },
        "RuleBranch": {
            "type": "object",
            "required": ["operator", "leaves"],
            "properties": {
                "operator": _enum(rules.BRANCH_OPERATORS),
                "leaves": {"type": "array", "minItems": 1, "items": _ref("RuleNode")},
            },
        },
        "RuleLeaf": {
            "type": "object",
            "description": "`source` says which one of the other members holds the condition.",
            "required": ["source"],
            "properties": {
                "source": _enum(list(v.SOURCES)),
                **{v.SOURCE_KEYS[source]: _ref(name) for source, (name, _) in CONDITIONS.items()},
            },
        },
    }
    # Its own component: an inline enum would collide with the events' goal_type (no "*").
    components["RuleGoalType"] = _enum(list(v.GOAL_TYPES), f"`{rules.ANY_GOAL_TYPE}` is any goal type.")
    components |= {name: schema() for name, schema in CONDITIONS.values()}
    # A contacts leaf has two spellings: ours (RuleContactCondition) or Notifuse's filters.
    components |= {"RuleContactFilters": _contact_filters(), "RuleDimensionFilter": _dimension_filter()}
    components["RuleLeaf"]["properties"][v.SOURCE_KEYS["contacts"]] = {
        "description": "A contact field condition (`field`, `operator`, `value`), or Notifuse's spelling: "
        "`filters`, DimensionFilters that all must hold.",
        "oneOf": [_ref("RuleContactCondition"), _ref("RuleContactFilters")],
    }
    return components


class RuleTreeFieldExtension(OpenApiSerializerFieldExtension):
    """Documents ``RuleTreeField`` as a ``RuleNode``, registering the tree's components once."""

    target_class = "segments.api.serializers.RuleTreeField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> Schema:
        for name, schema in rule_tree_components().items():
            component = ResolvedComponent(name=name, type=ResolvedComponent.SCHEMA, object=name, schema=schema)
            auto_schema.registry.register_on_missing(component)
        return _ref("RuleNode")
