"""Pages for marketers: the contacts list, a contact with its timeline, and the events list.

Each view serves its full page, and to an htmx request the fragment that changes (a partial of
the same template), so every link works with and without JavaScript.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from events_platform.workspaces.models import Workspace
from events_platform.workspaces.web import workspace_required

from . import selectors
from .models import Contact, GoalType, TimelineEntry

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 25
INLINE_PROPERTIES = 3
ALL_EVENTS_KIND = "custom_event.*"
EVENT_KIND_PREFIX = "custom_event."


def _day_start(day: date | None, workspace: Workspace) -> datetime | None:
    """Midnight of ``day`` in the workspace's timezone: dates on the page are the workspace's dates."""
    if day is None:
        return None
    return datetime.combine(day, time.min, tzinfo=zoneinfo.ZoneInfo(workspace.timezone))


class DateRangeForm(forms.Form):
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since, until = data.get("since"), data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end date is before the start date.")
        return data

    def bounds(self, workspace: Workspace) -> tuple[datetime | None, datetime | None]:
        """[since, until) in the workspace's timezone; the end date is included."""
        if not self.is_valid():
            return None, None
        until = self.cleaned_data.get("until")
        return (
            _day_start(self.cleaned_data.get("since"), workspace),
            _day_start(until + timedelta(days=1) if until else None, workspace),
        )


def _query(request: HttpRequest, **changes: str | None) -> str:
    """The current query string with some parameters replaced (None drops one)."""
    params = {key: value for key, value in request.GET.items() if value}
    for key, value in changes.items():
        params.pop(key, None)
        if value:
            params[key] = value
    return "?" + urlencode(params) if params else "?"


def _cursor_links(request: HttpRequest, page: selectors.Page[Any]) -> dict[str, str | None]:
    return {
        "next_url": _query(request, after=page.next_cursor, before=None) if page.next_cursor else None,
        "prev_url": _query(request, before=page.prev_cursor, after=None) if page.prev_cursor else None,
    }


# ---------------------------------------------------------------------------------------
# Contacts list
# ---------------------------------------------------------------------------------------

SORTABLE_COLUMNS = (("ltv", "Lifetime value"), ("orders", "Orders"), ("last_event", "Last event"))


@workspace_required
def contact_list(request: HttpRequest) -> HttpResponse:
    workspace: Workspace = request.workspace  # type: ignore[attr-defined]
    search = request.GET.get("q", "").strip()
    segment = request.GET.get("segment", "").strip()
    sort = request.GET.get("sort", selectors.DEFAULT_CONTACT_SORT)
    if sort not in selectors.CONTACT_SORTS:
        sort = selectors.DEFAULT_CONTACT_SORT
    arguments = {"workspace_id": workspace.id, "search": search, "segment_slug": segment, "sort": sort}
    try:
        page = selectors.contact_page(
            **arguments,
            limit=PAGE_SIZE,
            after=request.GET.get("after") or None,
            before=request.GET.get("before") or None,
        )
    except selectors.InvalidCursor:
        page = selectors.contact_page(**arguments, limit=PAGE_SIZE)
    columns = []
    for key, label in SORTABLE_COLUMNS:
        # First click sorts biggest first; clicking the active column flips it.
        target = key if sort == f"-{key}" else f"-{key}"
        direction = "descending" if sort == f"-{key}" else "ascending" if sort == key else "none"
        columns.append(
            {"label": label, "url": _query(request, sort=target, after=None, before=None), "aria": direction}
        )
    context = {
        "page": page,
        "search": search,
        "segment": segment,
        "sort": sort,
        "columns": columns,
        "segments": selectors.segment_choices(workspace=workspace),
        **_cursor_links(request, page),
    }
    template = "contacts/contact_list.html"
    if request.htmx and request.htmx.target == "contact-results":  # type: ignore[attr-defined]
        template += "#results"
    return render(request, template, context)


# ---------------------------------------------------------------------------------------
# Contact page and timeline
# ---------------------------------------------------------------------------------------


