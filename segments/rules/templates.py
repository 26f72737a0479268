"""The built-in segment templates: named, described rule trees a marketer starts from
(``segments.create`` with ``template``, the builder's template buttons)."""

from __future__ import annotations

from typing import Any

from contacts.models import GoalType


def purchase_goal(
    aggregate: str, operator: str, value: int | None = None, timeframe: str = "anytime", days: int | None = None
) -> dict[str, Any]:
    """A leaf on the contact's purchases (``value`` None: left for the marketer to fill in)."""
    body: dict[str, Any] = {"goal_type": GoalType.PURCHASE.value, "aggregate_operator": aggregate, "operator": operator}
    if value is not None:
        body["value"] = value
    body |= {"timeframe_operator": timeframe, "timeframe_values": [str(days)] if days is not None else []}
    return {"kind": "leaf", "leaf": {"source": "custom_events_goals", "custom_events_goal": body}}


def _template(name: str, description: str, color: str, *conditions: dict) -> dict[str, Any]:
    """A template whose contacts match ALL of ``conditions``."""
    tree = {"kind": "branch", "branch": {"operator": "and", "leaves": list(conditions)}}
    return {"name": name, "description": description, "color": color, "tree": tree}


TEMPLATES: dict[str, dict[str, Any]] = {
    "vip": _template(
        "VIP",
        "Spent 1,000 or more in at least 5 purchases, and bought in the last 60 days.",
        "#7c3aed",
        purchase_goal("sum", "gte", 1000),
        purchase_goal("count", "gte", 5),
        purchase_goal("count", "gte", 1, "in_the_last_days", 60),
    ),
    "at_risk_high_value": _template(
        "At-Risk High-Value",
        "Spent 500 or more overall, but no purchase in the last 90 days.",
        "#dc2626",
        purchase_goal("sum", "gte", 500),
        purchase_goal("count", "eq", 0, "in_the_last_days", 90),
    ),
    # Precisely: the contact's earliest live purchase ever is worth more than 200 and happened in
    # the last 30 days (no purchase before that, at least one within it).
    "new_high_potential": _template(
        "New High-Potential",
        "First purchase, made in the last 30 days, was over 200.",
        "#059669",
        purchase_goal("first", "gt", 200),
        purchase_goal("count", "eq", 0, "more_than_days_ago", 30),
        purchase_goal("count", "gte", 1, "in_the_last_days", 30),
    ),
}


def template_defaults(key: str) -> dict[str, str]:
    """What a template gives a new segment besides its tree: its name and colour (what was typed or
    sent wins; the API and the builder both fill only what is missing)."""
    template = TEMPLATES[key]
    return {"name": template["name"], "color": template["color"]}
