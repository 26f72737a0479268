"""webhookSubscriptions.* : Notifuse's paths and shapes, our error format, 403 across workspaces."""

from __future__ import annotations

from functools import partial
from typing import Any

from rest_framework.response import Response
from rest_framework.views import APIView

from events_platform.pages import found
from events_platform.workspaces.api import ApiRequest, Envelope, WorkspaceAPIView, api_operation

from .. import selectors, services
from ..events import EVENT_TYPES
from ..models import WebhookDelivery, WebhookSubscription
from . import serializers as s

operation = partial(api_operation, tag="webhooks")


def _subscription(workspace_id: str, public_id: str) -> WebhookSubscription:
    subscription = selectors.subscription_get(workspace_id=workspace_id, public_id=public_id)
    return found(subscription, "No webhook subscription with that id in this workspace.")


def _delivery(workspace_id: str, message_id: str) -> WebhookDelivery:
    delivery = selectors.delivery_get(workspace_id=workspace_id, message_id=message_id)
    return found(delivery, "No delivery with that id in this workspace.")


_envelope = Envelope[WebhookSubscription]("subscription", "subscriptions", s.SubscriptionOutputSerializer)


class SubscriptionCreateView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.create", s.SubscriptionCreateInputSerializer, ok={201: s.SubscriptionEnvelopeSerializer}
    )
    def post(self, request: ApiRequest) -> Response:
        """Create a webhook subscription

        The URL must be https (plain http only for hosts inside WEBHOOK_ALLOWED_NETWORKS) and resolve to public
        addresses. The secret (whsec_...) signs every delivery (Standard Webhooks).
        """
        workspace_id, data = self.parse(request, s.SubscriptionCreateInputSerializer)
        subscription = services.subscription_create(
            workspace_id=workspace_id, **s.SubscriptionWriteInputSerializer.settings(data)
        )
        return _envelope.answer(subscription, 201)


class SubscriptionListView(WorkspaceAPIView):
    @operation("webhookSubscriptions.list", s.WorkspaceQuerySerializer, ok=s.SubscriptionListOutputSerializer)
    def get(self, request: ApiRequest) -> Response:
        """List the workspace's subscriptions, newest first"""
        return _envelope.listing(selectors.subscription_list(workspace_id=self.get_workspace_id(request)))


class SubscriptionGetView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.get", s.SubscriptionGetQuerySerializer, ok=s.SubscriptionEnvelopeSerializer, missing=True
    )
    def get(self, request: ApiRequest) -> Response:
        """Get one subscription"""
        subscription, _ = self.parse_row(request, s.SubscriptionGetQuerySerializer, _subscription)
        return _envelope.answer(subscription)


class SubscriptionUpdateView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.update",
        s.SubscriptionUpdateInputSerializer,
        ok=s.SubscriptionEnvelopeSerializer,
        missing=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Replace a subscription's settings

        A full replacement: filters left out are cleared. An omitted `enabled` keeps the current state.
        """
        subscription, data = self.parse_row(request, s.SubscriptionUpdateInputSerializer, _subscription)
        subscription = services.subscription_update(
            subscription=subscription,
            enabled=data.get("enabled"),
            **s.SubscriptionWriteInputSerializer.settings(data),
        )
        return _envelope.answer(subscription)


class SubscriptionDeleteView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.delete", s.SubscriptionIdInputSerializer, ok=s.SuccessOutputSerializer, missing=True
    )
    def post(self, request: ApiRequest) -> Response:
        """Delete a subscription with its deliveries"""
        subscription, _ = self.parse_row(request, s.SubscriptionIdInputSerializer, _subscription)
        services.subscription_delete(subscription=subscription)
        return Response({"success": True})


class SubscriptionToggleView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.toggle",
        s.SubscriptionToggleInputSerializer,
        ok=s.SubscriptionEnvelopeSerializer,
        missing=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Enable or disable a subscription

        Disabled: nothing new is recorded for it and its pending deliveries wait; enabled: they resume.
        """
        subscription, data = self.parse_row(request, s.SubscriptionToggleInputSerializer, _subscription)
        subscription = services.subscription_set_enabled(subscription=subscription, enabled=data["enabled"])
        return _envelope.answer(subscription)


