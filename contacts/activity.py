"""The dashboard's read model: live events and net revenue per 15-minute bucket (``EventActivity``).

The cycle:

1. Every write of events adds its **deltas** in its own transaction (``activity_statement``,
   folded into the write's statement on PostgreSQL like the refresh queue): one row per bucket
   whose figures the write changed. An event counts in the bucket of its ``occurred_at`` while
   it is live, with its goal value as revenue when it is a purchase (refunds are negative
   purchases); so an insert adds +1, a soft delete -1, a restore +1, an update of the time or the
   goal minus the old version plus the new (``deltas``), and an erasure minus the contact's live
   events (``erasure_statement``, before the cascade deletes them). Rows are only ever inserted:
   concurrent writers never wait on a shared counter, and the sums are exact at every commit.
2. The compaction (``activity_compact``, beat every minute, and once after a bulk load) folds
   each bucket's rows into one and drops buckets that sum to nothing, in one statement
   (``events_platform.tallies``); on PostgreSQL buckets older than ``DAYS_FINE`` (32 days) fold
   into one per day of the workspace's time zone, and older than ``FINE`` (120 days) into one per
   UTC month, so a workspace keeps about 3,200 rows plus one a month, whatever its history.
3. The dashboard (``segments.selectors.dashboard_figures``) sums the window's rows: at most 96 a
   day once compacted, whatever the number of events, and every row for the all-time revenue. A
   bucket is 15 minutes of UTC, so a day in any time zone (their offsets are whole quarter
   hours) is a whole number of buckets.

``activity_rebuild`` recomputes the rows from the events (a backfill, a repair, the bench's bulk
load); ``test_activity.py`` checks the figures against the events after every kind of write.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from events_platform import tallies
from events_platform.workspaces.models import Workspace

from .models import Contact, ContactTally, CustomEvent, EventActivity, GoalType

BUCKET = timedelta(minutes=15)
# How long buckets stay 15 minutes: past the dashboard's 30-day figure (whose edge moves by
# the minute), on PostgreSQL; older ones are folded into one row per day in the workspace's time
# zone, whose local midnight is a bucket start (so a local day's sum is unchanged: the
# dashboard's days read 58 rows instead of 5,600). A workspace's time zone changed rebuilds its
# rows (``receivers.py``).
DAYS_FINE = timedelta(days=32)
# How long days stay days: past the dashboard's window (90 days in the workspace's time zone,
# plus a day); older ones are folded into one per UTC month, which the all-time revenue (a sum
# of every row) is all that reads.
FINE = timedelta(days=120)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# The compactions' transaction-level advisory locks: one compaction at a time (others skip).
COMPACT_LOCK = 0x45564143  # "EVAC"
CONTACT_TALLY_LOCK = 0x43544C59  # "CTLY"


def bucket_of(instant: datetime) -> datetime:
    """The start of the 15-minute bucket (UTC) holding ``instant``."""
    return EPOCH + ((instant - EPOCH) // BUCKET) * BUCKET


def bucket_ceiling(instant: datetime) -> datetime:
    """The first bucket start at or after ``instant``."""
    start = bucket_of(instant)
    return start if start == instant else start + BUCKET


def bucket_sql(column: str) -> str:
    """SQL for the bucket start of a timestamp column (the same instant ``bucket_of`` gives)."""
    if connection.vendor == "postgresql":
        return f"date_bin('15 minutes', {column}, TIMESTAMPTZ '2000-01-01 00:00:00+00')"
    # SQLite keeps UTC text; floor the epoch seconds to 900 (negative ones too) and format as
    # Django stores a whole-second instant (substr: the whole seconds; strftime rounds the
    # fraction). %%: run with parameters, which Django formats in.
    seconds = f"CAST(strftime('%%s', substr({column}, 1, 19)) AS INTEGER)"
    return f"datetime({seconds} - ((({seconds}) %% 900) + 900) %% 900, 'unixepoch')"


def _contribution(version: Mapping[str, Any] | None) -> tuple[datetime, int, Decimal] | None:
    if version is None or version["deleted_at"] is not None:
        return None
    value = version["goal_value"] if version["goal_type"] == GoalType.PURCHASE else None
    return bucket_of(version["occurred_at"]), 1, Decimal(value or 0)


def deltas(
    versions: Iterable[tuple[Mapping[str, Any] | None, Mapping[str, Any] | None]],
) -> dict[datetime, tuple[int, Decimal]]:
    """What these changes of events do to each bucket: (before, after) versions of an event
    (``changes.event_snapshot``; None before an insert), as bucket -> (events, revenue), without
    the buckets they leave as they were."""
    sums: dict[datetime, list[Any]] = {}
    for before, after in versions:
        for version, sign in ((before, -1), (after, 1)):
            contribution = _contribution(version)
            if contribution is not None:
                bucket, events, revenue = contribution
                total = sums.setdefault(bucket, [0, Decimal(0)])
                total[0] += sign * events
                total[1] += sign * revenue
    return {bucket: (events, revenue) for bucket, (events, revenue) in sorted(sums.items()) if events or revenue}


def _table() -> str:
    return connection.ops.quote_name(EventActivity._meta.db_table)


def activity_statement(
    *, workspace_id: str, changes: Mapping[datetime, tuple[int, Decimal]], when: str = ""
) -> tuple[str, list[Any]] | None:
    """The statement that adds these deltas (``deltas``), as (sql, params), or None for none.

    Run in the write's own transaction; on PostgreSQL one array parameter per column, so a
    data-modifying CTE of the write's statement, and ``when`` an SQL condition on the rest of that
    statement (the rows go in only if it holds).
    """
    if not changes:
        return None
    columns = "(workspace_id, bucket, events, revenue)"
    if connection.vendor == "postgresql":
        rows = "SELECT %s, unnest(%s::timestamptz[]), unnest(%s::bigint[]), unnest(%s::numeric[])"
        params: list[Any] = [
            workspace_id,
            list(changes),
            [events for events, _ in changes.values()],
            [revenue for _, revenue in changes.values()],
        ]
        if when:
            rows += f" WHERE {when}"
        return f"INSERT INTO {_table()} {columns} {rows}", params
    assert not when, "a conditional write is PostgreSQL's"
    ops = connection.ops
    params = []
    for bucket, (events, revenue) in changes.items():
        params += [workspace_id, ops.adapt_datetimefield_value(bucket), events, ops.adapt_decimalfield_value(revenue)]
    return f"INSERT INTO {_table()} {columns} VALUES " + ", ".join(["(%s, %s, %s, %s)"] * len(changes)), params


def _grouped_events(where: str, *, sign: int) -> str:
    events = connection.ops.quote_name(CustomEvent._meta.db_table)
    return (
        f"SELECT e.workspace_id, {bucket_sql('e.occurred_at')}, {sign} * COUNT(*), "
        f"{sign} * ROUND(COALESCE(SUM(CASE WHEN e.goal_type = '{GoalType.PURCHASE}' THEN e.goal_value END), 0), 2) "
        f"FROM {events} e WHERE e.deleted_at IS NULL AND ({where}) GROUP BY e.workspace_id, 2"
    )


def erasure_statement(*, contact_id: int) -> tuple[str, list[Any]]:
    """The deltas of erasing a contact: minus its live events, per bucket (run before the delete)."""
    rows = _grouped_events("e.contact_id = %s", sign=-1)
    return f"INSERT INTO {_table()} (workspace_id, bucket, events, revenue) {rows}", [contact_id]


@transaction.atomic
def activity_rebuild(*, workspace_id: str | None = None) -> int:
    """Recompute the rows from the events (of one workspace, or of all): one row per bucket with
    live events. For a backfill or a repair. On PostgreSQL one statement (the rows it replaces
    and the events it sums are one snapshot: deltas committed meanwhile stay); on SQLite (one
    writer) two. Returns the rows written."""
    params = [workspace_id] if workspace_id else []
    delete = f"DELETE FROM {_table()}" + (" WHERE workspace_id = %s" if workspace_id else "")
    rows = _grouped_events("e.workspace_id = %s" if workspace_id else "1 = 1", sign=1)
    insert = f"INSERT INTO {_table()} (workspace_id, bucket, events, revenue) {rows}"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"WITH gone AS ({delete}) {insert}", params + params)
        else:
            cursor.execute(delete, params)
            cursor.execute(insert, params)
        return int(cursor.rowcount)


def _fold_sql(now: datetime) -> str:
    """SQL folding an old bucket (no parameters): before ``now - FINE`` to the start of its UTC
    month; on PostgreSQL, before ``now - DAYS_FINE`` to the start of its day in the workspace's
    time zone (SQLite, the embedded mode, has no time zones: its buckets stay 15 minutes)."""
    months, days = bucket_of(now - FINE), bucket_of(now - DAYS_FINE)
    if connection.vendor == "postgresql":
        workspaces = connection.ops.quote_name(Workspace._meta.db_table)
        zone = f"(SELECT w.timezone FROM {workspaces} w WHERE w.id = workspace_id)"
        return (
            f"CASE WHEN bucket < TIMESTAMPTZ '{months.isoformat()}' "
            "THEN date_trunc('month', bucket AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' "
            f"WHEN bucket < TIMESTAMPTZ '{days.isoformat()}' "
            f"THEN date_trunc('day', bucket AT TIME ZONE {zone}) AT TIME ZONE {zone} ELSE bucket END"
        )
    # Django's SQLite text; %%: the SQLite compaction runs with parameters.
    return (
        f"CASE WHEN bucket < '{months:%Y-%m-%d %H:%M:%S}' THEN strftime('%%Y-%%m-01 00:00:00', bucket) ELSE bucket END"
    )


def tally(*, now: datetime | None = None) -> tallies.Tally:
    """The activity rows as a tally (``events_platform.tallies``): summed per bucket, old
    buckets folded into days and months (``_fold_sql``)."""
    return tallies.Tally(
        table=EventActivity._meta.db_table,
        keys=("workspace_id", "bucket"),
        # (ROUND: SQLite sums decimals as floats.)
        sums={"events": "SUM(events)", "revenue": "ROUND(SUM(revenue), 2)"},
        lock=COMPACT_LOCK,
        fold_to={"bucket": _fold_sql(now or timezone.now())},
    )


def activity_compact(*, now: datetime | None = None) -> int:
    """Fold each bucket's delta rows into one (dropping buckets that sum to nothing) and the old
    buckets into their day or month (``_fold_sql``), while writes go on: ``tallies.compact``.
    Returns the rows folded away."""
    return tallies.compact(tally(now=now))


def contact_tally() -> tallies.Tally:
    """``ContactTally`` (kept by triggers, migration 0010): summed per workspace."""
    return tallies.Tally(
        table=ContactTally._meta.db_table,
        keys=("workspace_id",),
        sums={"contacts": "SUM(contacts)"},
        lock=CONTACT_TALLY_LOCK,
    )


def contact_tally_compact() -> int:
    """Fold each workspace's contact-count rows into one: ``tallies.compact``."""
    return tallies.compact(contact_tally())


def contact_tally_rebuild() -> int:
    """Recompute ``ContactTally`` from the contacts (``tallies.recount``): one row per workspace,
    the contacts locked against writes meanwhile. Returns the rows written."""
    return tallies.recount(contact_tally(), Contact._meta.db_table)
