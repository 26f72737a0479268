"""Reads of contacts, events and timelines, paginated by keyset (``events_platform.pagination``).

Every list pages by cursor, so deep pages cost what the first one costs; a cursor we did not
make raises ``InvalidCursor`` (a ``ValidationError`` at ``cursor``: the API's standard 400).
Segment memberships are read through the reverse relations segments defines on contacts and
workspaces (``contact.segment_memberships``, ``workspace.segments``) and their ``live()``
querysets, so this layer never imports segments.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypedDict

from django.db.models import (
    Count,
    DecimalField,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
    prefetch_related_objects,
)
from django.db.models.functions import Coalesce, Concat

from events_platform.pagination import DEFAULT_LIMIT, Page, paginate
from events_platform.pagination import InvalidCursor as InvalidCursor  # what these reads raise, for their callers
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.planning import workspace_value

from .changes import event_insert_changes
from .models import (
    GOAL_VALUE_DECIMAL_PLACES,
    GOAL_VALUE_MAX_DIGITS,
    PROFILE_FIELD_TYPES,
    Contact,
    ContactTally,
    CustomEvent,
    CustomEventQuerySet,
    GoalType,
    StoredTimelineEntry,
    TimelineEntry,
    normalize_email,
)


class ContactTotalsFields(TypedDict):
    """What ``with_contact_totals`` and ``with_stored_totals`` add to each contact."""

    lifetime_value: Decimal
    order_count: int
    last_event_at: datetime | None


if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

    ContactWithTotals = WithAnnotations[Contact, ContactTotalsFields]


def _named(field: str, value: str) -> Q:
    """``field`` equal to ``value``, or starting with it when it ends with ``*`` (``custom_event.*``)."""
    return Q(**{f"{field}__startswith": value[:-1]}) if value.endswith("*") else Q(**{field: value})


def _within(field: str, since: datetime | None, until: datetime | None) -> Q:
    """``field`` in [since, until); an open end is no bound."""
    bounds = {f"{field}__gte": since, f"{field}__lt": until}
    return Q(**{lookup: moment for lookup, moment in bounds.items() if moment is not None})


def contact_get(*, workspace_id: str, email: str) -> Contact | None:
    return Contact.objects.filter(workspace_id=workspace_value(workspace_id), email=normalize_email(email)).first()


def event_get(*, workspace_id: str, event_name: str, external_id: str) -> CustomEvent | None:
    return (
        CustomEvent.objects.live()
        .select_related("contact")
        .filter(workspace_id=workspace_value(workspace_id), event_name=event_name, external_id=external_id)
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
    events = CustomEvent.objects.live().select_related("contact")
    if email:
        contact = contact_get(workspace_id=workspace_id, email=email)
        if contact is None:
            return Page(items=[], next_cursor=None)
        # One contact's events: by its index, whatever the statistics say of the workspace.
        events = events.filter(workspace_id=workspace_value(workspace_id), contact=contact)
    else:
        events = events.filter(workspace_id=workspace_id)
    if event_name:
        events = events.filter(event_name=event_name)
    if goal_type:
        events = events.filter(goal_type=goal_type)
    return paginate(events, key="occurred_at", limit=limit, after=cursor, offset=offset)


def _memberships() -> Any:
    """Segment memberships (the segments app's model, reached through the reverse relation it
    defines on contacts, so this layer never imports it), deleted segments left out."""
    return Contact._meta.get_field("segment_memberships").related_model._default_manager.live()  # type: ignore[union-attr]  # a model class, not the "self" literal


def contact_list(
    *,
    workspace_id: str,
    search: str | None = None,
    containing: dict[str, str] | None = None,
    segment_slugs: Iterable[str] = (),
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
) -> Page[Contact]:
    """Contacts newest first. ``search`` is a substring of the email; ``containing`` maps
    ``external_id``, ``first_name``, ``last_name``, ``full_name`` or a profile field (``phone``,
    ``country``, ... stored in ``properties``) to a case-insensitive substring (all must hold);
    ``segment_slugs`` keeps members of any of those segments."""
    contacts = Contact.objects.filter(workspace_id=workspace_id)
    if search:
        contacts = contacts.filter(email__contains=normalize_email(search))
    for field, value in (containing or {}).items():
        if field == "full_name":  # the model's property, "first last": compared as SQL sees it
            contacts = contacts.alias(whole_name=Concat("first_name", Value(" "), "last_name"))
            field = "whole_name"
        elif field in PROFILE_FIELD_TYPES:
            field = f"properties__{field}"
        contacts = contacts.filter(**{f"{field}__icontains": value})
    slugs = sorted(set(segment_slugs))
    if slugs:
        member = _memberships().filter(
            contact=OuterRef("pk"), segment__workspace_id=workspace_id, segment__slug__in=slugs
        )
        contacts = contacts.filter(Exists(member))
    return paginate(contacts, key="created_at", limit=limit, after=cursor)


def contact_get_by_external_id(*, workspace_id: str, external_id: str) -> Contact | None:
    """The contact with exactly this external_id (the newest, should several share it)."""
    if not external_id:
        return None
    return Contact.objects.filter(workspace_id=workspace_value(workspace_id), external_id=external_id).first()


def contact_count(*, workspace_id: str) -> int:
    """The workspace's number of contacts: the sum of its ``ContactTally`` rows (a few once
    compacted, kept by triggers at every commit), not a count of the contacts."""
    total = ContactTally.objects.filter(workspace_id=workspace_id).aggregate(n=Sum("contacts"))["n"]
    return int(total or 0)


def contacts_segment_memberships(*, contacts: Sequence[Contact]) -> dict[int, list[Any]]:
    """Each contact's memberships with their segment, by contact pk: one query for a whole page."""
    found: dict[int, list[Any]] = {}
    rows = _memberships().filter(contact__in=[c.pk for c in contacts]).select_related("segment", "contact")
    for membership in rows.order_by("segment__name", "segment_id"):
        found.setdefault(membership.contact_id, []).append(membership)
    return found


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
    entries = TimelineEntry.objects.filter(_within("created_at", since, until), contact=contact)
    if kind:
        entries = entries.filter(_named("kind", kind))
    entries = entries.select_related("custom_event__contact")
    page = paginate(entries, key="created_at", limit=limit, after=cursor)
    with_insert_changes(page.items)
    return page


