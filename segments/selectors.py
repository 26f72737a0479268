"""Reads for segments: which contacts a rule tree matches, each answer in one SQL statement."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from contacts import activity
from contacts import selectors as contact_selectors
from contacts.models import Contact, ContactTally, CustomEvent, EventActivity, GoalType, normalize_email
from events_platform.pagination import Page, paginate
from events_platform.workspaces.planning import workspace_value
from rfm import selectors as rfm_selectors
from segments import explain
from segments.models import Segment, SegmentMembership, SegmentMembershipChange
from segments.rules import TEMPLATES, compile_tree, referenced_segments, rfm_group_templates, validate_tree
from segments.rules.preview import compile_preview


def segment_pks_for_slugs(*, workspace_id: str, slugs: Iterable[str]) -> dict[str, int]:
    """Primary keys of the workspace's (not deleted) segments with these slugs; unknown slugs are left out."""
    slugs = set(slugs)
    if not slugs:
        return {}
    return dict(Segment.objects.live().filter(workspace_id=workspace_id, slug__in=slugs).values_list("slug", "pk"))


def segment_matching_contacts(
    *,
    workspace_id: str,
    tree: dict[str, Any],
    timezone_name: str,
    now: dt.datetime | None = None,
    contact_ids: Iterable[int] | None = None,
    segment_pks: Mapping[str, int] | None = None,
) -> QuerySet[Contact]:
    """The workspace's contacts matching ``tree`` (or the matching subset of ``contact_ids``).

    Evaluating the queryset is one statement. When the tree refers to other segments and
    ``segment_pks`` is not given, their slugs are resolved first (one more query); an unknown
    slug raises ``TreeValidationError``.
    """
    tree = validate_tree(tree)
    if segment_pks is None:
        segment_pks = segment_pks_for_slugs(workspace_id=workspace_id, slugs=referenced_segments(tree))
    ids = None if contact_ids is None else list(contact_ids)
    # The condition is this query's whole WHERE, so fused goal groups may be semi-joins: one
    # grouped scan for the workspace. For a few contacts (on-event refreshes) a correlated
    # grouped scan per contact is cheaper (2,000 of 100k contacts: 35 ms against 50-60 ms).
    condition = compile_tree(
        tree,
        workspace_id=workspace_id,
        now=now or timezone.now(),
        timezone_name=timezone_name,
        segment_pks=segment_pks,
        semi_join=ids is None,
    )
    if ids is None:
        contacts = Contact.objects.filter(workspace_id=workspace_id)
    else:  # by id, with the workspace a value the planner cannot estimate (events_platform/workspaces/planning.py)
        contacts = Contact.objects.filter(workspace_id=workspace_value(workspace_id), pk__in=ids)
    return contacts.filter(condition)


def segment_match_count(**arguments: Any) -> int:
    """How many contacts ``segment_matching_contacts(**arguments)`` matches, in one ``COUNT`` statement."""
    return segment_matching_contacts(**arguments).count()


# ---------------------------------------------------------------------------------------
# Reads for the API and pages
# ---------------------------------------------------------------------------------------


def segment_get(*, workspace_id: str, slug: str) -> Segment | None:
    return Segment.objects.live().filter(workspace_id=workspace_id, slug=slug).first()


def segment_list(*, workspace_id: str) -> list[Segment]:
    return list(Segment.objects.live().filter(workspace_id=workspace_id).order_by("name"))


@dataclass(frozen=True)
class Preview:
    total: int
    contacts_in_workspace: int
    condition_counts: list[int]
    sample: list[Contact]


PREVIEW_SAMPLE_SIZE = 10


def segment_preview(
    *, workspace_id: str, tree: dict[str, Any], timezone_name: str, now: dt.datetime | None = None
) -> Preview:
    """Total, each top-level condition alone, and the 10 newest matching contacts, nothing written:
    one statement (one more to resolve segment slugs when the tree refers to segments).

    The contacts are read once, joined to one grouped scan of events per goal base; every count
    and the sample come from that pass (``segments.rules.preview``). 100k contacts / 1M events on
    PostgreSQL, VIP: 1.7-2.3 s (one correlated count per condition and contact) -> see README,
    Performance.
    """
    pks = segment_pks_for_slugs(workspace_id=workspace_id, slugs=referenced_segments(validate_tree(tree)))
    statement = compile_preview(
        tree,
        workspace_id=workspace_id,
        now=now or timezone.now(),
        timezone_name=timezone_name,
        segment_pks=pks,
        sample_size=PREVIEW_SAMPLE_SIZE,
    )
    rows = list(Contact.objects.raw(statement.sql, statement.params))
    if not rows:
        return Preview(total=0, contacts_in_workspace=0, condition_counts=[0] * statement.conditions, sample=[])
    # The raw query's extra columns are attributes of each contact.
    first = vars(rows[0])
    return Preview(
        total=int(first["preview_total"]),
        contacts_in_workspace=int(first["preview_contacts"]),
        condition_counts=[int(first[f"preview_condition_{i}"]) for i in range(statement.conditions)],
        sample=[row for row in rows if vars(row)["preview_matched"]],
    )


