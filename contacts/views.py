"""Pages for marketers: the contacts list, a contact with its timeline, and the events list.

Each view serves its full page, and to an htmx request the fragment that changes (a partial of
the same template), so every link works with and without JavaScript. Forms live in ``forms.py``,
what the pages show is shaped in ``presenters.py``.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from events_platform.pages import page_or_first, query_with
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.planning import workspace_value
from events_platform.workspaces.web import WorkspaceRequest, workspace_required

from . import presenters, selectors
from .forms import ContactFilterForm, DateRangeForm, EventFilterForm, TimelineFilterForm
from .models import Contact
from .panels import contact_panels

PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 25


def _cursor_links(request: HttpRequest, page: selectors.Page[Any]) -> dict[str, str | None]:
    return {
        "next_url": query_with(request, after=page.next_cursor, before=None) if page.next_cursor else None,
        "prev_url": query_with(request, before=page.prev_cursor, after=None) if page.prev_cursor else None,
    }


# ---------------------------------------------------------------------------------------
# Contacts list
# ---------------------------------------------------------------------------------------


@workspace_required
def contact_list(request: WorkspaceRequest) -> HttpResponse:
    workspace: Workspace = request.workspace
    form = ContactFilterForm(request.GET, segments=selectors.segment_choices(workspace=workspace))
    filters = form.filters()
    page = page_or_first(
        partial(selectors.contact_page, workspace_id=workspace.id, **filters, limit=PAGE_SIZE),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    sort = filters["sort"]
    searched = bool(filters["search"] or filters["segment_slug"])
    context = {
        "form": form,
        "page": page,
        "searched": searched,
        "filtered": searched or sort != selectors.DEFAULT_CONTACT_SORT,
        "columns": presenters.sort_columns(
            sort, lambda sorted_by: query_with(request, sort=sorted_by, after=None, before=None)
        ),
        **_cursor_links(request, page),
    }
    template = "contacts/contact_list.html"
    if request.htmx and request.htmx.target == "contact-results":
        template += "#results"
    return render(request, template, context)


# ---------------------------------------------------------------------------------------
# Contact page and timeline
# ---------------------------------------------------------------------------------------


@workspace_required
def contact_detail(request: WorkspaceRequest, pk: int) -> HttpResponse:
    workspace: Workspace = request.workspace
    # By id, the workspace a value the planner cannot estimate (events_platform/workspaces/planning.py).
    contact = get_object_or_404(Contact.objects.filter(workspace_id=workspace_value(workspace.pk)), pk=pk)
    # Only the "Older events" fragment is served to htmx: it needs neither summary nor filters' choices.
    fragment = bool(request.htmx and request.GET.get("cursor"))
    kind = request.GET.get("kind", "")
    since, until = DateRangeForm(request.GET).bounds(workspace)
    form = None
    if not fragment:
        kinds = selectors.timeline_kinds(contact=contact)
        form = TimelineFilterForm(request.GET, kinds=kinds)
        form.is_valid()  # errors are shown next to their field; valid parts still apply
        if kind not in kinds and kind != presenters.ALL_EVENTS_KIND:
            kind = ""  # a kind this contact never had: the form says so, the timeline shows everything
    timeline = partial(
        selectors.timeline_list, contact=contact, kind=kind or None, since=since, until=until, limit=TIMELINE_PAGE_SIZE
    )
    page = page_or_first(timeline, cursor=request.GET.get("cursor"))
    context: dict[str, Any] = {
        "contact": contact,
        "items": [presenters.TimelineItem.of(entry) for entry in page.items],
        "older_url": query_with(request, cursor=page.next_cursor) if page.next_cursor else None,
        "newest_url": query_with(request, cursor=None) if request.GET.get("cursor") else None,
        "filtered": bool(kind or since or until),
    }
    if fragment:
        return render(request, "contacts/contact_detail.html#timeline-page", context)
    context.update(
        form=form,
        properties=presenters.property_items(contact.free_properties),
        profile_fields=presenters.profile_items(contact),
        summary=selectors.contact_summary(contact=contact),
        memberships=selectors.contact_segment_memberships(contact=contact),
        panels=contact_panels(contact),
    )
    return render(request, "contacts/contact_detail.html", context)


# ---------------------------------------------------------------------------------------
# Events list
# ---------------------------------------------------------------------------------------


@workspace_required
def event_list(request: WorkspaceRequest) -> HttpResponse:
    workspace: Workspace = request.workspace
    form = EventFilterForm(request.GET)
    filters = form.filters(workspace)
    page = page_or_first(
        partial(selectors.event_page, workspace_id=workspace.id, **filters, limit=PAGE_SIZE),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    context = {
        "form": form,
        "page": page,
        "rows": [presenters.EventRow.of(event) for event in page.items],
        **_cursor_links(request, page),
    }
    template = "contacts/event_list.html"
    if request.htmx and request.htmx.target == "event-results":
        template += "#results"
    return render(request, template, context)