def with_insert_changes(entries: Sequence[TimelineEntry]) -> None:
    """Give event insert entries (read from the event row, migration 0011) their changes.

    The entries' events must be loaded (``select_related("custom_event")``). The events' later
    entries (whose "old" values are the inserted version's) are read in one query, on the
    stored entries' index of events; none when no entry is an event's insert.
    """
    lean = [
        (entry, event)
        for entry in entries
        if entry.operation == TimelineEntry.Operation.INSERT
        and not entry.changes
        and (event := entry.custom_event) is not None
    ]
    later: dict[int, list[Any]] = {}
    if lean:
        rows = (
            StoredTimelineEntry.objects.filter(custom_event_id__in={event.pk for _, event in lean})
            .order_by("id")
            .values_list("custom_event_id", "changes")
        )
        for event_id, changes in rows:
            later.setdefault(event_id, []).append(changes)
    for entry, event in lean:
        entry.changes = event_insert_changes(event, later.get(event.pk, []))


# =======================================================================================
# Pages (contacts list, contact page, events list): reads that shape the marketer UI.
# Keyset pagination in both directions over any sort key, including computed ones.
# =======================================================================================


def _live_purchases() -> CustomEventQuerySet:
    return CustomEvent.objects.live().filter(
        workspace_id=OuterRef("workspace_id"), contact=OuterRef("pk"), goal_type=GoalType.PURCHASE
    )


def with_contact_totals(contacts: QuerySet[Contact]) -> QuerySet[ContactWithTotals]:
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


_MONEY: DecimalField = DecimalField(max_digits=GOAL_VALUE_MAX_DIGITS + 6, decimal_places=GOAL_VALUE_DECIMAL_PLACES)


