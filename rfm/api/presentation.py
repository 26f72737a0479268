"""How the RFM API shows what selectors read: money as decimal strings (stored in cents), scores
with their contact, CSV rows."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from contacts.api.serializers import rfm_score_values
from rfm import groups
from rfm.models import RfmScore
from rfm.selectors import Preview

CSV_HEADER = [
    "contact_id",
    "email",
    "group",
    "r",
    "f",
    "m",
    "recency_days",
    "frequency",
    "monetary",
    "previous_group",
    "group_changed_at",
]


def money(cents: int | None) -> str | None:
    return None if cents is None else f"{(Decimal(cents) / 100).quantize(Decimal('0.01'))}"


def contact_score(score: RfmScore) -> dict[str, Any]:
    return {"contact_id": score.contact_id, "email": score.contact.email, **rfm_score_values(score, money)}


def csv_row(score: RfmScore) -> list[Any]:
    values = contact_score(score)
    changed = values["group_changed_at"]
    values["group_changed_at"] = changed.isoformat() if changed else ""
    return ["" if values[key] is None else values[key] for key in CSV_HEADER]


def selection_label(*, group: str | None, r: int | None, f: int | None) -> str:
    parts = [group or ""] + ([f"r{r}"] if r is not None else []) + ([f"f{f}"] if f is not None else [])
    return "-".join(p for p in parts if p)


def _with_money(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if not k.endswith("monetary_cents")}
    if "monetary_cents" in row:
        out["monetary"] = money(row["monetary_cents"])
    if "average_monetary_cents" in row:
        out["average_monetary"] = money(row["average_monetary_cents"])
    return out


def _median(median: dict[str, float | None]) -> dict[str, Any]:
    cents = median.get("monetary")
    return {
        "recency_days": median.get("recency"),
        "frequency": median.get("frequency"),
        "monetary": None if cents is None else money(round(cents)),
    }


def distribution_body(distribution: dict[str, Any]) -> dict[str, Any]:
    return {
        "contacts": distribution["contacts"],
        "customers": distribution["customers"],
        "monetary": money(distribution["monetary_cents"]),
        "groups": [{**_with_money(g), "median": _median(g["median"])} for g in distribution["groups"]],
        "cells": [_with_money(c) for c in distribution["cells"]],
        "as_of": distribution["as_of"],
        "cutpoints": distribution["cutpoints"],
    }


def preview_body(preview: Preview, canonical: dict[str, Any]) -> dict[str, Any]:
    order = groups.groups_of(canonical["group_map"], canonical["scale"])
    return {
        "config": canonical,
        "contacts": preview.contacts,
        "customers": preview.population,
        "groups": [
            {"group": g, "name": groups.display_name(g), "count": preview.group_counts.get(g, 0)} for g in order
        ],
        "cells": [_with_money(c) for c in preview.cells],
        "cutpoints": preview.cutpoints,
        "sample": [
            {
                "contact_id": row["contact_id"],
                "email": row["email"],
                "r": row["r"],
                "f": row["f"],
                "m": row["m"],
                "recency_days": row["recency_days"],
                "frequency": row["frequency"],
                "monetary": money(row["monetary_cents"]),
                "group": row["group"],
            }
            for row in preview.sample
        ],
    }
