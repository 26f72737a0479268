"""Reads of contacts, events and timelines, with keyset (cursor) pagination.

A cursor is an opaque url-safe token holding the sort key of the last row returned; the
next page starts strictly after it, so pages stay fast and stable however deep they go.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from django.db.models import (
    BooleanField,
    Count,
    DecimalField,
    F,
    Func,
    IntegerField,
    Max,
    Min,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils.dateparse import parse_datetime

from events_platform.workspaces.models import Workspace

from .models import (
    GOAL_VALUE_DECIMAL_PLACES,
    GOAL_VALUE_MAX_DIGITS,
    Contact,
    CustomEvent,
    CustomEventQuerySet,
    GoalType,
    TimelineEntry,
    normalize_email,
)

T = TypeVar("T", bound=Model)

DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class InvalidCursor(ValueError):
    """The cursor was not made by us (or was tampered with)."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(moment: datetime, pk: int) -> str:
    raw = json.dumps([moment.isoformat(), pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment_text, pk = json.loads(raw)
        moment = parse_datetime(moment_text)
        if moment is None or not isinstance(pk, int):
            raise ValueError
    except (ValueError, TypeError, json.JSONDecodeError) as exc:
        raise InvalidCursor("cursor is not valid; pass the next_cursor of a previous page") from exc
    return moment, pk


def paginate_desc(
    queryset: QuerySet[T], *, field: str, limit: int, cursor: str | None = None, offset: int = 0
) -> Page[T]:
    """Newest first by (field, id); ``offset`` is honoured for Notifuse clients, cursor is better."""
    queryset = queryset.order_by(f"-{field}", "-id")
    if cursor:
        moment, pk = decode_cursor(cursor)
        queryset = queryset.filter(Q(**{f"{field}__lt": moment}) | Q(**{field: moment, "id__lt": pk}))
    rows = list(queryset[offset : offset + limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], field), rows[-1].pk) if has_more and rows else None
    return Page(items=rows, next_cursor=next_cursor)


def contact_get(*, workspace_id: str, email: str) -> Contact | None:
    return Contact.objects.filter(workspace_id=workspace_id, email=normalize_email(email)).first()


def event_get(*, workspace_id: str, event_name: str, external_id: str) -> CustomEvent | None:
    return (
        CustomEvent.objects.live()
        .select_related("contact")
        .filter(workspace_id=workspace_id, event_name=event_name, external_id=external_id)
        .first()
    )


def event_list(
    *,
    workspace_id: str,
    email: str | None = None,
    event_name: str | None = None,
    goal_type: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    offset: int = 0,
) -> Page[CustomEvent]:
    events = CustomEvent.objects.live().select_related("contact").filter(workspace_id=workspace_id)
    if email:
        contact = contact_get(workspace_id=workspace_id, email=email)
        if contact is None:
            return Page(items=[], next_cursor=None)
        events = events.filter(contact=contact)
    if event_name:
        events = events.filter(event_name=event_name)
    if goal_type:
        events = events.filter(goal_type=goal_type)
    return paginate_desc(events, field="occurred_at", limit=limit, cursor=cursor, offset=offset)


def contact_list(
    *, workspace_id: str, search: str | None = None, limit: int = DEFAULT_LIMIT, cursor: str | None = None
) -> Page[Contact]:
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if search:
        contacts = contacts.filter(email__contains=normalize_email(search))
    return paginate_desc(contacts, field="created_at", limit=limit, cursor=cursor)


def timeline_list(
    *,
    contact: Contact,
    kind: str | None = None,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page[TimelineEntry]:
    """A contact's timeline newest first; event entries come with the event's current row.

    ``kind`` matches exactly, or as a prefix when it ends with ``*`` (``custom_event.*``).
    """
    entries = TimelineEntry.objects.filter(contact=contact).select_related("custom_event__contact")
    if kind:
        entries = entries.filter(kind__startswith=kind[:-1]) if kind.endswith("*") else entries.filter(kind=kind)
    if since:
        entries = entries.filter(created_at__gte=since)
    if until:
        entries = entries.filter(created_at__lt=until)
    return paginate_desc(entries, field="created_at", limit=limit, cursor=cursor)


# =======================================================================================
# Pages (contacts list, contact page, events list): reads that shape the marketer UI.
# Keyset pagination in both directions over any sort key, including computed ones.
# =======================================================================================

_EPOCH_TAG, _DECIMAL_TAG, _INT_TAG = "t", "d", "i"


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    items: list[T]
    next_cursor: str | None
    prev_cursor: str | None


def _encode_key(value: object, pk: int) -> str:
    if value is None:
        tagged: list[object] = [None, None]
    elif isinstance(value, datetime):
        tagged = [_EPOCH_TAG, value.isoformat()]
    elif isinstance(value, Decimal):
        tagged = [_DECIMAL_TAG, str(value)]
    elif isinstance(value, int):
        tagged = [_INT_TAG, value]
    else:  # pragma: no cover - a sort key of another type is a programming error
        raise TypeError(f"cannot put {type(value).__name__} in a cursor")
    raw = json.dumps([*tagged, pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_key(cursor: str) -> tuple[object, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, text, pk = json.loads(raw)
        if not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError
        value: object
        if tag is None:
            value = None
        elif tag == _EPOCH_TAG:
            value = parse_datetime(text)
            if value is None:
                raise ValueError
        elif tag == _DECIMAL_TAG:
            value = Decimal(text)
            if not value.is_finite():
                raise ValueError
        elif tag == _INT_TAG and isinstance(text, int):
            value = text
        else:
            raise ValueError
    except (ValueError, TypeError, ArithmeticError, json.JSONDecodeError) as exc:
        raise InvalidCursor("cursor is not valid; follow the page links") from exc
    return value, pk


class _RowBeyond(Func):
    """``(key, tiebreak) < (value, pk)`` (``>`` ascending) as one row comparison.

    PostgreSQL reads a row comparison over consecutive index columns as one index range that
    starts at the cursor, so a page deep in the list, or inside a long run of equal keys,
    costs what the first page costs; the equivalent OR it can only filter row by row from
    the top of the index. SQLite compares row values the same way. NULL keys never match.
    """

    output_field = BooleanField()

    def __init__(self, key: str, tiebreak: str, value: object, pk: int, *, descending: bool) -> None:
        super().__init__(F(key), F(tiebreak), Value(value), Value(pk))
        self.operator = "<" if descending else ">"

    def as_sql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, list[Any]]:
        parts, params = [], []
        for expression in self.get_source_expressions():
            sql, expression_params = compiler.compile(expression)
            parts.append(sql)
            params.extend(expression_params)
        key, tiebreak, value, pk = parts
        return f"({key}, {tiebreak}) {self.operator} ({value}, {pk})", params


_CURSOR_TYPES: dict[str, type] = {"DateTimeField": datetime, "DecimalField": Decimal}


def _key_type(queryset: QuerySet[Any], key: str) -> type:
    """The Python type a cursor's key must have: a cursor of another sort is refused up front."""
    annotation = queryset.query.annotations.get(key)
    field = annotation.output_field if annotation is not None else queryset.model._meta.get_field(key)
    return _CURSOR_TYPES.get(field.get_internal_type(), int)


def _ranges_after(
    key: str, tiebreak: str, cursor: tuple[object, int] | None, *, descending: bool, nullable: bool
) -> list[Q | Func]:
    """The rows after ``cursor`` in the order (key, tiebreak), as index ranges in reading order.

    A nullable key sorts NULL as the smallest value: last when descending, first when
    ascending. Rows after a cursor may then span two ranges (the rest of the non-NULL keys
    and the NULL run, or the reverse), each read in index order and only as far as needed.
    """
    if cursor is None:
        return [Q()]
    value, pk = cursor
    if value is None:
        rest = Q(**{f"{key}__isnull": True, f"{tiebreak}__{'lt' if descending else 'gt'}": pk})
        return [rest] if descending else [rest, Q(**{f"{key}__isnull": False})]
    beyond = _RowBeyond(key, tiebreak, value, pk, descending=descending)
    return [beyond, Q(**{f"{key}__isnull": True})] if descending and nullable else [beyond]


def _ordered(queryset: QuerySet[T], key: str, tiebreak: str, *, descending: bool, nullable: bool) -> QuerySet[T]:
    # NULLS FIRST/LAST only where NULLs can occur: spelled out on a NOT NULL column it would
    # stop PostgreSQL from reading a (…, -key, -id) index in order.
    if descending:
        return queryset.order_by(F(key).desc(nulls_last=True) if nullable else F(key).desc(), F(tiebreak).desc())
    return queryset.order_by(F(key).asc(nulls_first=True) if nullable else F(key).asc(), F(tiebreak).asc())


def paginate_keyset(
    queryset: QuerySet[T],
    *,
    key: str,
    descending: bool = True,
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
    before: str | None = None,
    nullable: bool = False,
    tiebreak: str = "pk",
) -> KeysetPage[T]:
    """One page by (key, tiebreak) with links both ways; ``key`` may be a field or an annotation.

    ``tiebreak`` names the row's primary key as the index to read holds it (the default, or a
    joined table's column equal to it). ``after`` continues forward from a row, ``before``
    walks back from one (the query runs in the reverse order and its rows are flipped), so
    neither depends on how deep the page is. One query, two where a nullable key's NULL run
    begins or ends on the page.
    """
    backwards = bool(before) and not after
    cursor = before if backwards else after
    direction = descending != backwards
    position = _decode_key(cursor) if cursor else None
    if position is not None and position[0] is not None and not isinstance(position[0], _key_type(queryset, key)):
        raise InvalidCursor("cursor is not valid for this sort; follow the page links")
    rows: list[T] = []
    for condition in _ranges_after(key, tiebreak, position, descending=direction, nullable=nullable):
        wanted = limit + 1 - len(rows)
        rows += _ordered(queryset.filter(condition), key, tiebreak, descending=direction, nullable=nullable)[:wanted]
        if len(rows) > limit:
            break
    has_more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    first = _encode_key(getattr(rows[0], key), rows[0].pk) if rows else None
    last = _encode_key(getattr(rows[-1], key), rows[-1].pk) if rows else None
    if backwards:
        return KeysetPage(items=rows, next_cursor=last, prev_cursor=first if has_more else None)
    return KeysetPage(items=rows, next_cursor=last if has_more else None, prev_cursor=first if cursor else None)


def _live_purchases() -> CustomEventQuerySet:
    return CustomEvent.objects.live().filter(
        workspace_id=OuterRef("workspace_id"), contact=OuterRef("pk"), goal_type=GoalType.PURCHASE
    )


def with_contact_totals(contacts: QuerySet[Contact]) -> QuerySet[Contact]:
    """Each contact's net lifetime value, order count and last event, computed live by
    correlated subqueries: the definition ``ContactTotals`` stores (and is checked against).

    Refunds are purchase events with a negative value, so the plain sum is net of them; an
    order is a live purchase with a positive value. The purchase subqueries are answered from
    the partial live-goal index, the last event from the (contact, -occurred_at) index.
    """
    net = _live_purchases().order_by().values("contact").annotate(total=Sum("goal_value")).values("total")
    orders = _live_purchases().filter(goal_value__gt=0).order_by().values("contact").annotate(n=Count("id")).values("n")
    last_event = CustomEvent.objects.live().filter(contact=OuterRef("pk")).order_by("-occurred_at", "-id")
    return contacts.annotate(
        lifetime_value=Coalesce(Subquery(net, output_field=_MONEY), Value(Decimal("0.00")), output_field=_MONEY),
        order_count=Coalesce(Subquery(orders, output_field=IntegerField()), Value(0)),
        last_event_at=Subquery(last_event.values("occurred_at")[:1]),
    )


_MONEY = DecimalField(max_digits=GOAL_VALUE_MAX_DIGITS + 6, decimal_places=GOAL_VALUE_DECIMAL_PLACES)


def with_stored_totals(contacts: QuerySet[Contact], *, sort_key: str | None = None) -> QuerySet[Contact]:
    """Each contact's totals as ``ContactTotals`` holds them, joined (no per-row subquery).

    Eventually consistent: the stored figures follow a change once the segment engine drains
    the contacts queued after it (``segments_refresh_pending``, normally within a second).
    Sorting by a total (``sort_key``) keeps only the contacts that have their row (all but
    those created in that last moment) and reads the (workspace, key, contact) index in order;
    otherwise the join is outer and a contact still without a row shows 0, 0 and no event.
    """
    if sort_key in TOTALS_SORT_KEYS:
        return contacts.filter(totals__workspace_id=F("workspace_id")).annotate(
            lifetime_value=F("totals__lifetime_value"),
            order_count=F("totals__order_count"),
            last_event_at=F("totals__last_event_at"),
        )
    return contacts.annotate(
        lifetime_value=Coalesce(F("totals__lifetime_value"), Value(Decimal("0.00")), output_field=_MONEY),
        order_count=Coalesce(F("totals__order_count"), Value(0)),
        last_event_at=F("totals__last_event_at"),
    )


# Sort parameter -> (annotation or field, descending). The default uses (workspace, -created_at, -id).
CONTACT_SORTS: dict[str, tuple[str, bool]] = {
    "-created": ("created_at", True),
    "created": ("created_at", False),
    "-ltv": ("lifetime_value", True),
    "ltv": ("lifetime_value", False),
    "-orders": ("order_count", True),
    "orders": ("order_count", False),
    "-last_event": ("last_event_at", True),
    "last_event": ("last_event_at", False),
}
DEFAULT_CONTACT_SORT = "-created"
TOTALS_SORT_KEYS = frozenset({"lifetime_value", "order_count", "last_event_at"})  # columns of ContactTotals
NULLABLE_CONTACT_SORT_KEYS = frozenset({"last_event_at"})  # a contact may have no event


def contact_page(
    *,
    workspace_id: str,
    search: str = "",
    segment_slug: str = "",
    sort: str = DEFAULT_CONTACT_SORT,
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
    before: str | None = None,
) -> KeysetPage[Contact]:
    """Contacts of a workspace with their stored totals, searched by email or name, in one query.

    Every word of ``search`` must appear in the email, first or last name. Segment membership
    is read through the reverse relation so this layer does not import segments. Sorts by a
    total read the ``ContactTotals`` index of that key (see ``with_stored_totals`` for how fresh
    the figures are); the contact page's own summary is computed live.
    """
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    for word in search.split():
        contacts = contacts.filter(
            Q(email__icontains=word) | Q(first_name__icontains=word) | Q(last_name__icontains=word)
        )
    if segment_slug:
        contacts = contacts.filter(
            segment_memberships__segment__slug=segment_slug,
            segment_memberships__segment__workspace_id=workspace_id,
        )
    key, descending = CONTACT_SORTS.get(sort, CONTACT_SORTS[DEFAULT_CONTACT_SORT])
    return paginate_keyset(
        with_stored_totals(contacts, sort_key=key),
        key=key,
        descending=descending,
        limit=limit,
        after=after,
        before=before,
        nullable=key in NULLABLE_CONTACT_SORT_KEYS,
        # The totals index holds the contact as contact_id: page by that column, not the contact's.
        tiebreak="totals__contact_id" if key in TOTALS_SORT_KEYS else "pk",
    )


def segment_choices(*, workspace: Workspace) -> list[tuple[str, str]]:
    """(slug, name) of the workspace's segments for filters, through the reverse relation."""
    return list(workspace.segments.live().order_by("name").values_list("slug", "name"))  # type: ignore[attr-defined]


@dataclass(frozen=True)
class ContactSummary:
    lifetime_value: Decimal
    order_count: int
    average_order_value: Decimal | None
    first_purchase_at: datetime | None
    last_purchase_at: datetime | None
    refund_count: int
    refund_total: Decimal


def contact_summary(*, contact: Contact) -> ContactSummary:
    """RFM figures of one contact in one aggregate query over its live purchase events.

    The average order value is over orders (positive purchases), before refunds.
    """
    order, refund = Q(goal_value__gt=0), Q(goal_value__lt=0)
    totals = (
        CustomEvent.objects.live()
        .filter(workspace_id=contact.workspace_id, contact=contact, goal_type=GoalType.PURCHASE)
        .aggregate(
            net=Sum("goal_value"),
            gross=Sum("goal_value", filter=order),
            orders=Count("id", filter=order),
            first=Min("occurred_at", filter=order),
            last=Max("occurred_at", filter=order),
            refunds=Count("id", filter=refund),
            refunded=Sum("goal_value", filter=refund),
        )
    )
    orders = totals["orders"] or 0
    gross = totals["gross"] or Decimal("0")
    return ContactSummary(
        lifetime_value=totals["net"] or Decimal("0.00"),
        order_count=orders,
        average_order_value=(gross / orders).quantize(Decimal("0.01")) if orders else None,
        first_purchase_at=totals["first"],
        last_purchase_at=totals["last"],
        refund_count=totals["refunds"] or 0,
        refund_total=-(totals["refunded"] or Decimal("0.00")),
    )


def contact_segment_memberships(*, contact: Contact) -> list[Any]:
    """The contact's memberships with their segment, deleted segments left out."""
    return list(
        contact.segment_memberships.live()  # type: ignore[attr-defined]
        .select_related("segment")
        .order_by("segment__name")
    )


def timeline_kinds(*, contact: Contact) -> list[str]:
    """Distinct kinds in a contact's timeline (served by the (contact, kind, ...) index)."""
    return list(
        TimelineEntry.objects.filter(contact=contact).order_by("kind").values_list("kind", flat=True).distinct()
    )


class DeletedFilter:
    LIVE = "live"
    DELETED = "deleted"
    ALL = "all"
    CHOICES = ((LIVE, "Live"), (DELETED, "Deleted"), (ALL, "All"))


def event_page(
    *,
    workspace_id: str,
    event_name: str = "",
    goal_type: str = "",
    since: datetime | None = None,
    until: datetime | None = None,
    deleted: str = DeletedFilter.LIVE,
    limit: int = DEFAULT_LIMIT,
    after: str | None = None,
    before: str | None = None,
) -> KeysetPage[CustomEvent]:
    """A workspace's events newest first; ``event_name`` matches exactly or, ending in ``*``, as a prefix."""
    events = CustomEvent.objects.filter(workspace_id=workspace_id).select_related("contact")
    if deleted == DeletedFilter.LIVE:
        events = events.filter(deleted_at__isnull=True)
    elif deleted == DeletedFilter.DELETED:
        events = events.filter(deleted_at__isnull=False)
    if event_name:
        if event_name.endswith("*"):
            events = events.filter(event_name__startswith=event_name[:-1])
        else:
            events = events.filter(event_name=event_name)
    if goal_type:
        events = events.filter(goal_type=goal_type)
    if since:
        events = events.filter(occurred_at__gte=since)
    if until:
        events = events.filter(occurred_at__lt=until)
    return paginate_keyset(events, key="occurred_at", limit=limit, after=after, before=before)
