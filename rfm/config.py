"""An RFM model's configuration (RFM §1): validation to a canonical form, defaults and presets.

Pure, no queries. Errors are ``ValidationError``s keyed by the request path (``recency.cuts[1]``,
``group_map``), which the API answers as a 400 naming it.
"""

from __future__ import annotations

import zoneinfo
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError

from contacts.models import EVENT_NAME_MAX_LENGTH, GoalType

from . import groups

DIMENSIONS = ("recency", "frequency", "monetary")
SCALES = (3, 5)
WINDOW_DAYS_MAX = 3650
QUANTILE = "quantile"
THRESHOLDS = "thresholds"

# A new model without a preset: every dimension ranked, the classic 1-5 grid, the last year.
DEFAULTS: dict[str, Any] = {
    "goal_types": [GoalType.PURCHASE.value],
    "event_names": None,
    "window_days": 365,
    "scale": 5,
    "recency": {"mode": QUANTILE},
    "frequency": {"mode": QUANTILE},
    "monetary": {"mode": QUANTILE},
    "group_map": "classic11",
}

# Klaviyo's analysis: scale 3, recency by fixed days, all time (a 365-day window would make R=1
# unreachable with these cuts).
PRESETS: dict[str, dict[str, Any]] = {
    "klaviyo": {
        "goal_types": [GoalType.PURCHASE.value],
        "event_names": None,
        "window_days": None,
        "scale": 3,
        "recency": {"mode": THRESHOLDS, "cuts": [180, 365]},
        "frequency": {"mode": QUANTILE},
        "monetary": {"mode": QUANTILE},
        "group_map": "klaviyo6",
    },
}

CONFIG_FIELDS = ("goal_types", "event_names", "window_days", "scale", *DIMENSIONS, "group_map")


def _error(path: str, message: str) -> ValidationError:
    return ValidationError({path: [message]})


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_timezone_name(value: Any, path: str = "timezone") -> str:
    if not isinstance(value, str) or value not in zoneinfo.available_timezones():
        raise _error(path, f"'{value}' is not an IANA timezone (for example Europe/Paris).")
    return value


def _goal_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise _error("goal_types", "Expected a non-empty list of goal types.")
    for index, item in enumerate(value):
        if item not in GoalType.values:
            raise _error(f"goal_types[{index}]", f"Unknown goal type '{item}': one of {', '.join(GoalType.values)}.")
    return sorted(set(value))


def _event_names(value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise _error("event_names", "Expected null (any event) or a non-empty list of event names.")
    for index, item in enumerate(value):
        if not isinstance(item, str) or not item or len(item) > EVENT_NAME_MAX_LENGTH:
            raise _error(f"event_names[{index}]", f"Expected an event name of 1 to {EVENT_NAME_MAX_LENGTH} characters.")
    return sorted(set(value))


def _window_days(value: Any) -> int | None:
    if value is None:
        return None
    if not _whole(value) or not 1 <= value <= WINDOW_DAYS_MAX:
        raise _error("window_days", f"Expected null (all time) or a whole number of days from 1 to {WINDOW_DAYS_MAX}.")
    return int(value)


def _money_cut(value: Any, path: str) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        raise _error(path, "Expected an amount such as 100 or 99.90.")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise _error(path, "Expected an amount such as 100 or 99.90.") from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:  # type: ignore[operator]  # finite: int exponent
        raise _error(path, "An amount carries at most 2 decimals.")
    if abs(amount) >= Decimal(10) ** 14:
        raise _error(path, "Amount out of range.")
    return f"{amount.quantize(Decimal('0.01'))}"


def _dimension(name: str, value: Any, scale: int) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _error(name, 'Expected {"mode": "quantile"} or {"mode": "thresholds", "cuts": [...]}.')
    unknown = sorted(set(value) - {"mode", "cuts"})
    if unknown:
        raise _error(f"{name}.{unknown[0]}", "Unknown key: a dimension has mode and cuts.")
    mode = value.get("mode")
    if mode == QUANTILE:
        if value.get("cuts") is not None:
            raise _error(f"{name}.cuts", "Quantile scores take no cuts (use mode thresholds).")
        return {"mode": QUANTILE}
    if mode != THRESHOLDS:
        raise _error(f"{name}.mode", "Expected quantile or thresholds.")
    cuts = value.get("cuts")
    if not isinstance(cuts, list) or len(cuts) != scale - 1:
        raise _error(f"{name}.cuts", f"Expected exactly {scale - 1} strictly increasing cut points for scale {scale}.")
    canonical: list[Any] = []
    for index, cut in enumerate(cuts):
        path = f"{name}.cuts[{index}]"
        if name == "monetary":
            canonical.append(_money_cut(cut, path))
        else:
            if not _whole(cut) or cut < 0:
                unit = "days" if name == "recency" else "orders"
                raise _error(path, f"Expected a whole number of {unit} (0 or more).")
            canonical.append(int(cut))
        if index and Decimal(str(canonical[index])) <= Decimal(str(canonical[index - 1])):
            raise _error(path, "Cut points must be strictly increasing.")
    return {"mode": THRESHOLDS, "cuts": canonical}


def validate_config(data: dict[str, Any], *, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """The canonical configuration: ``data`` (an API body's config keys, a preset allowed)
    over ``base`` (the stored config on update, else the defaults)."""
    preset = data.get("preset")
    if preset is not None and preset not in PRESETS:
        raise _error("preset", f"Unknown preset '{preset}': one of {', '.join(PRESETS)}.")
    merged = dict(base or DEFAULTS)
    if preset is not None:
        merged.update(PRESETS[preset])
    merged.update({key: data[key] for key in CONFIG_FIELDS if key in data})
    scale = merged["scale"]
    if not _whole(scale) or scale not in SCALES:
        raise _error("scale", "Expected 3 or 5.")
    # A new scale without a new map keeps the built-in map of that scale.
    if "scale" in data and "group_map" not in data and isinstance(merged["group_map"], str):
        merged["group_map"] = "klaviyo6" if scale == 3 else "classic11"
    config = {
        "goal_types": _goal_types(merged["goal_types"]),
        "event_names": _event_names(merged["event_names"]),
        "window_days": _window_days(merged["window_days"]),
        "scale": scale,
        **{name: _dimension(name, merged[name], scale) for name in DIMENSIONS},
        "group_map": groups.validate_group_map(merged["group_map"], scale=scale),
    }
    return config
