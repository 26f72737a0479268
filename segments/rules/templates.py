"""The segment templates: named, described rule trees a marketer starts from (``segments.create``
with ``template``, ``segments.templates``, the builder's template buttons, the RFM page's group
tiles): the seed's three (``TEMPLATES``), and one per group of each RFM model of the workspace
(``rfm_group_templates``, from the models a selector read). Pure: no query here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

from contacts.models import GoalType
from rfm import groups as rfm_groups
from segments.models import SEGMENT_SLUG_MAX_LENGTH


def purchase_goal(
    aggregate: str, operator: str, value: int | None = None, timeframe: str = "anytime", days: int | None = None
) -> dict[str, Any]:
    """A leaf on the contact's purchases (``value`` None: left for the marketer to fill in)."""
    body: dict[str, Any] = {"goal_type": GoalType.PURCHASE.value, "aggregate_operator": aggregate, "operator": operator}
    if value is not None:
        body["value"] = value
    body |= {"timeframe_operator": timeframe, "timeframe_values": [str(days)] if days is not None else []}
    return {"kind": "leaf", "leaf": {"source": "custom_events_goals", "custom_events_goal": body}}


def rfm_group_leaf(model_slug: str, group: str) -> dict[str, Any]:
    """A leaf on the contact's group under an RFM model (RFM §7)."""
    body = {"model": model_slug, "field": "group", "operator": "in", "values": [group]}
    return {"kind": "leaf", "leaf": {"source": "rfm", "rfm": body}}


def _template(name: str, description: str, color: str, *conditions: dict[str, Any]) -> dict[str, Any]:
    """A template whose contacts match ALL of ``conditions``."""
    tree = {"kind": "branch", "branch": {"operator": "and", "leaves": list(conditions)}}
    return {"name": name, "description": description, "color": color, "tree": tree}


# The seed's three: id -> name, description, colour and the conditions on purchases a contact
# must ALL meet, each as ``purchase_goal``'s arguments (aggregate, operator, value, timeframe, days).
_SEED_TEMPLATES: dict[str, tuple[str, str, str, list[tuple[Any, ...]]]] = {
    "vip": (
        "VIP",
        "Spent 1,000 or more in at least 5 purchases, and bought in the last 60 days.",
        "#7c3aed",
        [("sum", "gte", 1000), ("count", "gte", 5), ("count", "gte", 1, "in_the_last_days", 60)],
    ),
    "at_risk_high_value": (
        "At-Risk High-Value",
        "Spent 500 or more overall, but no purchase in the last 90 days.",
        "#dc2626",
        [("sum", "gte", 500), ("count", "eq", 0, "in_the_last_days", 90)],
    ),
    # Precisely: the contact's earliest live purchase ever is worth more than 200 and happened in
    # the last 30 days (no purchase before that, at least one within it).
    "new_high_potential": (
        "New High-Potential",
        "First purchase, made in the last 30 days, was over 200.",
        "#059669",
        [
            ("first", "gt", 200),
            ("count", "eq", 0, "more_than_days_ago", 30),
            ("count", "gte", 1, "in_the_last_days", 30),
        ],
    ),
}

TEMPLATES: dict[str, dict[str, Any]] = {
    key: _template(name, description, color, *(purchase_goal(*condition) for condition in conditions))
    for key, (name, description, color, conditions) in _SEED_TEMPLATES.items()
}


class RfmModelLike(Protocol):
    """What a group template needs of an RFM model (an ``RfmModel``)."""

    slug: str
    name: str
    scale: int
    group_map: Any


# The colour of a group's segment: green for the best, amber for the slipping, red for the
# lost, grey for the unscored; a custom map's own groups take the default blue.
GROUP_COLORS = {
    "champions": "#059669",
    "loyal": "#10b981",
    "potential_loyalist": "#0d9488",
    "new_customers": "#0891b2",
    "recent": "#0891b2",
    "promising": "#0284c7",
    "needs_attention": "#d97706",
    "about_to_sleep": "#ca8a04",
    "at_risk": "#ea580c",
    "cant_lose": "#dc2626",
    "hibernating": "#9f1239",
    "inactive": "#9f1239",
    "lost": "#7f1d1d",
    rfm_groups.PROSPECT: "#6b7280",
    rfm_groups.LAPSED: "#4b5563",
}
DEFAULT_GROUP_COLOR = "#2563eb"


def rfm_group_templates(models: Iterable[RfmModelLike]) -> dict[str, dict[str, Any]]:
    """One template per group of each model's map (then prospect and lapsed), keyed
    ``rfm:<model>:<group>``: the contacts whose group is that group, named by the group's display
    name; ``slug`` is the id a new segment made from it gets (``<model>_<group>``)."""
    templates: dict[str, dict[str, Any]] = {}
    for model in models:
        for group in rfm_groups.groups_of(model.group_map, model.scale):
            name = rfm_groups.display_name(group)
            template = _template(
                name,
                f"Contacts in the {name} group of the RFM model {model.name}.",
                GROUP_COLORS.get(group, DEFAULT_GROUP_COLOR),
                rfm_group_leaf(model.slug, group),
            )
            key = rfm_groups.segment_template_key(model.slug, group)
            templates[key] = template | {"slug": f"{model.slug}_{group}"[:SEGMENT_SLUG_MAX_LENGTH]}
    return templates


def template_defaults(template: dict[str, Any]) -> dict[str, str]:
    """What a template gives a new segment besides its tree: its name and colour (what was typed or
    sent wins; the API and the builder both fill only what is missing)."""
    return {"name": template["name"], "color": template["color"]}
