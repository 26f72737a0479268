"""Append-only tallies: tables of signed delta rows that readers sum and a compaction folds.

A tally (the dashboard's ``EventActivity``, ``ContactTally``, ``RfmGroupTally``) is a count kept
beside the rows it counts so a page reads a handful of rows instead of scanning them. Its writers
only ever **insert** a row of deltas in their own transaction (the service's statement, or a
database trigger for a count of a table's rows), so concurrent writers never wait on a shared
counter and the sums are exact at every commit. ``compact`` folds each key's rows into one and
drops keys that sum to nothing, in one statement, while writes go on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from django.db import connection, transaction


@dataclass(frozen=True)
class Tally:
    """A tally table: its key columns and, for each value column, the SQL of its sum."""

    table: str
    keys: Sequence[str]
    sums: Mapping[str, str]
    # The compaction's transaction-level advisory lock (PostgreSQL): one at a time per table.
    lock: int
    # Optional SQL expressions a key is folded to (coarser buckets for old rows), by key column.
    fold_to: Mapping[str, str] = field(default_factory=dict)

    def key_sql(self) -> list[str]:
        return [self.fold_to.get(key, key) for key in self.keys]

    def foldable(self) -> str:
        """HAVING of the keys to rewrite: more than one row, a sum of nothing, or a row whose
        key folds to another value."""
        zero = " AND ".join(f"{total} = 0" for total in self.sums.values())
        moved = "".join(f" OR MIN({key}) <> {expr}" for key, expr in self.fold_to.items())
        return f"HAVING COUNT(*) > 1 OR ({zero}){moved}"

    def nonzero(self) -> str:
        return "HAVING " + " OR ".join(f"{total} <> 0" for total in self.sums.values())

    def sums_select(self, rows: str, where: str = "") -> str:
        """Each (folded) key's sums over ``rows`` (a table or an aliased subquery)."""
        keys = ", ".join(self.key_sql())
        return f"SELECT {keys}, {', '.join(self.sums.values())} FROM {rows} {where} GROUP BY {keys}"


def _columns(tally: Tally) -> str:
    return ", ".join([*tally.keys, *tally.sums])


@transaction.atomic
def compact(tally: Tally) -> int:
    """Fold each key's delta rows into one (dropping keys that sum to nothing). Returns the rows
    folded away. Rows added meanwhile by concurrent writes are folded next time.

    PostgreSQL: one statement (the rows deleted are the rows summed), one compaction of a table
    at a time (a second one returns 0 at once). SQLite (one writer): the rows up to the highest
    id are summed, then deleted.
    """
    table = connection.ops.quote_name(tally.table)
    keys = ", ".join(tally.key_sql())
    groups = f"SELECT {keys} FROM {{rows}} GROUP BY {keys} {tally.foldable()}"
    insert = f"INSERT INTO {table} ({_columns(tally)})"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [tally.lock])
            if not cursor.fetchone()[0]:
                return 0
            cursor.execute(
                f"WITH gone AS (DELETE FROM {table} WHERE ({keys}) IN ({groups.format(rows=table)}) "
                f"RETURNING {_columns(tally)}), "
                f"kept AS ({insert} {tally.sums_select('gone')} {tally.nonzero()} RETURNING 1) "
                "SELECT (SELECT COUNT(*) FROM gone) - (SELECT COUNT(*) FROM kept)"
            )
            return int(cursor.fetchone()[0])
        cursor.execute(f"SELECT MAX(id) FROM {table}")
        (top,) = cursor.fetchone()
        if top is None:
            return 0
        upto = f"(SELECT * FROM {table} WHERE id <= %s)"
        chosen = f"WHERE ({keys}) IN ({groups.format(rows=upto)})"
        cursor.execute(f"{insert} {tally.sums_select(f'{upto} u', chosen)} {tally.nonzero()}", [top, top])
        kept = int(cursor.rowcount)
        cursor.execute(f"DELETE FROM {table} WHERE id <= %s AND ({keys}) IN ({groups.format(rows=upto)})", [top, top])
        return int(cursor.rowcount) - kept


@transaction.atomic
def recount(tally: Tally, source: str) -> int:
    """Refill a tally that counts the rows of the table ``source`` (one value column, keys that
    are columns of ``source``) from those rows: one row per key. A repair after what its triggers
    cannot see (a TRUNCATE, triggers disabled); on PostgreSQL ``source`` is locked against writes
    meanwhile (SHARE ROW EXCLUSIVE, as its migration did), so no statement is missed or counted
    twice. Returns the rows written."""
    (value,) = tally.sums
    table, rows = connection.ops.quote_name(tally.table), connection.ops.quote_name(source)
    keys = ", ".join(tally.keys)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {rows} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"DELETE FROM {table}")
        cursor.execute(f"INSERT INTO {table} ({keys}, {value}) SELECT {keys}, COUNT(*) FROM {rows} GROUP BY {keys}")
        return int(cursor.rowcount)
