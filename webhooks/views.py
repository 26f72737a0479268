"""The Webhooks pages: subscriptions (create, toggle, test, regenerate, delete) and, for each,
its deliveries with their attempts and replay.

Function views serving a whole page and, to htmx, the fragment that changed (a partial of the
same template). Every action is a plain POST form that works without JavaScript; a new or
regenerated secret is shown in that one response only, never stored in the session.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contacts.models import GoalType
from events_platform.pages import found
from events_platform.workspaces.models import Workspace
from events_platform.workspaces.web import WorkspaceRequest, workspace_required
from segments.models import Segment

from . import selectors, services
from .events import EVENT_TYPES
from .models import SUBSCRIPTION_NAME_MAX_LENGTH, URL_MAX_LENGTH, WebhookDelivery, WebhookSubscription

DELIVERIES_PAGE_SIZE = 25


def _workspace(request: WorkspaceRequest) -> Workspace:
    return request.workspace


def _subscription_or_404(request: WorkspaceRequest, public_id: str) -> WebhookSubscription:
    subscription = selectors.subscription_get(workspace_id=_workspace(request).id, public_id=public_id)
    return found(subscription, "No such webhook subscription in this workspace.")


class SubscriptionForm(forms.Form):
    name = forms.CharField(max_length=SUBSCRIPTION_NAME_MAX_LENGTH, help_text="Where the events go, for you.")
    url = forms.CharField(
        label="Endpoint URL",
        max_length=URL_MAX_LENGTH,
        help_text="https://… on a public address; each delivery is a signed POST.",
    )
    event_types = forms.MultipleChoiceField(
        choices=[(t.name, t.name) for t in EVENT_TYPES], widget=forms.CheckboxSelectMultiple, label="Event types"
    )
    goal_types = forms.MultipleChoiceField(
        choices=GoalType.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        label="Only goal types",
        help_text="custom_event.* only; none ticked: every event.",
    )
    event_names = forms.CharField(
        required=False,
        label="Only event names",
        help_text="custom_event.* only; comma-separated, e.g. order.completed, signup.",
    )
    segment_ids = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Only segments",
        help_text="segment.* only; none ticked: every segment.",
    )

    def __init__(self, *args: Any, workspace: Workspace, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        segments = Segment.objects.filter(workspace=workspace).exclude(status=Segment.Status.DELETED).order_by("name")
        segment_field = self.fields["segment_ids"]
        assert isinstance(segment_field, forms.MultipleChoiceField)
        segment_field.choices = [(s.slug, s.name) for s in segments]

    def service_kwargs(self) -> dict[str, Any]:
        data = self.cleaned_data
        names = [n.strip() for n in data["event_names"].split(",") if n.strip()]
        return {
            "name": data["name"],
            "url": data["url"],
            "event_types": data["event_types"],
            "goal_types": data["goal_types"],
            "event_names": names,
            "segment_ids": data["segment_ids"],
        }


def _add_service_errors(form: forms.Form, error: ValidationError) -> None:
    for field, messages_ in error.message_dict.items():
        name = field.rsplit(".", 1)[-1]
        form.add_error(name if name in form.fields else None, messages_)


def _page(
    request: WorkspaceRequest,
    *,
    form: SubscriptionForm | None = None,
    secret_of: WebhookSubscription | None = None,
    test_result: tuple[WebhookSubscription, Any] | None = None,
    status: int = 200,
) -> HttpResponse:
    workspace = _workspace(request)
    context = {
        "form": form or SubscriptionForm(workspace=workspace, initial={"event_types": ["custom_event.created"]}),
        "subscriptions": selectors.subscriptions_with_counts(workspace_id=workspace.id),
        "secret_of": secret_of,
        "test_result": test_result,
        "event_types": EVENT_TYPES,
    }
    template = "webhooks/webhook_list.html"
    if request.htmx and request.htmx.target == "subscriptions":
        template += "#subscriptions"
    return render(request, template, context, status=status)


@workspace_required
def webhook_list(request: WorkspaceRequest) -> HttpResponse:
    """The subscriptions; a POST creates one and shows its secret in this response only."""
    if request.method != "POST":
        return _page(request)
    form = SubscriptionForm(request.POST, workspace=_workspace(request))
    if form.is_valid():
        try:
            subscription = services.subscription_create(workspace_id=_workspace(request).id, **form.service_kwargs())
        except ValidationError as error:
            _add_service_errors(form, error)
        else:
            return _page(request, secret_of=subscription, status=201)
    return _page(request, form=form, status=400)


@workspace_required
@require_POST
def subscription_action(request: WorkspaceRequest, public_id: str, action: str) -> HttpResponse:
    """toggle / test / regenerate / delete one subscription, then show the list again."""
    subscription = _subscription_or_404(request, public_id)
    if action == "toggle":
        subscription = services.subscription_set_enabled(subscription=subscription, enabled=not subscription.enabled)
        messages.success(request, f"“{subscription.name}” is {'enabled' if subscription.enabled else 'disabled'}.")
    elif action == "test":
        _delivery, response = services.subscription_test(subscription=subscription)
        return _page(request, test_result=(subscription, response))
    elif action == "regenerate":
        subscription = services.subscription_secret_regenerate(subscription=subscription)
        return _page(request, secret_of=subscription)
    elif action == "delete":
        services.subscription_delete(subscription=subscription)
        messages.success(request, f"“{subscription.name}” and its deliveries are deleted.")
    else:
        raise Http404("Unknown action.")
    if request.htmx:
        return _page(request)
    return redirect("webhook-list")


def _int(value: str | None, *, default: int, low: int, high: int) -> int:
    """A number from a form or query string, clamped; anything else is the default."""
    try:
        return min(high, max(low, int(value or default)))
    except ValueError:
        return default


def _deliveries_query(request: WorkspaceRequest, **changes: Any) -> str:
    params = {k: v for k, v in request.GET.items() if v}
    params.update({k: str(v) for k, v in changes.items() if v not in (None, "")})
    for key in [k for k, v in changes.items() if v in (None, "")]:
        params.pop(key, None)
    return "?" + urlencode(params) if params else "?"


@workspace_required
def subscription_deliveries(request: WorkspaceRequest, public_id: str) -> HttpResponse:
    """A subscription's deliveries newest first (status filter, pages); POST replays."""
    subscription = _subscription_or_404(request, public_id)
    workspace = _workspace(request)
    if request.method == "POST":
        if request.POST.get("delivery_id"):
            delivery = selectors.delivery_get(workspace_id=workspace.id, message_id=request.POST["delivery_id"])
            if delivery is None or delivery.subscription_id != subscription.pk:
                raise Http404("No such delivery.")
            count = services.delivery_replay(delivery=delivery)
        else:
            hours = _int(request.POST.get("since_hours"), default=24, low=1, high=24 * 60)
            count = services.deliveries_replay_failed(
                subscription=subscription, since=timezone.now() - timedelta(hours=hours)
            )
        messages.success(request, f"{count} deliveries queued again." if count != 1 else "1 delivery queued again.")
        return redirect(reverse("webhook-deliveries", args=[subscription.public_id]) + _deliveries_query(request))
    status = request.GET.get("status") or None
    if status not in WebhookDelivery.Status.values:
        status = None
    offset = _int(request.GET.get("offset"), default=0, low=0, high=1_000_000)
    page = selectors.delivery_list(
        workspace_id=workspace.id, subscription=subscription, status=status, limit=DELIVERIES_PAGE_SIZE, offset=offset
    )
    context = {
        "subscription": subscription,
        "page": page,
        "status": status or "",
        "statuses": WebhookDelivery.Status.choices,
        "last_attempts": selectors.deliveries_with_last_attempt(deliveries=page.items),
        "newer_query": _deliveries_query(request, offset=max(0, offset - DELIVERIES_PAGE_SIZE) or None)
        if offset
        else None,
        "older_query": _deliveries_query(request, offset=offset + DELIVERIES_PAGE_SIZE)
        if offset + DELIVERIES_PAGE_SIZE < page.total
        else None,
    }
    template = "webhooks/delivery_list.html"
    if request.htmx and request.htmx.target == "deliveries":
        template += "#deliveries"
    return render(request, template, context)


@workspace_required
@require_GET
def delivery_detail(request: WorkspaceRequest, public_id: str, message_id: str) -> HttpResponse:
    """One delivery: the exact body sent and every attempt."""
    subscription = _subscription_or_404(request, public_id)
    delivery = selectors.delivery_get(workspace_id=_workspace(request).id, message_id=message_id)
    if delivery is None or delivery.subscription_id != subscription.pk:
        raise Http404("No such delivery.")
    context = {
        "subscription": subscription,
        "delivery": delivery,
        "attempts": selectors.attempt_list(delivery=delivery),
        "body": json.dumps(json.loads(delivery.body), indent=2, ensure_ascii=False),
    }
    return render(request, "webhooks/delivery_detail.html", context)