def segment_members(
    *, segment: Segment, limit: int, cursor: str | None = None, search: str | None = None, offset: int = 0
) -> Page[SegmentMembership]:
    """Members, most recent entry first, with their contact (keyset paginated; ``offset`` skips rows
    after the cursor, for Notifuse's offset paging)."""
    members = SegmentMembership.objects.filter(segment=segment).select_related("contact")
    if search:
        members = members.filter(contact__email__contains=normalize_email(search))
    return paginate(members, key="entered_at", limit=limit, after=cursor, offset=offset)


# A spreadsheet opening the CSV runs a cell starting with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: str) -> str:
    """A text cell a spreadsheet shows as text: formula-like values get a leading apostrophe
    (the OWASP advice for CSV injection; names and ids come from API clients)."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def segment_member_rows(*, segment: Segment, chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """All members as CSV-ready tuples, streamed from a server-side cursor (constant memory)."""
    rows = (
        SegmentMembership.objects.filter(segment=segment)
        .order_by("contact__email")
        .values_list(
            "contact__email", "contact__external_id", "contact__first_name", "contact__last_name", "entered_at"
        )
    )
    for email, external_id, first_name, last_name, entered_at in rows.iterator(chunk_size=chunk_size):
        texts = (csv_cell(email), csv_cell(external_id), csv_cell(first_name), csv_cell(last_name))
        yield (*texts, entered_at.isoformat())


def segment_explain(*, segment: Segment, contact: Contact, now: dt.datetime | None = None) -> dict[str, Any]:
    """Each condition's actual value for one contact and whether it held: one statement."""
    now = now or timezone.now()
    pks = segment_pks_for_slugs(workspace_id=segment.workspace_id, slugs=referenced_segments(segment.tree))
    names = dict(segment_choices(workspace_id=segment.workspace_id)) if pks else {}
    whole, leaf_probes = explain.probes(
        segment.tree,
        workspace_id=segment.workspace_id,
        now=now,
        timezone_name=segment.timezone,
        segment_pks=pks,
        segment_names=names,
    )
    annotations: dict[str, Any] = {"matches": explain.as_flag(whole)}
    for i, probe in enumerate(leaf_probes):
        annotations[f"l{i}_held"] = explain.as_flag(probe.held)
        annotations.update({f"l{i}_{name}": expression for name, expression in probe.values.items()})
    row = Contact.objects.filter(pk=contact.pk).annotate(**annotations).values(*annotations).get()
    conditions = []
    for i, probe in enumerate(leaf_probes):
        value = {name: row[f"l{i}_{name}"] for name in probe.values}
        held = bool(row[f"l{i}_held"])
        needed = probe.description
        conditions.append(
            {
                "path": probe.path,
                "condition": needed,
                "actual": probe.actual(value),
                "held": held,
                "summary": f"{probe.actual(value)}, needed {needed}" + (" (held)" if held else " (not held)"),
            }
        )
    is_member = SegmentMembership.objects.filter(segment=segment, contact=contact).exists()
    return {
        "segment_id": segment.slug,
        "email": contact.email,
        "matches": bool(row["matches"]),
        "is_member": is_member,
        "evaluated_at": now,
        "conditions": conditions,
    }


# ---------------------------------------------------------------------------------------
# Reads for the marketer pages (segments/views.py): dashboard figures, a segment's size
# over time and its entered/exited log. Each is one statement, but for the dashboard's three.
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayActivity:
    day: dt.date
    events: int
    revenue: Decimal


@dataclass(frozen=True)
class DashboardFigures:
    contacts: int
    events_30d: int
    revenue_30d: Any
    revenue_all_time: Any
    days: list[DayActivity]  # the last ``days`` calendar days, oldest first, today included


