"""The builder's live preview as ONE statement: the total, each top-level condition's count and
the newest matching contacts, from one pass over the workspace's contacts.

Pure logic: it builds SQL and runs no query. The contacts are LEFT JOINed to one grouped scan of
events per goal base (goal type, goal name, event name) that the tree's sum/count/avg/min/max
leaves use, wherever they sit in the tree; each such leaf is a boolean column of its base's
group, computed from filtered aggregates (``fused_condition``: a leaf's timeframe is a FILTER on
its aggregate), so one scan serves every leaf of that base, however many conditions use it:

    SELECT ... FROM (contacts of the workspace, + one column per other leaf) c
    LEFT JOIN (SELECT contact_id, <leaf> AS l0, <leaf> AS l1 ... FROM events WHERE <base>
               GROUP BY contact_id) g0 ON g0.contact_id = c.id

A contact without events of a base has no row in its group; there a leaf's value over zero
events is known without a query (``holds_without_events``), so the column is
``COALESCE(g0.l0, <that value>)``. The other leaves (first/last, event counts, contact fields,
segment membership) are the compiler's own NULL-free conditions, columns of ``c``. The tree and
each top-level condition are then AND / OR / NOT of these never-NULL columns, counted by window
sums over all contacts in the same pass that orders the matches first for the sample.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import Q, QuerySet

from contacts.models import Contact

from .compile import (
    FUSED_AGGREGATES,
    Base,
    Context,
    compile_leaf,
    fused_condition,
    goal_base,
    grouped_events,
    holds_without_events,
    validated_context,
)


@dataclass(frozen=True)
class PreviewStatement:
    """The preview's one statement, to run with ``Contact.objects.raw``.

    Each row is a contact with ``preview_matched``, ``preview_contacts`` (the workspace's
    contacts), ``preview_total`` and ``preview_condition_<i>`` (one per top-level condition);
    the matching contacts come first, newest first, at most ``sample_size`` rows in all.
    """

    sql: str
    params: list[Any]
    conditions: int


class _Columns:
    """The per-contact boolean columns the tree's leaves become, and where each is computed."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.on_contacts: dict[str, Q] = {}
        self.groups: dict[Base, dict[str, Q]] = {}
        self.group_aliases: dict[Base, str] = {}

    def leaf(self, node: dict[str, Any]) -> str:
        """SQL of a leaf node without its ``negate``: a column of ``c`` or of its base's group."""
        name = f"l{len(self.on_contacts) + sum(len(group) for group in self.groups.values())}"
        leaf = node["leaf"]
        plain = {**node, "negate": False}
        if leaf["source"] == "custom_events_goals" and leaf["custom_events_goal"]["aggregate_operator"] in (
            FUSED_AGGREGATES
        ):
            base = goal_base(leaf["custom_events_goal"])
            alias = self.group_aliases.setdefault(base, f"g{len(self.group_aliases)}")
            self.groups.setdefault(base, {})[name] = fused_condition(plain, self.context)
            without_events = "TRUE" if holds_without_events(plain) else "FALSE"
            return f"COALESCE({alias}.{name}, {without_events})"
        self.on_contacts[name] = compile_leaf(leaf, self.context)
        return f"c.{name}"

    def node(self, node: dict[str, Any]) -> str:
        if node["kind"] == "leaf":
            sql = self.leaf(node)
        else:
            sql = self.combine(node["branch"]["operator"], [self.node(child) for child in node["branch"]["leaves"]])
        return f"(NOT {sql})" if node.get("negate") else sql

    @staticmethod
    def combine(operator: str, parts: list[str]) -> str:
        return "(" + f" {operator.upper()} ".join(parts) + ")"


def _sql(queryset: QuerySet[Any, Any]) -> tuple[str, list[Any]]:
    sql, params = queryset.query.sql_with_params()
    return sql, list(params)


def compile_preview(
    tree: dict[str, Any],
    *,
    workspace_id: str,
    now: dt.datetime,
    timezone_name: str,
    segment_pks: Mapping[str, int],
    sample_size: int,
) -> PreviewStatement:
    """The preview of ``tree`` (see the module docstring). Raises ``TreeValidationError`` for an
    invalid tree or a segment slug missing from ``segment_pks``.

    The top-level conditions are the root branch's children (a bare leaf is its own one
    condition), each counted as it is written, without the root's ``negate``.
    """
    tree, context = validated_context(
        tree, workspace_id=workspace_id, now=now, timezone_name=timezone_name, segment_pks=segment_pks
    )
    columns = _Columns(context)
    if tree["kind"] == "branch":
        conditions = [columns.node(child) for child in tree["branch"]["leaves"]]
        total = columns.combine(tree["branch"]["operator"], conditions)
        total = f"(NOT {total})" if tree.get("negate") else total
    else:
        total = columns.node(tree)
        conditions = [total]

    contacts = Contact.objects.filter(workspace_id=workspace_id).order_by().values("id", "created_at")
    contacts_sql, params = _sql(contacts.annotate(**columns.on_contacts))
    joins = []
    for base, leaves in columns.groups.items():
        alias = columns.group_aliases[base]
        group_sql, group_params = _sql(grouped_events(base, context).annotate(**leaves))
        joins.append(f"LEFT JOIN ({group_sql}) {alias} ON {alias}.contact_id = c.id")
        params += group_params

    def counted(condition: str) -> str:
        return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END) OVER ()"

    counts = ", ".join(f"{counted(condition)} AS preview_condition_{i}" for i, condition in enumerate(conditions))
    table = connection.ops.quote_name(Contact._meta.db_table)
    # The window sums see every contact before ORDER BY ... LIMIT keeps the first rows; the
    # whole contact rows are read for those rows only.
    sql = (
        "SELECT cc.*, m.preview_matched, m.preview_contacts, m.preview_total, "
        + ", ".join(f"m.preview_condition_{i}" for i in range(len(conditions)))
        + " FROM ("
        f"SELECT c.id, c.created_at, {total} AS preview_matched, COUNT(*) OVER () AS preview_contacts, "
        f"{counted(total)} AS preview_total, {counts} "
        f"FROM ({contacts_sql}) c {' '.join(joins)} "
        f"ORDER BY preview_matched DESC, c.created_at DESC, c.id DESC LIMIT {int(sample_size)}"
        f") m JOIN {table} cc ON cc.id = m.id "
        "ORDER BY m.preview_matched DESC, m.created_at DESC, m.id DESC"
    )
    return PreviewStatement(sql=sql, params=params, conditions=len(conditions))