class TimelineFilterForm(DateRangeForm):
    kind = forms.ChoiceField(required=False, label="Show")

    def __init__(self, *args: Any, kinds: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        events = [(kind, kind.removeprefix(EVENT_KIND_PREFIX)) for kind in kinds if kind.startswith(EVENT_KIND_PREFIX)]
        others = [(kind, kind) for kind in kinds if not kind.startswith(EVENT_KIND_PREFIX)]
        choices: list[Any] = [("", "Everything"), (ALL_EVENTS_KIND, "All custom events")]
        if events:
            choices.append(("Event name", events))
        if others:
            choices.append(("Other entries", others))
        self.fields["kind"].choices = choices


@dataclass(frozen=True)
class TimelineItem:
    """One timeline entry, shaped for the page."""

    entry: TimelineEntry
    inline_properties: list[tuple[str, Any]]
    more_properties: list[tuple[str, Any]]
    currency: str
    segment_name: str
    changed_fields: list[str]

    @classmethod
    def of(cls, entry: TimelineEntry) -> TimelineItem:
        event = entry.custom_event
        properties = list(event.properties.items()) if event is not None and isinstance(event.properties, dict) else []
        currency = ""
        if event is not None and isinstance(event.properties, dict):
            currency = str(event.properties.get("currency") or "")
        segment = (entry.changes or {}).get("segment", {}).get("new") if entry.entity_type == "segment" else None
        changed = []
        if entry.operation == TimelineEntry.Operation.UPDATE and isinstance(entry.changes, dict):
            changed = sorted(entry.changes)
        return cls(
            entry=entry,
            inline_properties=properties[:INLINE_PROPERTIES],
            more_properties=properties[INLINE_PROPERTIES:],
            currency=currency,
            segment_name=str(segment.get("name") or segment.get("id") or "") if isinstance(segment, dict) else "",
            changed_fields=changed,
        )


@workspace_required
def contact_detail(request: HttpRequest, pk: int) -> HttpResponse:
    workspace: Workspace = request.workspace  # type: ignore[attr-defined]
    contact = get_object_or_404(Contact, pk=pk, workspace=workspace)
    # Only the "Older events" fragment is served to htmx: it needs neither summary nor filters' choices.
    fragment = bool(request.htmx and request.GET.get("cursor"))  # type: ignore[attr-defined]
    kind = request.GET.get("kind", "")
    since, until = DateRangeForm(request.GET).bounds(workspace)
    form = None
    if not fragment:
        kinds = selectors.timeline_kinds(contact=contact)
        form = TimelineFilterForm(request.GET, kinds=kinds)
        form.is_valid()  # errors are shown next to their field; valid parts still apply
        if kind not in kinds and kind != ALL_EVENTS_KIND:
            kind = ""  # a kind this contact never had: the form says so, the timeline shows everything
    try:
        page = selectors.timeline_list(
            contact=contact,
            kind=kind or None,
            limit=TIMELINE_PAGE_SIZE,
            cursor=request.GET.get("cursor") or None,
            since=since,
            until=until,
        )
    except selectors.InvalidCursor:
        page = selectors.timeline_list(contact=contact, kind=kind or None, limit=TIMELINE_PAGE_SIZE)
    context: dict[str, Any] = {
        "contact": contact,
        "items": [TimelineItem.of(entry) for entry in page.items],
        "older_url": _query(request, cursor=page.next_cursor) if page.next_cursor else None,
        "newest_url": _query(request, cursor=None) if request.GET.get("cursor") else None,
        "filtered": bool(kind or since or until),
    }
    if fragment:
        return render(request, "contacts/contact_detail.html#timeline-page", context)
    context.update(
        form=form,
        summary=selectors.contact_summary(contact=contact),
        memberships=selectors.contact_segment_memberships(contact=contact),
    )
    return render(request, "contacts/contact_detail.html", context)


# ---------------------------------------------------------------------------------------
# Events list
# ---------------------------------------------------------------------------------------


class EventFilterForm(DateRangeForm):
    event_name = forms.CharField(
        required=False,
        label="Event name",
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "order.completed or order.*", "autocomplete": "off"}),
    )
    goal_type = forms.ChoiceField(required=False, label="Goal type", choices=[("", "Any"), *GoalType.choices])
    deleted = forms.ChoiceField(
        required=False, label="Status", choices=selectors.DeletedFilter.CHOICES, initial=selectors.DeletedFilter.LIVE
    )

    field_order = ["event_name", "goal_type", "deleted", "since", "until"]


@workspace_required
def event_list(request: HttpRequest) -> HttpResponse:
    workspace: Workspace = request.workspace  # type: ignore[attr-defined]
    form = EventFilterForm(request.GET)
    filters: dict[str, Any] = {}
    if form.is_valid():
        since, until = form.bounds(workspace)
        filters = {
            "event_name": form.cleaned_data["event_name"].strip(),
            "goal_type": form.cleaned_data["goal_type"],
            "deleted": form.cleaned_data["deleted"] or selectors.DeletedFilter.LIVE,
            "since": since,
            "until": until,
        }
    try:
        page = selectors.event_page(
            workspace_id=workspace.id,
            **filters,
            limit=PAGE_SIZE,
            after=request.GET.get("after") or None,
            before=request.GET.get("before") or None,
        )
    except selectors.InvalidCursor:
        page = selectors.event_page(workspace_id=workspace.id, **filters, limit=PAGE_SIZE)
    context = {"form": form, "page": page, **_cursor_links(request, page)}
    template = "contacts/event_list.html"
    if request.htmx and request.htmx.target == "event-results":  # type: ignore[attr-defined]
        template += "#results"
    return render(request, template, context)
