"""Model configuration (RFM §1, §3): defaults, the klaviyo preset, and every invalid input refused
at its path: cut counts and order, money decimals, windows, scales, and custom group maps that
leave a code uncovered or a group unreachable."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from rfm import groups
from rfm.config import validate_config


def _error(data: dict[str, Any]) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        validate_config(data)
    return caught.value.message_dict


def test_defaults_and_the_klaviyo_preset() -> None:
    """No input is the classic 1-5 grid over a year of purchases; the klaviyo preset is scale 3,
    recency cut at 180 / 365 days, all time, klaviyo6."""
    # then
    assert validate_config({}) == {
        "goal_types": ["purchase"],
        "event_names": None,
        "window_days": 365,
        "scale": 5,
        "recency": {"mode": "quantile"},
        "frequency": {"mode": "quantile"},
        "monetary": {"mode": "quantile"},
        "group_map": "classic11",
    }
    klaviyo = validate_config({"preset": "klaviyo"})
    assert (klaviyo["scale"], klaviyo["window_days"], klaviyo["group_map"]) == (3, None, "klaviyo6")
    assert klaviyo["recency"] == {"mode": "thresholds", "cuts": [180, 365]}
    # a preset's keys may be overridden
    assert validate_config({"preset": "klaviyo", "window_days": 730})["window_days"] == 730


@pytest.mark.parametrize(
    ("data", "path", "fragment"),
    [
        ({"scale": 4}, "scale", "3 or 5"),
        ({"scale": 3, "group_map": "classic11"}, "group_map", "requires scale 5"),
        ({"recency": {"mode": "thresholds", "cuts": [7, 30]}}, "recency.cuts", "exactly 4"),
        ({"recency": {"mode": "thresholds", "cuts": [7, 30, 30, 90]}}, "recency.cuts[2]", "strictly increasing"),
        ({"frequency": {"mode": "thresholds", "cuts": [2, 3.5, 5, 8]}}, "frequency.cuts[1]", "whole number"),
        ({"monetary": {"mode": "thresholds", "cuts": ["10", "20.005", "30", "40"]}}, "monetary.cuts[1]", "2 decimals"),
        ({"monetary": {"mode": "thresholds", "cuts": [10, "abc", 30, 40]}}, "monetary.cuts[1]", "amount"),
        ({"recency": {"mode": "ntile"}}, "recency.mode", "quantile or thresholds"),
        ({"recency": {"mode": "quantile", "cuts": [1, 2, 3, 4]}}, "recency.cuts", "no cuts"),
        ({"window_days": 0}, "window_days", "1 to 3650"),
        ({"window_days": 3651}, "window_days", "1 to 3650"),
        ({"goal_types": ["purchase", "refund"]}, "goal_types[1]", "Unknown goal type"),
        ({"goal_types": []}, "goal_types", "non-empty"),
        ({"event_names": []}, "event_names", "non-empty"),
        ({"preset": "braze"}, "preset", "Unknown preset"),
    ],
)
def test_invalid_settings_name_their_path(data: dict[str, Any], path: str, fragment: str) -> None:
    """Each bad input is refused at its own path, with a message saying what is expected."""
    # when
    errors = _error(data)
    # then
    assert list(errors) == [path]
    assert fragment in errors[path][0]


def test_a_custom_map_must_cover_every_code_and_reach_every_group() -> None:
    """First match wins; a code no rule matches and a group every code reaches earlier are 400s."""
    # given
    uncovered = [
        {"name": "best", "r": [3, 3], "f": [1, 3], "m": [1, 3]},
        {"name": "rest", "r": [1, 2], "f": [1, 3], "m": [1, 2]},
    ]
    shadowed = [{"name": "all", "r": [1, 3]}, {"name": "never", "r": [3, 3], "f": [3, 3]}]
    # then
    assert _error({"scale": 3, "group_map": uncovered}) == {"group_map": ["code 113 matches no group."]}
    assert "reached by no code" in _error({"scale": 3, "group_map": shadowed})["group_map[1]"][0]
    assert "reserved" in _error({"scale": 3, "group_map": [{"name": "prospect"}]})["group_map[0].name"][0]
    assert "lo <= hi" in _error({"scale": 3, "group_map": [{"name": "x", "r": [3, 1]}]})["group_map[0].r"][0]
    # a valid one: ranges default to the whole scale, first match wins
    rules = validate_config({"scale": 3, "group_map": [{"name": "top", "r": [3, 3]}, {"name": "rest"}]})["group_map"]
    resolved = groups.resolve(rules, 3)
    assert resolved[(3, 1, 1)] == "top" and resolved[(2, 3, 3)] == "rest" and len(resolved) == 27


def test_the_built_in_maps_are_the_design_notes_tables() -> None:
    """klaviyo6 maps all 27 codes to six groups; classic11 ignores M and puts R1F1 in lost."""
    # when
    klaviyo = groups.resolve("klaviyo6", 3)
    classic = groups.resolve("classic11", 5)
    # then
    assert len(klaviyo) == 27 and set(klaviyo.values()) == set(groups.KLAVIYO6_GROUPS)
    assert len(classic) == 125 and set(classic.values()) == set(groups.CLASSIC11_GROUPS)
    assert classic[(1, 1, 5)] == "lost" and classic[(5, 1, 1)] == "new_customers" and classic[(2, 5, 3)] == "cant_lose"