def with_stored_totals(contacts: QuerySet[Contact], *, sort_key: str | None = None) -> QuerySet[ContactWithTotals]:
    """Each contact's totals as ``ContactTotals`` holds them, joined (no per-row subquery).

    Eventually consistent: the stored figures follow a change once the refresh queue's drain
    has refreshed the contacts queued after it (``refresh.py``, normally within a second).
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
) -> Page[ContactWithTotals]:
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
    return paginate(
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
    return list(workspace.segments.live().order_by("name").values_list("slug", "name"))


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

    The average order value is over orders (positive purchases), before refunds. An index-only
    scan of ``event_live_goal_idx``: the counts count ``occurred_at`` (never null, included in
    that index) rather than the id, which would make PostgreSQL visit every event's heap page.
    """
    order, refund = Q(goal_value__gt=0), Q(goal_value__lt=0)
    totals = (
        CustomEvent.objects.live()
        .filter(workspace_id=workspace_value(contact.workspace_id), contact=contact, goal_type=GoalType.PURCHASE)
        .aggregate(
            net=Sum("goal_value"),
            gross=Sum("goal_value", filter=order),
            orders=Count("occurred_at", filter=order),
            first=Min("occurred_at", filter=order),
            last=Max("occurred_at", filter=order),
            refunds=Count("occurred_at", filter=refund),
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
    return list(contact.segment_memberships.live().select_related("segment").order_by("segment__name"))


def contacts_rfm_scores(*, workspace_id: str, contacts: Sequence[Contact]) -> dict[int, list[tuple[str, Any]]]:
    """By contact pk: (model id, the contact's score row or None) for each live RFM model of the
    workspace, for a whole page of its contacts in two queries (the models, their scores).

    Read through the reverse relations rfm defines on workspaces and contacts
    (``workspace.rfm_models``, ``contact.rfm_scores``), so this layer never imports rfm. No row
    yet (a contact created since the model's last run, not yet re-scored) is ``None``: prospect.
    """
    # The workspace by its key alone: its reverse relation needs no read of the workspace row.
    workspace = Workspace(pk=workspace_id)
    slugs = dict(workspace.rfm_models.exclude(status="deleted").order_by("slug").values_list("pk", "slug"))
    if not slugs or not contacts:
        return {contact.pk: [] for contact in contacts}
    # One query for the page's score rows (a deleted model's rows are deleted with it), in no
    # order: the scores' default ordering (by model, by contact) follows both relations' own
    # orderings, a join of the workspace's every contact (50 ms at 100k contacts).
    scores = Contact._meta.get_field("rfm_scores").related_model
    assert not isinstance(scores, str)
    prefetch_related_objects(list(contacts), Prefetch("rfm_scores", queryset=scores._default_manager.order_by()))
    by_key = {(score.contact_id, score.model_id): score for c in contacts for score in c.rfm_scores.all()}
    return {contact.pk: [(slug, by_key.get((contact.pk, pk))) for pk, slug in slugs.items()] for contact in contacts}


def contact_rfm_scores(*, contact: Contact) -> list[tuple[str, Any]]:
    """(model id, the contact's score row or None) for each live RFM model of its workspace."""
    return contacts_rfm_scores(workspace_id=contact.workspace_id, contacts=[contact])[contact.pk]


def timeline_kinds(*, contact: Contact) -> list[str]:
    """Distinct kinds in a contact's timeline: its stored entries' through ``timeline_contact_kind_idx``,
    its events' from ``event_contact_occurred_idx`` alone (index-only: the index includes the event name)."""
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
) -> Page[CustomEvent]:
    """A workspace's events newest first; ``event_name`` matches exactly or, ending in ``*``, as a prefix."""
    events = CustomEvent.objects.filter(_within("occurred_at", since, until), workspace_id=workspace_id)
    live = {DeletedFilter.LIVE: True, DeletedFilter.DELETED: False}.get(deleted)  # ALL: either
    if live is not None:
        events = events.filter(deleted_at__isnull=live)
    if event_name:
        events = events.filter(_named("event_name", event_name))
    if goal_type:
        events = events.filter(goal_type=goal_type)
    return paginate(events.select_related("contact"), key="occurred_at", limit=limit, after=after, before=before)
