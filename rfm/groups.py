"""Group maps: which named group each R-F-M code belongs to (RFM §3). Pure, no queries.

A map resolves to ``{(r, f, m): group_id}`` covering all n³ codes of its scale. Built-in maps
are named (``klaviyo6`` for scale 3, ``classic11`` for scale 5); a custom map is an ordered list of
``{"name", "r": [lo, hi], "f": [lo, hi], "m": [lo, hi]}`` rules, first match wins, and must cover
every code and reach every group it names.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError

PROSPECT = "prospect"  # no live order ever
LAPSED = "lapsed"  # orders exist, none in the window
UNSCORED_GROUPS = (PROSPECT, LAPSED)

Code = tuple[int, int, int]

KLAVIYO6_CODES: dict[str, tuple[str, ...]] = {
    "champions": ("333", "332", "323"),
    "loyal": ("321", "322", "331", "232", "233"),
    "recent": ("312", "313", "311", "222", "223"),
    "needs_attention": ("213", "221", "123", "132", "133"),
    "at_risk": ("231", "212", "122", "131", "211"),
    "inactive": ("111", "112", "113", "121"),
}

# R (rows, 5 first) x F (columns 1..5); M does not decide the group.
CLASSIC11_GRID: dict[int, tuple[str, str, str, str, str]] = {
    5: ("new_customers", "potential_loyalist", "potential_loyalist", "champions", "champions"),
    4: ("promising", "potential_loyalist", "potential_loyalist", "loyal", "loyal"),
    3: ("about_to_sleep", "about_to_sleep", "needs_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    1: ("lost", "hibernating", "at_risk", "at_risk", "cant_lose"),
}

BUILTIN_MAP_SCALE = {"klaviyo6": 3, "classic11": 5}

# Group ids in the order a reader expects them (best first), then the unscored ones.
KLAVIYO6_GROUPS = tuple(KLAVIYO6_CODES)
CLASSIC11_GROUPS = (
    "champions",
    "loyal",
    "potential_loyalist",
    "new_customers",
    "promising",
    "needs_attention",
    "about_to_sleep",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)

DISPLAY_NAMES = {
    "champions": "Champions",
    "loyal": "Loyal",
    "recent": "Recent",
    "needs_attention": "Needs attention",
    "at_risk": "At risk",
    "inactive": "Inactive",
    "potential_loyalist": "Potential loyalist",
    "new_customers": "New customers",
    "promising": "Promising",
    "about_to_sleep": "About to sleep",
    "cant_lose": "Can't lose them",
    "hibernating": "Hibernating",
    "lost": "Lost",
    PROSPECT: "Prospect",
    LAPSED: "Lapsed",
}

GROUP_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,47}\Z")


def display_name(group: str) -> str:
    return DISPLAY_NAMES.get(group) or group.replace("_", " ").capitalize()


def all_codes(scale: int) -> list[Code]:
    values = range(1, scale + 1)
    return list(itertools.product(values, values, values))


def _error(path: str, message: str) -> ValidationError:
    return ValidationError({path: [message]})


def _range(rule: Mapping[str, Any], key: str, scale: int, path: str) -> tuple[int, int]:
    value = rule.get(key, [1, scale])
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        raise _error(f"{path}.{key}", f"Expected [lo, hi], two whole numbers from 1 to {scale}.")
    lo, hi = value
    if not 1 <= lo <= hi <= scale:
        raise _error(f"{path}.{key}", f"Expected 1 <= lo <= hi <= {scale}, got [{lo}, {hi}].")
    return lo, hi


def validate_group_map(group_map: Any, *, scale: int) -> str | list[dict[str, Any]]:
    """The map in canonical form (a built-in name, or the custom rules with every range filled
    in), or a ``ValidationError`` naming the path (``group_map[2].r``, ``group_map: code 302 ...``)."""
    if isinstance(group_map, str):
        if group_map not in BUILTIN_MAP_SCALE:
            raise _error("group_map", f"Unknown group map '{group_map}': use klaviyo6, classic11 or a list of rules.")
        if BUILTIN_MAP_SCALE[group_map] != scale:
            raise _error("group_map", f"{group_map} requires scale {BUILTIN_MAP_SCALE[group_map]}, got {scale}.")
        return group_map
    if not isinstance(group_map, list) or not group_map:
        raise _error("group_map", "Expected klaviyo6, classic11 or a non-empty list of rules.")
    rules: list[dict[str, Any]] = []
    for index, rule in enumerate(group_map):
        path = f"group_map[{index}]"
        if not isinstance(rule, dict):
            raise _error(path, 'Expected an object {"name", "r", "f", "m"}.')
        unknown = sorted(set(rule) - {"name", "r", "f", "m"})
        if unknown:
            raise _error(f"{path}.{unknown[0]}", "Unknown key: a rule has name, r, f and m.")
        name = rule.get("name")
        if not isinstance(name, str) or not GROUP_ID_PATTERN.match(name):
            raise _error(
                f"{path}.name", "Expected a group id: lowercase letters, digits and _, starting with a letter."
            )
        if name in UNSCORED_GROUPS:
            raise _error(f"{path}.name", f"'{name}' is reserved for contacts without scores.")
        rules.append({"name": name, **{k: list(_range(rule, k, scale, path)) for k in ("r", "f", "m")}})
    resolved = _resolve_rules(rules, scale)
    for code in all_codes(scale):
        if code not in resolved:
            raise _error("group_map", f"code {''.join(map(str, code))} matches no group.")
    reached = set(resolved.values())
    for index, rule in enumerate(rules):
        if rule["name"] not in reached:
            raise _error(f"group_map[{index}]", f"group '{rule['name']}' is reached by no code (earlier rules win).")
    return rules


def _resolve_rules(rules: list[dict[str, Any]], scale: int) -> dict[Code, str]:
    resolved: dict[Code, str] = {}
    for code in all_codes(scale):
        for rule in rules:
            if all(rule[k][0] <= v <= rule[k][1] for k, v in zip(("r", "f", "m"), code, strict=True)):
                resolved[code] = rule["name"]
                break
    return resolved


def resolve(group_map: str | list[dict[str, Any]], scale: int) -> dict[Code, str]:
    """Every code of the scale -> its group id (the map was validated)."""
    if group_map == "klaviyo6":
        return {(int(c[0]), int(c[1]), int(c[2])): group for group, codes in KLAVIYO6_CODES.items() for c in codes}
    if group_map == "classic11":
        return {(r, f, m): CLASSIC11_GRID[r][f - 1] for r, f, m in all_codes(5)}
    assert isinstance(group_map, list)
    return _resolve_rules(group_map, scale)


def groups_of(group_map: str | list[dict[str, Any]], scale: int) -> list[str]:
    """The map's scored groups in display order, then prospect and lapsed."""
    if group_map == "klaviyo6":
        scored = list(KLAVIYO6_GROUPS)
    elif group_map == "classic11":
        scored = list(CLASSIC11_GROUPS)
    else:
        assert isinstance(group_map, list)
        scored = list(dict.fromkeys(rule["name"] for rule in group_map))
    return [*scored, *UNSCORED_GROUPS]


def segment_template_key(model_slug: str, group: str) -> str:
    """The id of the segment template of one group of a model (``segments.templates``, the
    builder's list, the RFM page's group tiles): ``rfm:<model>:<group>``."""
    return f"rfm:{model_slug}:{group}"
