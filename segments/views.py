"""Pages for marketers: dashboard, segments list, the segment builder and a segment's page.

Function views; each serves its full page and, to htmx, the fragment that changes (a partial of
the same template). Every form works without JavaScript: the builder's add/remove/template
buttons are plain submit buttons that htmx upgrades to in-place swaps.
"""

from __future__ import annotations

import json
import zoneinfo
from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.selectors import contact_get
from events_platform import parsers
from events_platform.charts import DailyBars
from events_platform.pages import found, page_or_first, query_with
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.web import WorkspaceRequest, workspace_required
from rfm import presenters as rfm_presenters
from rfm import selectors as rfm_selectors

from . import builder, presenters, rules, selectors, services
from .forms import SegmentMetaForm
from .models import Segment
from .presenters import Freshness, PreviewCondition, SizeChart

ACTIVITY_DAYS = 90  # the dashboard's events and revenue charts
MEMBERS_PAGE_SIZE = 25
CHANGES_PAGE_SIZE = 20
BUILDER_PAGE = "segments/segment_builder.html"
SEGMENT_PAGE = "segments/segment_detail.html"


def _workspace(request: WorkspaceRequest) -> Workspace:
    return request.workspace


def _segment_or_404(request: WorkspaceRequest, slug: str) -> Segment:
    """The current workspace's segment: another workspace's slug is simply not found."""
    return found(
        selectors.segment_get(workspace_id=_workspace(request).id, slug=slug), "No such segment in this workspace."
    )


# ---------------------------------------------------------------------------------------
# Dashboard and segments list
# ---------------------------------------------------------------------------------------


@require_GET
@workspace_required
def dashboard(request: WorkspaceRequest) -> HttpResponse:
    workspace = _workspace(request)
    now = timezone.now()
    segments = selectors.segment_list(workspace_id=workspace.id)
    figures = selectors.dashboard_figures(
        workspace_id=workspace.id, now=now, timezone_name=workspace.timezone, days=ACTIVITY_DAYS
    )
    context = {
        "figures": figures,
        "rows": presenters.with_freshness(segments, now),
        "activity_days": ACTIVITY_DAYS,
        "events_chart": DailyBars.of([(point.day, point.events) for point in figures.days]),
        "revenue_chart": DailyBars.of([(point.day, point.revenue) for point in figures.days]),
        "rfm_models": [
            (entry.model, rfm_presenters.size_bars(entry.model, entry.sizes))
            for entry in rfm_selectors.group_sizes(workspace_id=workspace.id)
        ],
    }
    return render(request, "segments/dashboard.html", context)


@require_GET
@workspace_required
def segment_list(request: WorkspaceRequest) -> HttpResponse:
    now = timezone.now()
    segments = selectors.segment_list(workspace_id=_workspace(request).id)
    return render(request, "segments/segment_list.html", {"rows": presenters.with_freshness(segments, now)})


@require_POST
@workspace_required
def segment_rebuild_view(request: WorkspaceRequest, slug: str) -> HttpResponse:
    segment = _segment_or_404(request, slug)
    services.segment_rebuild(segment=segment)
    messages.success(request, f"Rebuild of “{segment.name}” started.")
    target = request.POST.get("next", "")
    return redirect(target if target in (reverse("segment-list"), reverse("dashboard")) else segment_url(segment))


