"""RFM pages for marketers: the list of models and one model's page (heatmap, group tiles,
transitions, medians, cut points), and the contact page's RFM card.

Function views; the model page serves its htmx fragments (a heatmap cell's contacts, the
heatmap's colour toggle, the transition matrix for two other dates) from the same view and
template, and every fragment link is also a plain link. While a full run is in progress the page
says so and reloads itself when it ends (``hx-trigger="every 2s"`` on the status only).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contacts.models import Contact
from events_platform.pages import found
from events_platform.workspaces.web import WorkspaceRequest, workspace_required

from . import presenters, selectors, services
from .forms import CellForm, TransitionForm
from .models import RfmModel

MODEL_PAGE = "rfm/rfm_detail.html"
CELL_CONTACTS = 25
CONTACT_CHANGES = 12
FRAGMENTS = {"rfm-status": "status", "heatmap": "heatmap", "cell": "cell", "transitions": "transitions"}


def _model_or_404(request: WorkspaceRequest, slug: str) -> RfmModel:
    return found(
        selectors.rfm_model_get(workspace_id=request.workspace.id, slug=slug), "No such RFM model in this workspace."
    )


@require_GET
@workspace_required
def rfm_list(request: WorkspaceRequest) -> HttpResponse:
    return render(
        request,
        "rfm/rfm_list.html",
        {"models": selectors.rfm_model_list(workspace_id=request.workspace.id).order_by("name", "slug")},
    )


@require_POST
@workspace_required
def rfm_create_preset(request: WorkspaceRequest) -> HttpResponse:
    """The list page's one-click start: the Klaviyo preset as model ``default`` (if free)."""
    try:
        model = services.rfm_model_create(
            workspace_id=request.workspace.id, slug="default", name="Purchases RFM", settings={"preset": "klaviyo"}
        )
    except services.RfmError as exc:
        messages.error(request, exc.messages[0])
        return redirect("rfm-list")
    messages.success(request, f"“{model.name}” is being computed.")
    return redirect("rfm-detail", slug=model.slug)


@require_POST
@workspace_required
def rfm_recompute(request: WorkspaceRequest, slug: str) -> HttpResponse:
    model = services.rfm_model_recompute(model=_model_or_404(request, slug))
    messages.success(request, f"A full run of “{model.name}” started.")
    return redirect("rfm-detail", slug=model.slug)


@require_GET
@workspace_required
def rfm_detail(request: WorkspaceRequest, slug: str) -> HttpResponse:
    model = _model_or_404(request, slug)
    now = timezone.now()
    zone = zoneinfo.ZoneInfo(model.timezone)
    # htmx names the element it swaps: that fragment is served (the URLs are the page's own).
    part = FRAGMENTS.get(request.htmx.target or "", "") if request.htmx else ""
    context: dict[str, Any] = {"model": model, "computing": model.status == RfmModel.Status.COMPUTING}
    if part == "status":
        response = render(request, MODEL_PAGE + "#status", context)
        if not context["computing"]:
            response["HX-Refresh"] = "true"  # the run ended: show the whole page with its results
        return response
    if model.last_computed_at is None:  # no run yet: only the status (or the failure)
        return render(request, MODEL_PAGE, context)

    color_by = request.GET.get("color", "count")
    color_by = color_by if color_by in presenters.COLOR_BY else "count"
    cell = CellForm(request.GET, scale=model.scale)
    selected = (cell.cleaned_data["r"], cell.cleaned_data["f"]) if cell.is_valid() else None
    context.update(color_by=color_by, selected=selected, cell_form=cell)

    if part in ("", "heatmap", "cell"):
        if selected is not None:
            r, f = selected
            context.update(
                cell_contacts=list(selectors.cell_contacts(model=model, r=r, f=f, limit=CELL_CONTACTS)),
                cell_tree=presenters.cell_segment_tree(model, r, f),
                cell_segment_name=f"{model.name}: R{r} F{f}",
            )
        if part == "cell":
            return render(request, MODEL_PAGE + "#cell", context)
        context["heatmap"] = presenters.Heatmap.of(
            model, selectors.cells(model=model), color_by=color_by, selected=selected
        )
        if part == "heatmap":
            return render(request, MODEL_PAGE + "#heatmap", context)

    dates = selectors.run_dates(model=model)
    first = dates.first or model.last_computed_at
    today = now.astimezone(zone).date()
    form = TransitionForm(request.GET, first=first.astimezone(zone).date(), today=today)
    since_day, until_day = form.days()
    context.update(transition_form=form, since_day=since_day, until_day=until_day, today=today)
    until = None if until_day >= today else selectors.end_of_day(until_day, model.timezone)
    context["matrix"] = presenters.transition_matrix(
        model, selectors.transitions(model=model, since=selectors.end_of_day(since_day, model.timezone), until=until)
    )
    if part == "transitions":
        return render(request, MODEL_PAGE + "#transitions", context)

    month_ago = now - dt.timedelta(days=30)
    month = selectors.transitions(model=model, since=month_ago, until=None) if first <= month_ago else None
    unscored = selectors.unscored_contacts(model=model)
    context.update(
        tiles=presenters.group_tiles(model, selectors.group_figures(model=model), unscored=unscored, month=month),
        cut_rows=presenters.cut_rows(model),
        warnings=presenters.warnings(model.population, selectors.most_common_frequency(model=model)),
        runs=dates,
        segment_create_url=reverse("segment-create"),
    )
    return render(request, MODEL_PAGE, context)


def contact_card(contact: Contact) -> dict[str, Any] | None:
    """The contact page's RFM card: current and previous group under each model, and the history
    (registered as a contact-page panel in ``RfmConfig.ready()``); two queries, none shown when
    the workspace has no computed model."""
    scores = selectors.contact_scores(contact=contact)
    if not scores:
        return None
    changes = selectors.contact_changes(contact=contact, limit=CONTACT_CHANGES)
    return presenters.contact_card(scores, changes)
