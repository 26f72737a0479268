"""Reads that shape the RFM pages (``rfm/views.py``): a model's live distribution, its groups'
sizes then and now, medians, the transition matrix between two instants, a cell's contacts, a
contact's history. Read-only; each function is one statement over the stored scores and the
append-only change log, whatever the number of contacts (set-based, no loop over rows).

A contact's group at an instant t is read from the change log: the ``from_group`` of its first
change after t, or its current group when it has not changed since (the log is complete from the
model's first full run on, which records no transitions, so t must not be before that run).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Count, F, Max, Min, OuterRef, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce

from contacts.models import Contact

from .models import RfmGroupChange, RfmModel, RfmRun, RfmScore


def model_get(*, workspace_id: str, slug: str) -> RfmModel | None:
    return RfmModel.objects.live().filter(workspace_id=workspace_id, slug=slug).first()


def model_list(*, workspace_id: str) -> list[RfmModel]:
    return list(RfmModel.objects.live().filter(workspace_id=workspace_id).order_by("name", "slug"))


@dataclass(frozen=True)
class RunDates:
    first: dt.datetime | None
    last: dt.datetime | None
    count: int


def run_dates(*, model: RfmModel) -> RunDates:
    """When the model's full runs happened: the first (the change log starts there) and the last."""
    row = RfmRun.objects.filter(model=model).aggregate(first=Min("as_of"), last=Max("as_of"), count=Count("id"))
    return RunDates(first=row["first"], last=row["last"], count=row["count"])


@dataclass(frozen=True)
class Cell:
    r: int
    f: int
    count: int
    monetary_cents: int


def cells(*, model: RfmModel) -> list[Cell]:
    """The live R x F cells with their customers and net money (``rfm_score_cell_idx``)."""
    rows = (
        RfmScore.objects.filter(model=model, r__isnull=False)
        .values("r", "f")
        .annotate(count=Count("id"), money=Sum("monetary_cents"))
        .order_by("r", "f")
    )
    return [Cell(r=row["r"], f=row["f"], count=row["count"], monetary_cents=int(row["money"] or 0)) for row in rows]


@dataclass(frozen=True)
class GroupFigures:
    group: str
    count: int
    monetary_cents: int
    median_recency_days: float | None
    median_frequency: float | None
    median_monetary_cents: float | None


def group_figures(*, model: RfmModel) -> dict[str, GroupFigures]:
    """Per stored group: its contacts, net money, and the median of each raw value, in one
    statement that runs on PostgreSQL and SQLite alike (the median is the mean of the one or two
    middle rows of each group's order, found with ``ROW_NUMBER()`` and the group's ``COUNT()``)."""
    table = connection.ops.quote_name(RfmScore._meta.db_table)
    group = connection.ops.quote_name("group")
    sql = f"""
        WITH ranked AS (
            SELECT {group} AS g, recency_days, frequency, monetary_cents,
                   COUNT(*) OVER (PARTITION BY {group}) AS n,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY recency_days) AS rn_r,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY frequency) AS rn_f,
                   ROW_NUMBER() OVER (PARTITION BY {group} ORDER BY monetary_cents) AS rn_m
            FROM {table} WHERE model_id = %s
        )
        SELECT g, COUNT(*), SUM(monetary_cents),
               AVG(CASE WHEN rn_r IN ((n + 1) / 2, (n + 2) / 2) THEN recency_days END),
               AVG(CASE WHEN rn_f IN ((n + 1) / 2, (n + 2) / 2) THEN frequency END),
               AVG(CASE WHEN rn_m IN ((n + 1) / 2, (n + 2) / 2) THEN monetary_cents END)
        FROM ranked GROUP BY g
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [model.pk])
        rows = cursor.fetchall()

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return {
        g: GroupFigures(g, int(n), int(money or 0), number(med_r), number(med_f), number(med_m))
        for g, n, money, med_r, med_f, med_m in rows
    }


def _group_at(model: RfmModel, instant: dt.datetime) -> Subquery:
    """The scored contact's group at ``instant``: from_group of its first change after it."""
    later = RfmGroupChange.objects.filter(model=model, contact_id=OuterRef("contact_id"), changed_at__gt=instant)
    return Subquery(later.order_by("changed_at", "id").values("from_group")[:1])


def transitions(*, model: RfmModel, since: dt.datetime, until: dt.datetime | None) -> Counter[tuple[str, str]]:
    """Contacts by (group at ``since``, group at ``until``; None: now), read from the change log."""
    scores = RfmScore.objects.filter(model=model).annotate(then=Coalesce(_group_at(model, since), "group"))
    later = F("group") if until is None else Coalesce(_group_at(model, until), "group")
    scores = scores.annotate(later=later)
    rows = scores.values("then", "later").annotate(count=Count("id")).order_by()
    return Counter({(row["then"], row["later"]): row["count"] for row in rows})


def unscored_contacts(*, model: RfmModel) -> int:
    """Contacts created since the last full run and not re-scored yet: prospects without a row."""
    return (
        Contact.objects.filter(workspace_id=model.workspace_id)
        .exclude(pk__in=RfmScore.objects.filter(model=model).values("contact_id"))
        .count()
    )


def most_common_frequency(*, model: RfmModel) -> tuple[int, int] | None:
    """The raw order count most customers share, and how many share it."""
    row = (
        RfmScore.objects.filter(model=model, frequency__isnull=False)
        .values("frequency")
        .annotate(count=Count("id"))
        .order_by("-count", "frequency")
        .first()
    )
    return (row["frequency"], row["count"]) if row else None


def cell_contacts(*, model: RfmModel, r: int, f: int, limit: int) -> QuerySet[RfmScore]:
    """A cell's customers, the most valuable first, with their contacts (one statement)."""
    return (
        RfmScore.objects.filter(model=model, r=r, f=f)
        .select_related("contact")
        .order_by("-monetary_cents", "contact_id")[:limit]
    )


def contact_scores(*, contact: Contact) -> list[RfmScore]:
    """The contact's score under each live model of its workspace, with the model."""
    return list(
        RfmScore.objects.filter(contact=contact)
        .exclude(model__status=RfmModel.Status.DELETED)
        .select_related("model")
        .order_by("model__name")
    )


def contact_changes(*, contact: Contact, limit: int) -> list[RfmGroupChange]:
    """The contact's group changes under live models, newest first."""
    return list(
        RfmGroupChange.objects.filter(contact=contact)
        .exclude(model__status=RfmModel.Status.DELETED)
        .order_by("-changed_at", "-id")[:limit]
    )


@dataclass(frozen=True)
class ModelGroupSizes:
    model: RfmModel
    sizes: dict[str, int]


def group_sizes(*, workspace_id: str) -> list[ModelGroupSizes]:
    """Each computed model of the workspace with its live group sizes (two statements)."""
    models = [m for m in model_list(workspace_id=workspace_id) if m.last_computed_at is not None]
    rows = (
        RfmScore.objects.filter(model__in=[m.pk for m in models])
        .values("model_id", "group")
        .annotate(count=Count("id"))
        .order_by()
    )
    sizes: dict[int, dict[str, int]] = {m.pk: {} for m in models}
    for row in rows:  # one row per (model, group): a few dozen at most
        sizes[row["model_id"]][row["group"]] = row["count"]
    return [ModelGroupSizes(model=m, sizes=sizes[m.pk]) for m in models]
