"""Test support: which index a real read's statement uses (PostgreSQL EXPLAIN).

A read runs for real (the API, a page, a selector); its statements on a table are captured and
explained with the other access methods priced out (test tables are small; at bench size the
planner picks the same indexes unaided: ``pg_stat_user_indexes`` in the bench), and the plan
must name the index the model says serves that read.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection, transaction
from django.db.models import Model, UniqueConstraint
from django.test.utils import CaptureQueriesContext

LIST = ("seqscan", "sort", "bitmapscan")  # a page of rows in order: only an ordered index scan is left
LOOKUP = ("seqscan",)  # a few rows by key


def _reads_only(sql: str) -> bool:
    """A SELECT, or a WITH whose parts only read (the dashboard's one statement)."""
    text = sql.lstrip().upper()
    writes = ("INSERT INTO", "DELETE FROM", "UPDATE ")
    return text.startswith("SELECT") or (text.startswith("WITH") and not any(w in text for w in writes))


def plans(run: Callable[[], Any], table: str, off: tuple[str, ...] = LIST) -> list[str]:
    """The plans of the statements ``run`` sends that read ``table``, the ``off`` methods priced out."""
    with CaptureQueriesContext(connection) as captured:
        run()
    statements = [
        q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"] and _reads_only(q["sql"])
    ]
    assert statements, f"no read of {table}"
    explained = []
    with transaction.atomic(), connection.cursor() as cursor:
        # A few hundred rows: sorting them or a bitmap of them costs nothing; at size (the bench)
        # the ordered index scan wins on its own. Priced out, the planner shows which index serves.
        for method in off:
            cursor.execute(f"SET LOCAL enable_{method} = off")
        for sql in statements:
            cursor.execute(f"EXPLAIN {sql}")
            explained.append("\n".join(row[0] for row in cursor.fetchall()))
    return explained


def uses(index: str, explained: list[str]) -> None:
    assert any(index in plan for plan in explained), f"{index} not used:\n" + "\n---\n".join(explained)


def unnamed_indexes(model: type[Model]) -> set[str]:
    """The indexes of ``model``'s table that the model does not name: not its primary key, an
    index or unique constraint of its Meta, or the unique index of a ``unique=True`` field."""
    table = model._meta.db_table
    named = {i.name for i in model._meta.indexes if i.name}
    named |= {c.name for c in model._meta.constraints if isinstance(c, UniqueConstraint)}
    unique_columns = [[f.column] for f in model._meta.concrete_fields if f.unique and not f.primary_key]
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {
        name
        for name, info in constraints.items()
        if (info["index"] or info["unique"])
        and not info["primary_key"]
        and name not in named
        and not (info["unique"] and info["columns"] in unique_columns)
    }