@require_http_methods(["GET", "POST"])
@workspace_required
def segment_delete_view(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """GET asks for confirmation (no JavaScript needed); POST deletes."""
    segment = _segment_or_404(request, slug)
    error = ""
    if request.method == "POST":
        try:
            services.segment_delete(segment=segment)
        except services.SegmentError as exc:
            error = exc.messages[0]
        else:
            messages.success(request, f"Segment “{segment.name}” is deleted.")
            return redirect("segment-list")
    return render(
        request, "segments/segment_delete.html", {"segment": segment, "error": error}, status=400 if error else 200
    )


def segment_url(segment: Segment) -> str:
    return reverse("segment-detail", args=[segment.slug])


# ---------------------------------------------------------------------------------------
# Builder
# ---------------------------------------------------------------------------------------


def _segment_names(workspace: Workspace, exclude: str = "") -> dict[str, str]:
    """Slugs and names of the segments a condition may refer to (one query)."""
    return {slug: name for slug, name in selectors.segment_choices(workspace_id=workspace.id) if slug != exclude}


def _referenced_names(workspace: Workspace, tree: dict[str, Any]) -> dict[str, str]:
    """Names of the segments a tree refers to, for its description (no query when it refers to none)."""
    return _segment_names(workspace) if rules.referenced_segments(tree) else {}


def _posted_tree(request: WorkspaceRequest) -> dict[str, Any]:
    """The tree the form describes; the JSON box wins when its own button was pressed."""
    if request.POST.get("op") == "load_json":
        try:
            # Nesting past the parser's bound is malformed too (json.loads would recurse past the stack).
            loaded = parsers.loads_bounded(request.POST.get("tree", ""))
        except ValueError:
            loaded = None
        if isinstance(loaded, dict):
            return builder.as_group(loaded)
    return builder.tree_from_controls(request.POST)


def _builder_context(
    request: WorkspaceRequest,
    *,
    form: SegmentMetaForm,
    tree: dict[str, Any],
    segment: Segment | None,
    errors: dict[str, list[str]] | None = None,
    tree_error: str = "",
    templates: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    workspace = _workspace(request)
    names = _segment_names(workspace, exclude=segment.slug if segment else "")
    if templates is None:
        templates = selectors.segment_templates(workspace_id=workspace.id)
    return {
        "form": form,
        "segment": segment,
        "root": builder.build_view(tree, errors=errors, segment_names=names),
        "tree_json": json.dumps(tree, indent=2),
        "segment_names": sorted(names.items(), key=lambda item: item[1].lower()),
        "templates": [(key, t["name"], t["description"]) for key, t in templates.items()],
        "choices": BUILDER_CHOICES,
        "errors": bool(errors) or bool(tree_error) or bool(form.errors),
        "tree_error": tree_error,
        "form_action": request.path,
    }


BUILDER_CHOICES = {
    "sources": builder.SOURCE_CHOICES,
    "branch": builder.BRANCH_CHOICES,
    "goal_types": builder.GOAL_TYPE_CHOICES,
    "aggregates": builder.AGGREGATE_CHOICES,
    "comparisons": builder.COMPARISON_CHOICES,
    "timeframes": builder.TIMEFRAME_CHOICES,
    "counts": builder.COUNT_CHOICES,
    "property_operators": builder.PROPERTY_OPERATOR_CHOICES,
    "contact_fields": builder.CONTACT_FIELD_CHOICES,
    "segment_operators": builder.SEGMENT_OPERATOR_CHOICES,
    "rfm_fields": builder.RFM_FIELD_CHOICES,
    "rfm_operators": builder.RFM_OPERATOR_CHOICES,
    "timeline_timeframes": builder.TIMELINE_TIMEFRAME_CHOICES,
    "contact_modes": builder.CONTACT_MODE_CHOICES,
    "dimension_fields": builder.DIMENSION_FIELD_CHOICES,
    "dimension_types": builder.DIMENSION_TYPE_CHOICES,
}


@require_http_methods(["GET", "POST"])
@workspace_required
def segment_create_view(request: WorkspaceRequest) -> HttpResponse:
    return _builder(request, segment=None)


@require_http_methods(["GET", "POST"])
@workspace_required
def segment_edit_view(request: WorkspaceRequest, slug: str) -> HttpResponse:
    return _builder(request, segment=_segment_or_404(request, slug))


def _builder(request: WorkspaceRequest, *, segment: Segment | None) -> HttpResponse:
    """One view for the whole builder: GET shows it; a POST either applies a structural edit
    (add, remove, template, load JSON: re-rendered, nothing saved) or saves."""
    if request.method == "GET":
        form = SegmentMetaForm.for_segment(segment, _workspace(request))
        tree = builder.as_group(segment.tree) if segment is not None else builder.default_tree()
        return render(request, BUILDER_PAGE, _builder_context(request, form=form, tree=tree, segment=segment))
    op = request.POST.get("op", "save")
    if op == "save":
        return _builder_save(request, segment=segment)
    tree = _posted_tree(request)
    templates = selectors.segment_templates(workspace_id=_workspace(request).id)
    if op not in ("load_json", "refresh"):
        tree = builder.apply_edit(tree, op, templates=templates)
    template_key = op.removeprefix("template:") if op.startswith("template:") else ""
    form = SegmentMetaForm.as_typed(request.POST, segment=segment, template_key=template_key, templates=templates)
    page = BUILDER_PAGE + "#builder-form" if request.htmx else BUILDER_PAGE
    context = _builder_context(request, form=form, tree=tree, segment=segment, templates=templates)
    return render(request, page, context)


def _builder_save(request: WorkspaceRequest, *, segment: Segment | None) -> HttpResponse:
    """Create or update the segment from the form and the tree; else the builder again with each
    problem at its place (400)."""
    tree = _posted_tree(request)
    form = SegmentMetaForm(
        request.POST, editing=segment is not None, initial={"slug": segment.slug} if segment else None
    )
    tree_errors: dict[str, list[str]] = {}
    tree_error = ""
    try:
        valid_tree = rules.validate_tree(tree)
    except rules.TreeValidationError as exc:
        tree_errors = exc.errors
    if form.is_valid() and not tree_errors:
        data = form.cleaned_data
        meta: dict[str, Any] = {
            "name": data["name"],
            "color": data["color"],
            "tree": valid_tree,
            "timezone_name": data["timezone"],
        }
        try:
            if segment is None:
                saved = services.segment_create(workspace_id=_workspace(request).id, slug=data["slug"], **meta)
            else:
                saved = services.segment_update(segment=segment, **meta)
        except rules.TreeValidationError as exc:
            tree_errors = exc.errors
        except ValidationError as exc:  # a business rule (a taken id, an unknown segment) or a field's
            tree_error = form.add_service_errors(exc)
        else:
            # No word on the build here: the page's status says it, and keeps saying it truthfully.
            messages.success(request, f"Saved “{saved.name}”.")
            return redirect(segment_url(saved))
    context = _builder_context(
        request, form=form, tree=tree, segment=segment, errors=tree_errors, tree_error=tree_error
    )
    return render(request, BUILDER_PAGE, context, status=400)


@require_POST
@workspace_required
def segment_preview_view(request: WorkspaceRequest) -> HttpResponse:
    """The live preview (a fragment): totals for the tree the form describes, nothing written.

    It also refreshes each condition's label (out of band), so labels follow the typing."""
    workspace = _workspace(request)
    tree = _posted_tree(request)
    timezone_name = request.POST.get("timezone") or workspace.timezone
    if timezone_name not in zoneinfo.available_timezones():
        timezone_name = workspace.timezone
    names = _segment_names(workspace)
    view = builder.build_view(tree, segment_names=names)
    context: dict[str, Any] = {"leaves": [node for node in builder.walk(view) if node.kind == "leaf"], "oob": True}
    try:
        valid = rules.validate_tree(tree)
        preview = selectors.segment_preview(workspace_id=workspace.id, tree=valid, timezone_name=timezone_name)
    except rules.TreeValidationError as exc:
        context["invalid"] = sum(len(messages) for messages in exc.errors.values())
        context["problems"] = [
            f"{presenters.problem_location(node_path, control)}: {message}"
            for (node_path, control), slot_messages in builder.error_slots(exc.errors).items()
            for message in slot_messages
        ][:5]
    else:
        context["preview"] = preview
        context["conditions"] = [
            PreviewCondition(label=rules.describe(node, segment_names=names), count=count)
            for node, count in zip(valid["branch"]["leaves"], preview.condition_counts, strict=True)
        ]
        context["share"] = (
            round(100 * preview.total / preview.contacts_in_workspace) if preview.contacts_in_workspace else 0
        )
    return render(request, "segments/_preview.html", context)


# ---------------------------------------------------------------------------------------
# Segment page
# ---------------------------------------------------------------------------------------


@require_GET
@workspace_required
def segment_detail(request: WorkspaceRequest, slug: str) -> HttpResponse:
    """The segment page; to htmx, only the part asked for: status (polled while building),
    members (search, next page), the entered/exited log, or an explanation.

    Times read in the workspace's timezone, in the whole page and in each fragment alike."""
    with timezone.override(zoneinfo.ZoneInfo(_workspace(request).timezone)):
        return _segment_detail(request, slug)


def _segment_detail(request: WorkspaceRequest, slug: str) -> HttpResponse:
    segment = _segment_or_404(request, slug)
    target = request.htmx.target if request.htmx else None
    context: dict[str, Any] = {"segment": segment, "freshness": Freshness.of(segment, timezone.now())}

    if target == "segment-status":
        response = render(request, SEGMENT_PAGE + "#status", context)
        if segment.status != Segment.Status.BUILDING:
            # Everything that shows the build (members, the log, the chart) reloads itself on this.
            response["HX-Trigger"] = "segment-built"
        return response
    fragments = {"members": _members, "changes": _changes, "size-chart": _size_chart, "explain": _explain}
    if target in fragments:
        return render(request, f"{SEGMENT_PAGE}#{target}", context | fragments[target](request, segment))

    for part in (_members, _changes, _size_chart):
        context |= part(request, segment)
    tree = builder.as_group(segment.tree)
    names = _referenced_names(_workspace(request), segment.tree)
    context |= {
        "conditions": [rules.describe(node, segment_names=names) for node in tree["branch"]["leaves"]],
        "combine": rules.vocabulary.BRANCHES[tree["branch"]["operator"]].label,
        "negated_root": bool(segment.tree.get("negate")),
    }
    if request.GET.get("email"):
        context |= _explain(request, segment)
    return render(request, SEGMENT_PAGE, context)


def _size_chart(request: WorkspaceRequest, segment: Segment) -> dict[str, Any]:
    timezone_name = _workspace(request).timezone
    history = selectors.segment_size_by_day(segment=segment, timezone_name=timezone_name)
    return {"chart": SizeChart.of(history, timezone.localdate(timezone=zoneinfo.ZoneInfo(timezone_name)))}


def _members(request: WorkspaceRequest, segment: Segment) -> dict[str, Any]:
    search = request.GET.get("q", "").strip()
    members = partial(selectors.segment_members, segment=segment, limit=MEMBERS_PAGE_SIZE, search=search)
    page = page_or_first(members, cursor=request.GET.get("after"))
    return {
        "members": page.items,
        "search": search,
        "members_next": query_with(request, after=page.next_cursor) if page.next_cursor else None,
        "members_first": query_with(request, after=None) if request.GET.get("after") else None,
    }


def _changes(request: WorkspaceRequest, segment: Segment) -> dict[str, Any]:
    changes = partial(selectors.segment_changes, segment=segment, limit=CHANGES_PAGE_SIZE)
    page = page_or_first(changes, cursor=request.GET.get("changes_after"))
    return {
        "changes": page.items,
        "changes_next": query_with(request, changes_after=page.next_cursor) if page.next_cursor else None,
        "changes_first": query_with(request, changes_after=None) if request.GET.get("changes_after") else None,
    }


def _explain(request: WorkspaceRequest, segment: Segment) -> dict[str, Any]:
    email = request.GET.get("email", "").strip()
    if not email:
        return {"explain_email": "", "explain_error": "Type a contact's email."}
    contact = contact_get(workspace_id=segment.workspace_id, email=email)
    if contact is None:
        return {"explain_email": email, "explain_error": f"No contact with the email {email} in this workspace."}
    return {"explain_email": email, "explanation": selectors.segment_explain(segment=segment, contact=contact)}


@require_GET
@workspace_required
def segment_export(request: WorkspaceRequest, slug: str) -> StreamingHttpResponse:
    """The members as CSV, streamed from a server-side cursor (constant memory)."""
    return presenters.members_csv(_segment_or_404(request, slug))