def dashboard_figures(
    *, workspace_id: str, now: dt.datetime | None = None, timezone_name: str = "UTC", days: int = 90
) -> DashboardFigures:
    """Contacts, live events of the last 30 days, and net revenue (live purchase goal values,
    refunds included as the negative values they are) for 30 days and all time, and the events
    and net revenue of each of the last ``days`` calendar days in ``timezone_name`` (days without
    events at zero, for the dashboard's charts): three small statements, whatever the number of
    events or contacts.

    Exact at every commit. The days, the 30 days and the all-time revenue are one pass over the
    workspace's ``EventActivity`` rows grouped by local day (live events and net revenue per
    15-minute bucket, kept by every write in its own transaction: ``contacts/activity.py``;
    every zone's midnight is a bucket start). The compaction folds buckets older than 32 days
    into the workspace's local days and older than 120 into months, so a workspace has about
    3,200 rows: ``days`` stays within ``activity.FINE`` and ``timezone_name`` must be the
    workspace's. The 30 days are the buckets from the first whole one after ``now - 30 days``
    plus the events of the part-bucket before it (``event_ws_occurred_idx``). The contacts are
    ``contact_count``'s tally (triggers, contacts 0010). At 100k contacts / 1M events: 170-310 ms
    before the read model (an index-only scan of the window's 344k events), 25-80 ms with 15-minute
    buckets and a count of the contacts, about 5 ms now.
    """
    if days > activity.FINE.days - 2:
        raise ValueError(f"days: at most {activity.FINE.days - 2} (older buckets are folded into months)")
    now = now or timezone.now()
    zone = zoneinfo.ZoneInfo(timezone_name)
    today = now.astimezone(zone).date()
    first = today - dt.timedelta(days=days - 1)
    since = now - dt.timedelta(days=30)
    edge = activity.bucket_ceiling(since)
    start = min(since, dt.datetime.combine(first, dt.time(), tzinfo=zone))
    window = activity.bucket_of(start)
    if connection.vendor == "postgresql":
        by_day, part, contacts = _activity_by_day_postgresql(workspace_id, timezone_name, window, since, edge)
    else:
        by_day, part, contacts = _activity_by_day(workspace_id, zone, window, since, edge)
    series = []
    for offset in range(days):  # the chart's days, not the events
        day = first + dt.timedelta(days=offset)
        row = by_day.get(day, {})
        series.append(DayActivity(day=day, events=int(row.get("n") or 0), revenue=_cents(row.get("money"))))
    return DashboardFigures(
        contacts=contacts,
        events_30d=int(part["n"] or 0) + sum(int(row["n_30d"] or 0) for row in by_day.values()),
        revenue_30d=_cents(part["revenue"]) + sum((_cents(row["money_30d"]) for row in by_day.values()), Decimal(0)),
        revenue_all_time=sum((_cents(row["money_all"]) for row in by_day.values()), Decimal(0)),
        days=series,
    )


_DayRows = tuple[dict[Any, dict[str, Any]], dict[str, Any], int]


def _activity_by_day(
    workspace_id: str, zone: zoneinfo.ZoneInfo, window: dt.datetime, since: dt.datetime, edge: dt.datetime
) -> _DayRows:
    """The workspace's activity rows summed by local day (the window's days; the rows before it
    under the day they fall on), the part-bucket's live events, the contact count: three
    statements."""
    recent = Q(bucket__gte=edge)
    rows = (
        EventActivity.objects.filter(workspace_id=workspace_id)
        .annotate(day=TruncDate("bucket", tzinfo=zone))
        .values("day")
        .annotate(
            n=Sum("events", filter=Q(bucket__gte=window)),
            money=Sum("revenue", filter=Q(bucket__gte=window)),
            n_30d=Sum("events", filter=recent),
            money_30d=Sum("revenue", filter=recent),
            money_all=Sum("revenue"),
        )
        .order_by()
    )
    part = (
        CustomEvent.objects.live()
        .filter(workspace_id=workspace_id, occurred_at__gte=since, occurred_at__lt=edge)
        .aggregate(n=Count("id"), revenue=Sum("goal_value", filter=Q(goal_type=GoalType.PURCHASE)))
    )
    return {row["day"]: row for row in rows}, part, contact_selectors.contact_count(workspace_id=workspace_id)