class SubscriptionRegenerateSecretView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.regenerateSecret",
        s.SubscriptionIdInputSerializer,
        ok=s.SubscriptionEnvelopeSerializer,
        missing=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Issue a new signing secret

        The previous secret stays valid for 24 hours: deliveries meanwhile carry a signature by each (space-separated
        in webhook-signature), so receivers can switch without losing any.
        """
        subscription, _ = self.parse_row(request, s.SubscriptionIdInputSerializer, _subscription)
        subscription = services.subscription_secret_regenerate(subscription=subscription)
        return _envelope.answer(subscription)


class SubscriptionDeliveriesView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.deliveries", s.DeliveriesQuerySerializer, ok=s.DeliveryListOutputSerializer, missing=True
    )
    def get(self, request: ApiRequest) -> Response:
        """Deliveries, newest first (offset pages)"""
        workspace_id, query = self.parse(request, s.DeliveriesQuerySerializer)
        subscription = None
        if query.get("subscription_id"):
            subscription = _subscription(workspace_id, query["subscription_id"])
        page = selectors.delivery_list(
            workspace_id=workspace_id,
            subscription=subscription,
            status=query.get("status") or None,
            event_type=query.get("event_type") or None,
            limit=query["limit"],
            offset=query["offset"],
        )
        return Response(
            {
                "deliveries": s.DeliveryOutputSerializer(page.items, many=True).data,
                "total": page.total,
                "limit": page.limit,
                "offset": page.offset,
            }
        )


class SubscriptionAttemptsView(WorkspaceAPIView):
    @operation(
        "webhookSubscriptions.attempts", s.AttemptsQuerySerializer, ok=s.AttemptListOutputSerializer, missing=True
    )
    def get(self, request: ApiRequest) -> Response:
        """Every attempt of one delivery (time, duration, status, resolved IP, error kind)"""
        delivery, _ = self.parse_row(request, s.AttemptsQuerySerializer, _delivery, key="delivery_id")
        attempts = selectors.attempt_list(delivery=delivery)
        return Response(
            {
                "delivery": s.DeliveryOutputSerializer(delivery).data,
                "attempts": s.AttemptOutputSerializer(attempts, many=True).data,
            }
        )


class SubscriptionTestView(WorkspaceAPIView):
    @operation("webhookSubscriptions.test", s.SubscriptionTestInputSerializer, ok=s.TestOutputSerializer, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Send a signed sample now and report the answer

        A sample of the type's real payload shape, sent synchronously and recorded as a test delivery.
        """
        subscription, data = self.parse_row(request, s.SubscriptionTestInputSerializer, _subscription)
        delivery, response = services.subscription_test(subscription=subscription, event_type=data.get("event_type"))
        body: dict[str, Any] = {
            "success": response.ok,
            "status_code": response.status_code,
            "response_body": response.body,
            "delivery_id": delivery.message_id,
        }
        if response.error:
            body["error"] = response.error
        return Response(body)


class SubscriptionReplayView(WorkspaceAPIView):
    @operation("webhookSubscriptions.replay", s.ReplayInputSerializer, ok=s.ReplayOutputSerializer, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Send deliveries again: one (delivery_id), or all failed ones of a subscription since a time

        A replay keeps the delivery id (receivers deduplicate on webhook-id) and starts a new round of retries.
        """
        workspace_id, data = self.parse(request, s.ReplayInputSerializer)
        if data.get("delivery_id"):
            count = services.delivery_replay(delivery=_delivery(workspace_id, data["delivery_id"]))
        else:
            subscription = _subscription(workspace_id, data["subscription_id"])
            count = services.deliveries_replay_failed(subscription=subscription, since=data["since"])
        return Response({"success": True, "count": count})


class EventTypesView(APIView):
    @operation("webhookSubscriptions.eventTypes", ok=s.EventTypesOutputSerializer, errors={401: dict})
    def get(self, request: ApiRequest) -> Response:
        """The event types this app emits"""
        return Response(
            {
                "event_types": [t.name for t in EVENT_TYPES],
                "descriptions": [
                    {"name": t.name, "subject": t.subject, "description": t.description} for t in EVENT_TYPES
                ],
            }
        )
