"""The segment builder's form: a rule tree as named controls, and back.

Pure logic, no query. The builder page renders one control per field, named by the node's path
(``n`` is the root, ``n.0`` its first child, ``n.0.1`` that child's second child) and the field
(``n.0.1.aggregate_operator``). Posting the form sends every control; ``tree_from_controls``
rebuilds the (unvalidated) tree from them, ``rules.validate_tree`` judges it, and
``error_slots`` maps each ``TreeValidationError`` path back to the control that caused it. So
the form's state IS the tree, the server owns the structure (add, remove, templates are form
submissions), and the page works without JavaScript.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import rules
from .rules.templates import purchase_goal
from .rules.vocabulary import (
    AGGREGATES,
    BRANCHES,
    COMPARISONS,
    CONTACT_FIELDS,
    CONTACT_OPERATORS_BY_NAME,
    COUNTS,
    DIMENSION_FIELD_TYPES,
    DIMENSION_OPERATORS,
    DIMENSION_TYPE_OPERATORS,
    DIMENSION_TYPES,
    GOAL_TYPES,
    GROUP_MEMBERSHIP,
    JSON_VALUE_OPERATORS,
    PROPERTY_FILTERS,
    RFM_FIELDS,
    SEGMENTS,
    SOURCES,
    TIMEFRAMES,
    TIMELINE_TIMEFRAME_OPERATORS,
    choices,
)

ROOT = "n"
MAX_PROPERTY_ROWS = rules.MAX_PROPERTY_FILTERS

# The options of the builder's selects, in the vocabulary's words.
GOAL_TYPE_CHOICES = list(GOAL_TYPES.items())
AGGREGATE_CHOICES = choices(AGGREGATES)
COMPARISON_CHOICES = choices(COMPARISONS)
TIMEFRAME_CHOICES = choices(TIMEFRAMES)
COUNT_CHOICES = choices(COUNTS)
PROPERTY_OPERATOR_CHOICES = choices(PROPERTY_FILTERS)
CONTACT_FIELD_CHOICES = choices(CONTACT_FIELDS)
SEGMENT_OPERATOR_CHOICES = choices(SEGMENTS)
RFM_FIELD_CHOICES = choices(RFM_FIELDS)
# Every operator an rfm field takes (the field's own list is in the help text and the errors).
RFM_OPERATOR_CHOICES = choices(GROUP_MEMBERSHIP) + choices(COMPARISONS)
SOURCE_CHOICES = choices(SOURCES)
BRANCH_CHOICES = choices(BRANCHES)
TIMELINE_TIMEFRAME_CHOICES = [(name, TIMEFRAMES[name].label) for name in TIMELINE_TIMEFRAME_OPERATORS]
DIMENSION_FIELD_CHOICES = [(name, name) for name in DIMENSION_FIELD_TYPES]
DIMENSION_TYPE_CHOICES = [(name, name) for name in DIMENSION_TYPES]
# A contacts leaf is edited as one field condition (ours) or as Notifuse's list of filters.
CONTACT_MODE_CHOICES = [("field", "One field"), ("filters", "Filters (Notifuse)")]
MAX_FILTER_ROWS = rules.MAX_DIMENSION_FILTERS
# What a value input of each kind is (``vocabulary.Operator.takes``); no kind, no input.
INPUT_TYPES = {"days": "number", "number": "number", "amount": "number", "count": "number", "date": "date"}


def default_leaf() -> dict[str, Any]:
    """A new condition: a purchase goal, with the amount left for the marketer to type."""
    return purchase_goal("sum", "gte")


def default_filter() -> dict[str, Any]:
    """A new DimensionFilter row: the email contains what the marketer types."""
    return {"field_name": "email", "field_type": "string", "operator": "contains", "string_values": []}


def default_tree() -> dict[str, Any]:
    return {"kind": "branch", "branch": {"operator": "and", "leaves": [default_leaf()]}}


def as_group(tree: Any) -> dict[str, Any]:
    """The builder always edits a group at the top; a lone leaf becomes ALL of that one leaf
    (the same contacts: a one-member AND is its member)."""
    if isinstance(tree, dict) and tree.get("kind") == "branch" and isinstance(tree.get("branch"), dict):
        return tree
    if isinstance(tree, dict) and tree.get("kind") == "leaf":
        return {"kind": "branch", "branch": {"operator": "and", "leaves": [tree]}}
    return default_tree()


# --------------------------------------------------------------------------- controls -> tree


def _split(name: str) -> tuple[str, str] | None:
    """``n.0.1.value`` -> (``n.0.1``, ``value``); None for names that are not builder controls."""
    if not name.startswith(ROOT + ".") and name != ROOT:
        return None
    path, _, control = name.rpartition(".")
    # Deeper than any tree may be (the validator stops at rules.MAX_DEPTH): not read, so a
    # hostile form cannot make the tree's recursion run out of stack.
    if path.count(".") > 2 * rules.MAX_DEPTH:
        return None
    if not path or not re.fullmatch(r"n(\.\d+)*", path) or not re.fullmatch(r"[a-z_0-9]+", control):
        return None
    if control.isdigit():
        return None
    return path, control


def tree_from_controls(data: Mapping[str, Any]) -> dict[str, Any]:
    """The tree the posted controls describe, unvalidated (blank inputs are left out, so the
    validator reports them as required at their own path)."""
    nodes: dict[str, dict[str, str]] = {}
    for name in data:
        split = _split(name)
        if split is None:
            continue
        path, control = split
        nodes.setdefault(path, {})[control] = str(data.get(name, "")).strip()
    if ROOT not in nodes:
        return default_tree()
    return _node(ROOT, nodes)


def _children(path: str, nodes: Mapping[str, dict[str, str]]) -> list[str]:
    prefix = path + "."
    indexes = {
        int(other[len(prefix) :]) for other in nodes if other.startswith(prefix) and other[len(prefix) :].isdigit()
    }
    return [f"{prefix}{index}" for index in sorted(indexes)]


def _node(path: str, nodes: Mapping[str, dict[str, str]]) -> dict[str, Any]:
    controls = nodes.get(path, {})
    node: dict[str, Any]
    if controls.get("kind") == "leaf":
        node = {"kind": "leaf", "leaf": _leaf(controls)}
    else:
        children = [_node(child, nodes) for child in _children(path, nodes)]
        node = {"kind": "branch", "branch": {"operator": controls.get("operator") or "and", "leaves": children}}
    if controls.get("negate"):
        node["negate"] = True
    return node


def _set(body: dict[str, Any], key: str, raw: str | None) -> None:
    if raw:
        body[key] = raw


def _timeframe(body: dict[str, Any], controls: Mapping[str, str]) -> None:
    operator = controls.get("timeframe_operator") or "anytime"
    body["timeframe_operator"] = operator
    arity = TIMEFRAMES[operator].arity if operator in TIMEFRAMES else 0
    body["timeframe_values"] = [controls.get(f"timeframe_value_{i}", "") for i in range(arity)]


def _goal_body(controls: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("goal_type", "goal_name", "event_name", "aggregate_operator", "operator", "value"):
        _set(body, key, controls.get(key))
    if body.get("operator") in COMPARISONS and COMPARISONS[body["operator"]].arity == 2:
        _set(body, "value_2", controls.get("value_2"))
    _timeframe(body, controls)
    return body


def _event_body(controls: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("event_name", "count_operator", "count_value"):
        _set(body, key, controls.get(key))
    properties = []
    for index in range(MAX_PROPERTY_ROWS + 1):
        if f"prop_key_{index}" not in controls:
            continue
        item: dict[str, Any] = {"key": controls[f"prop_key_{index}"]}
        item["operator"] = controls.get(f"prop_operator_{index}") or "equals"
        if item["operator"] not in PROPERTY_FILTERS or PROPERTY_FILTERS[item["operator"]].arity:
            item["value"] = controls.get(f"prop_value_{index}", "")
        properties.append(item)
    if properties:
        body["properties"] = properties
    _timeframe(body, controls)
    return body


def _contact_body(controls: Mapping[str, str]) -> dict[str, Any]:
    if controls.get("mode") == "filters":
        return _contact_filters_body(controls)
    field_name = controls.get("field") or "email"
    if field_name == "properties":
        field_name = rules.PROPERTIES_PREFIX + controls.get("property_key", "")
    body: dict[str, Any] = {"field": field_name}
    _set(body, "operator", controls.get("operator"))
    operator = CONTACT_OPERATORS_BY_NAME.get(body.get("operator", ""))
    raw = controls.get("value", "")
    # A blank value is "required", except that a column that is "" when unknown may equal "".
    may_be_empty = field_name in CONTACT_FIELDS and CONTACT_FIELDS[field_name].may_be_empty
    blank_allowed = operator is not None and operator.takes == "value" and may_be_empty
    if (operator is None or operator.arity) and (raw or blank_allowed):
        body["value"] = raw
    return body


def _contact_filters_body(controls: Mapping[str, str]) -> dict[str, Any]:
    """Notifuse's DimensionFilters, one row of controls each: ``filter_field_<i>``, ``filter_type_<i>``
    (a custom_json field's value type; the field's own type otherwise), ``filter_operator_<i>``,
    ``filter_path_<i>`` (keys joined by dots) and ``filter_value_<i>_<j>``."""
    filters = []
    for index in range(MAX_FILTER_ROWS + 1):
        if f"filter_field_{index}" not in controls:
            continue
        name = controls[f"filter_field_{index}"]
        declared = DIMENSION_FIELD_TYPES.get(name, "string")
        field_type = (controls.get(f"filter_type_{index}") or "string") if declared == "json" else declared
        item: dict[str, Any] = {"field_name": name, "field_type": field_type}
        _set(item, "operator", controls.get(f"filter_operator_{index}"))
        if declared == "json" and controls.get(f"filter_path_{index}"):
            item["json_path"] = controls[f"filter_path_{index}"].split(".")
        operator = DIMENSION_OPERATORS.get(item.get("operator", ""))
        if operator is None or operator.arity:
            values = [
                controls[f"filter_value_{index}_{j}"]
                for j in range(rules.MAX_DIMENSION_VALUES)
                if controls.get(f"filter_value_{index}_{j}")
            ]
            item["number_values" if field_type == "number" else "string_values"] = values
        filters.append(item)
    # Just switched to filters: one row to start from.
    return {"filters": filters or [default_filter()]}


def _timeline_body(controls: Mapping[str, str]) -> dict[str, Any]:
    # The entry kind's control is "entry_kind": "kind" names the node's own kind (leaf/branch).
    body: dict[str, Any] = {}
    _set(body, "kind", controls.get("entry_kind"))
    for key in ("template_id", "count_operator", "count_value"):
        _set(body, key, controls.get(key))
    _timeframe(body, controls)
    return body


def _segment_body(controls: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("segment_id", "operator"):
        _set(body, key, controls.get(key))
    return body


def _rfm_body(controls: Mapping[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("model", "field", "operator", "value"):
        _set(body, key, controls.get(key))
    field_name = body.get("field", "")
    if field_name == "group_changed_at":
        body.pop("operator", None)
        body.pop("value", None)
        _timeframe(body, controls)
    elif field_name in ("group", "previous_group"):
        body.pop("value", None)
        groups = [part.strip() for part in controls.get("values", "").split(",") if part.strip()]
        if groups:
            body["values"] = groups
    elif body.get("operator") in COMPARISONS and COMPARISONS[body["operator"]].arity == 2:
        _set(body, "value_2", controls.get("value_2"))
    return body


# One reader per source (``vocabulary.SOURCES``): the posted controls of a leaf as its body.
LEAF_CONTROLS = {
    "custom_events_goals": _goal_body,
    "custom_events": _event_body,
    "contacts": _contact_body,
    "segment": _segment_body,
    "rfm": _rfm_body,
    "contact_timeline": _timeline_body,
}


def _leaf(controls: Mapping[str, str]) -> dict[str, Any]:
    source = controls.get("source") or "custom_events_goals"
    if source not in LEAF_CONTROLS:
        source = "segment"
    return {"source": source, rules.SOURCE_KEYS[source]: LEAF_CONTROLS[source](controls)}


# --------------------------------------------------------------------------- structural edits


def _locate(tree: dict[str, Any], path: str) -> dict[str, Any] | None:
    node = tree
    for part in path.split(".")[1:]:
        if node.get("kind") != "branch":
            return None
        leaves = node["branch"]["leaves"]
        index = int(part)
        if not 0 <= index < len(leaves):
            return None
        node = leaves[index]
    return node


def apply_edit(
    tree: dict[str, Any], edit: str, *, templates: Mapping[str, dict[str, Any]] = rules.TEMPLATES
) -> dict[str, Any]:
    """Apply one structural edit named by a button (``add_leaf:n.0``, ``remove:n.0.1`` ...);
    ``template:<id>`` replaces the tree with one of ``templates`` (the workspace's)."""
    tree = copy.deepcopy(tree)
    action, _, target = edit.partition(":")
    if action == "template":
        template = templates.get(target)
        return as_group(copy.deepcopy(template["tree"])) if template else tree
    path, _, extra = target.partition(":")
    if not re.fullmatch(r"n(\.\d+)*", path):
        return tree
    node = _locate(tree, path)
    if node is None:
        return tree
    if action in ("add_leaf", "add_group") and node.get("kind") == "branch":
        if action == "add_leaf":
            new = default_leaf()
        else:
            new = {"kind": "branch", "branch": {"operator": "or", "leaves": [default_leaf()]}}
        node["branch"]["leaves"].append(new)
    elif action == "remove" and path != ROOT:
        parent_path, _, index = path.rpartition(".")
        parent = _locate(tree, parent_path)
        if parent is not None and parent.get("kind") == "branch":
            del parent["branch"]["leaves"][int(index)]
    elif action in ("add_filter", "remove_filter") and node.get("kind") == "leaf":
        body = node["leaf"].get("contact")
        if isinstance(body, dict) and isinstance(body.get("filters"), list):
            filters = body["filters"]
            if action == "add_filter" and len(filters) < MAX_FILTER_ROWS:
                filters.append(default_filter())
            elif action == "remove_filter" and extra.isdigit() and int(extra) < len(filters) and len(filters) > 1:
                del filters[int(extra)]
    elif action in ("add_prop", "remove_prop") and node.get("kind") == "leaf":
        body = node["leaf"].get("custom_event")
        if isinstance(body, dict):
            properties = body.setdefault("properties", [])
            if action == "add_prop" and len(properties) < MAX_PROPERTY_ROWS:
                properties.append({"key": "", "operator": "equals", "value": ""})
            elif action == "remove_prop" and extra.isdigit() and int(extra) < len(properties):
                del properties[int(extra)]
    return tree


# --------------------------------------------------------------------------- errors -> controls

_LEAVES = re.compile(r"\.branch\.leaves\[(\d+)\]")


def error_slots(errors: Mapping[str, list[str]]) -> dict[tuple[str, str], list[str]]:
    """Map validator paths to (node path, control): ``tree.branch.leaves[0].leaf.custom_events_goal.value``
    -> (``n.0``, ``value``). Messages about a node as a whole go to control ``""``."""
    slots: dict[tuple[str, str], list[str]] = {}
    for raw_path, messages in errors.items():
        rest = raw_path.removeprefix("tree")
        node = ROOT
        while True:
            match = _LEAVES.match(rest)
            if not match:
                break
            node += f".{match.group(1)}"
            rest = rest[match.end() :]
        control = _control_for(rest)
        slots.setdefault((node, control), []).extend(messages)
    return slots


def _control_for(rest: str) -> str:
    """The control named by what follows the node in a validator path."""
    rest = rest.lstrip(".")
    if rest in ("", "kind", "negate", "branch", "branch.leaves", "leaf", "leaf.source"):
        return ""
    if rest == "branch.operator":
        return "operator"
    parts = rest.split(".")
    if parts[0] == "leaf" and len(parts) >= 3:
        name = ".".join(parts[2:])
        if match := re.fullmatch(r"timeframe_values\[(\d+)\]", name):
            return f"timeframe_value_{match.group(1)}"
        if name == "timeframe_values":
            return "timeframe_value_0"
        if match := re.fullmatch(r"properties\[(\d+)\](?:\.(\w+))?", name):
            return f"prop_{match.group(2) or 'key'}_{match.group(1)}"
        if parts[1] == rules.SOURCE_KEYS["contact_timeline"] and name == "kind":
            return "entry_kind"
        if match := re.fullmatch(r"filters\[(\d+)\](?:\.(\w+)(?:\[(\d+)\])?)?", name):
            return _filter_control(int(match.group(1)), match.group(2) or "", match.group(3))
        return name
    return ""


def _filter_control(index: int, key: str, position: str | None) -> str:
    """The control of a DimensionFilter's field in a validator path."""
    if key in ("string_values", "number_values"):
        return f"filter_value_{index}_{position or 0}"
    named = {"field_type": "type", "operator": "operator", "json_path": "path"}
    return f"filter_{named.get(key, 'field')}_{index}"


# --------------------------------------------------------------------------- view model


@dataclass
class BuilderNode:
    """One node as the template renders it."""

    path: str
    kind: str
    negate: bool
    depth: int
    operator: str = "and"
    children: list[BuilderNode] = field(default_factory=list)
    source: str = "custom_events_goals"
    values: dict[str, str] = field(default_factory=dict)
    properties: list[dict[str, Any]] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    arity: int = 0  # how many values the timeframe takes
    errors: dict[str, list[str]] = field(default_factory=dict)
    label: str = ""
    label_errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        """The HTML id prefix: dots are awkward in CSS selectors."""
        return self.path.replace(".", "-")

    @property
    def is_root(self) -> bool:
        return self.path == ROOT

    @property
    def node_errors(self) -> list[str]:
        return self.errors.get("", [])

    @property
    def fields_template(self) -> str:
        """The template of this leaf's controls: one per source."""
        return f"segments/_leaf_{self.source}.html"

    @property
    def on_property(self) -> bool:
        """Whether a contact condition compares a property (``properties.<key>``), not a column."""
        return self.values.get("field") == "properties"

    @property
    def timeframe_takes(self) -> str:
        """What the timeframe's values are: ``days``, ``date`` or nothing."""
        operator = TIMEFRAMES.get(self.values.get("timeframe_operator", "anytime"))
        return operator.takes if operator else ""

    @property
    def takes_second_value(self) -> bool:
        """Whether the goal comparison takes a second value (``value_2``)."""
        operator = COMPARISONS.get(self.values.get("operator", ""))
        return operator is not None and operator.arity == 2

    @property
    def contact_operators(self) -> list[tuple[str, str]]:
        family = self.values.get("field") or "email"
        operators = rules.CONTACT_FIELD_OPERATORS.get(family, rules.TEXT_FIELD_OPERATORS)
        return [(name, CONTACT_OPERATORS_BY_NAME[name].label) for name in operators]

    @property
    def contact_value_type(self) -> str:
        """The input the contact comparison's value needs: ``number``, ``date``, ``text`` or ``none``."""
        operator = CONTACT_OPERATORS_BY_NAME.get(self.values.get("operator", ""))
        if operator is None:
            return "text"
        if operator.arity == 0:
            return "none"
        return INPUT_TYPES.get(operator.takes, "text")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_view(
    tree: dict[str, Any],
    *,
    errors: Mapping[str, list[str]] | None = None,
    segment_names: Mapping[str, str] | None = None,
) -> BuilderNode:
    """The view model of a (possibly invalid) tree; ``errors`` are validator paths."""
    slots = error_slots(errors or {})
    return _view(as_group(tree), ROOT, 0, slots, segment_names or {})


def _view(
    node: Any, path: str, depth: int, slots: Mapping[tuple[str, str], list[str]], names: Mapping[str, str]
) -> BuilderNode:
    node = node if isinstance(node, dict) else {}
    errors = {control: messages for (node_path, control), messages in slots.items() if node_path == path}
    negate = node.get("negate") is True
    if node.get("kind") == "branch":
        branch = node.get("branch") or {}
        leaves = branch["leaves"] if isinstance(branch.get("leaves"), list) else []
        return BuilderNode(
            path=path,
            kind="branch",
            negate=negate,
            depth=depth,
            operator=branch["operator"] if branch.get("operator") in BRANCHES else "and",
            children=[_view(child, f"{path}.{i}", depth + 1, slots, names) for i, child in enumerate(leaves)],
            errors=errors,
        )
    leaf = node["leaf"] if isinstance(node.get("leaf"), dict) else {}
    source = leaf["source"] if leaf.get("source") in rules.SOURCE_KEYS else "custom_events_goals"
    body = leaf.get(rules.SOURCE_KEYS[source]) or {}
    values: dict[str, str] = {}
    properties: list[dict[str, Any]] = []
    arity = 0
    filters: list[dict[str, Any]] = []
    if source == "contacts" and isinstance(body.get("filters"), list):
        values["mode"] = "filters"
        filters = [_filter_row(item) for item in body["filters"] if isinstance(item, dict)]
    elif source == "contacts":
        values["mode"] = "field"
        field_name = _text(body.get("field")) or "email"
        if field_name.startswith(rules.PROPERTIES_PREFIX):
            values["field"] = "properties"
            values["property_key"] = field_name[len(rules.PROPERTIES_PREFIX) :]
        else:
            values["field"] = field_name
        values["operator"] = _text(body.get("operator"))
        values["value"] = _text(body.get("value"))
    else:
        for key, raw in body.items():
            if key == "properties" and isinstance(raw, list):
                properties = [_property_row(item) for item in raw if isinstance(item, dict)]
            elif key == "timeframe_values" and isinstance(raw, list):
                for i, value in enumerate(raw[:2]):
                    values[f"timeframe_value_{i}"] = _text(value)
            elif key == "values" and isinstance(raw, list):  # an rfm leaf's groups, typed comma-separated
                values["values"] = ", ".join(_text(value) for value in raw)
            else:
                values[key] = _text(raw)
        timeframe = TIMEFRAMES.get(values.get("timeframe_operator", "anytime"))
        arity = timeframe.arity if timeframe else 0
        if source == "contact_timeline":
            values["entry_kind"] = values.pop("kind", "")
    view = BuilderNode(
        path=path,
        kind="leaf",
        negate=negate,
        depth=depth,
        source=source,
        values=values,
        properties=properties,
        filters=filters,
        arity=arity,
        errors=errors,
    )
    view.label, view.label_errors = _label(node, names)
    return view


def _property_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """One property filter's controls; ``takes_value`` unless its operator is known to take none."""
    row: dict[str, Any] = {k: _text(item.get(k)) for k in ("key", "operator", "value")}
    operator = PROPERTY_FILTERS.get(row["operator"])
    row["takes_value"] = operator is None or operator.arity > 0
    return row


def _filter_row(item: Mapping[str, Any]) -> dict[str, Any]:
    """One DimensionFilter's controls: its operators are those its type takes, its value inputs
    as many as it has values (at least as many as the operator takes)."""
    name = _text(item.get("field_name"))
    declared = DIMENSION_FIELD_TYPES.get(name, "string")
    field_type = _text(item.get("field_type")) or declared
    operators = (JSON_VALUE_OPERATORS if declared == "json" else DIMENSION_TYPE_OPERATORS).get(field_type, ())
    operator = _text(item.get("operator"))
    word = DIMENSION_OPERATORS.get(operator)
    raw = item.get("number_values") or item.get("string_values") or []
    values = [_text(value) for value in raw] if isinstance(raw, list) else []
    arity = word.arity if word is not None else 1
    values += [""] * (arity - len(values))
    path = item.get("json_path")
    takes = word.takes if word is not None else ""
    return {
        "field_name": name,
        "field_type": field_type,
        "is_json": declared == "json",
        "operator": operator,
        "operators": [(op_name, DIMENSION_OPERATORS[op_name].label) for op_name in operators],
        "path": ".".join(str(part) for part in path) if isinstance(path, list) else "",
        "values": values if arity else [],
        "input_type": "number" if field_type == "number" or takes == "days" else "text",
        "placeholder": "2026-03-01 or 2026-03-01T00:00:00Z" if takes == "date" else "",
    }


def _label(node: dict[str, Any], names: Mapping[str, str]) -> tuple[str, list[str]]:
    """A leaf in words (``rules.describe``) if it is complete, else what it still needs."""
    try:
        valid = rules.validate_tree({"kind": "leaf", "leaf": node.get("leaf"), "negate": node.get("negate", False)})
    except rules.TreeValidationError as exc:
        problems: list[str] = []
        for raw_path, messages in exc.errors.items():
            control = _control_for(raw_path.removeprefix("tree"))
            where = control.replace("_", " ").capitalize() if control else "Condition"
            problems.extend(f"{where}: {message}" for message in messages)
        return "", problems
    return rules.describe(valid, segment_names=names), []


def walk(view: BuilderNode) -> list[BuilderNode]:
    """Every node of the view, depth first."""
    nodes = [view]
    for child in view.children:
        nodes.extend(walk(child))
    return nodes