def _activity_by_day_postgresql(
    workspace_id: str, zone_name: str, window: dt.datetime, since: dt.datetime, edge: dt.datetime
) -> _DayRows:
    """``_activity_by_day`` in one statement and one round trip (7 ms against the ORM's 14 at the
    default size, most of it the ORM building three queries): the rows before the window summed
    as one day None, the part-bucket and the contact tally as a last row."""
    quote = connection.ops.quote_name
    activity_table = quote(EventActivity._meta.db_table)
    events = quote(CustomEvent._meta.db_table)
    tally = quote(ContactTally._meta.db_table)
    sql = (
        "WITH days AS (SELECT CASE WHEN a.bucket >= %s THEN (a.bucket AT TIME ZONE %s)::date END AS day, "
        "SUM(a.events) AS n, SUM(a.revenue) AS money, SUM(a.events) FILTER (WHERE a.bucket >= %s) AS n_30d, "
        "SUM(a.revenue) FILTER (WHERE a.bucket >= %s) AS money_30d, SUM(a.revenue) AS money_all "
        f"FROM {activity_table} a WHERE a.workspace_id = %s GROUP BY 1) "
        "SELECT true, day, n, money, n_30d, money_30d, money_all FROM days UNION ALL "
        f"SELECT false, NULL, (SELECT SUM(t.contacts) FROM {tally} t WHERE t.workspace_id = %s), "
        "e.revenue, e.n, NULL, NULL FROM (SELECT COUNT(*) AS n, "
        f"SUM(goal_value) FILTER (WHERE goal_type = %s) AS revenue FROM {events} "
        "WHERE workspace_id = %s AND deleted_at IS NULL AND occurred_at >= %s AND occurred_at < %s) e"
    )
    params: list[Any] = [
        window,
        zone_name,
        edge,
        edge,
        workspace_id,
        workspace_id,
        GoalType.PURCHASE,
        workspace_id,
        since,
        edge,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        result = cursor.fetchall()
    names = ("day", "n", "money", "n_30d", "money_30d", "money_all")
    by_day = {row[1]: dict(zip(names, row[1:], strict=True)) for row in result if row[0]}
    contacts, revenue, n = next(row[2:5] for row in result if not row[0])
    return by_day, {"n": n, "revenue": revenue}, int(contacts or 0)


def _cents(value: Any) -> Decimal:
    """A sum of money as Decimal cents (SQLite sums a decimal column as a float: 681.549999999999)."""
    return Decimal(value or 0).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class SizePoint:
    day: dt.date
    entered: int
    exited: int
    size: int


def segment_size_by_day(*, segment: Segment, timezone_name: str) -> list[SizePoint]:
    """The segment's size at the end of each day with a change, from its membership history:
    one GROUP BY day (in ``timezone_name``), then a running sum over the days."""
    entered = SegmentMembershipChange.Change.ENTERED
    exited = SegmentMembershipChange.Change.EXITED
    rows = (
        SegmentMembershipChange.objects.filter(segment=segment)
        .annotate(day=TruncDate("changed_at", tzinfo=zoneinfo.ZoneInfo(timezone_name)))
        .values("day")
        .annotate(entered=Count("id", filter=Q(change=entered)), exited=Count("id", filter=Q(change=exited)))
        .order_by("day")
    )
    points, size = [], 0
    for row in rows:
        size += row["entered"] - row["exited"]
        points.append(SizePoint(day=row["day"], entered=row["entered"], exited=row["exited"], size=size))
    return points


def segment_changes(*, segment: Segment, limit: int, cursor: str | None = None) -> Page[Any]:
    """The entered/exited log, newest first, with each change's contact (keyset paginated)."""
    changes = SegmentMembershipChange.objects.filter(segment=segment).select_related("contact")
    return paginate(changes, key="changed_at", limit=limit, after=cursor)


def segment_choices(*, workspace_id: str) -> list[tuple[str, str]]:
    """(slug, name) of the workspace's segments, by name: the builder's "in segment" choices."""
    return list(Segment.objects.live().filter(workspace_id=workspace_id).order_by("name").values_list("slug", "name"))


def segment_templates(*, workspace_id: str) -> dict[str, dict[str, Any]]:
    """The templates a segment of the workspace can start from, keyed by id: the seed's three,
    then one per group of each of its RFM models (one statement)."""
    return TEMPLATES | rfm_group_templates(rfm_selectors.rfm_model_list(workspace_id=workspace_id))
