"""webhookSubscriptions.* : Notifuse's paths and shapes, our error format, 403 across workspaces."""

from __future__ import annotations

from typing import Any, TypeVar

from django.http import Http404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from events_platform.workspaces.api import ApiRequest, WorkspaceAPIView

from .. import selectors, services
from ..events import EVENT_TYPES
from ..models import WebhookSubscription
from . import serializers as s

ERRORS = {400: dict, 401: dict, 403: dict}
TAGS = ["webhooks"]


_SerializerT = TypeVar("_SerializerT", bound=serializers.Serializer)


def _validated(serializer_class: type[_SerializerT], data: Any) -> _SerializerT:
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer


def _subscription(workspace_id: str, public_id: str) -> WebhookSubscription:
    subscription = selectors.subscription_get(workspace_id=workspace_id, public_id=public_id)
    if subscription is None:
        raise Http404("No webhook subscription with that id in this workspace.")
    return subscription


def _envelope(subscription: WebhookSubscription, status: int = 200) -> Response:
    return Response({"subscription": s.SubscriptionOutputSerializer(subscription).data}, status=status)


class SubscriptionCreateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.create",
        summary="Create a webhook subscription",
        description=(
            "The URL must be https (plain http only for hosts inside WEBHOOK_ALLOWED_NETWORKS) and resolve to "
            "public addresses. The secret (whsec_...) signs every delivery (Standard Webhooks)."
        ),
        request=s.SubscriptionCreateInputSerializer,
        responses={201: s.SubscriptionEnvelopeSerializer, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionCreateInputSerializer, request.data)
        subscription = services.subscription_create(workspace_id=workspace_id, **data.service_kwargs())
        return _envelope(subscription, status=201)


class SubscriptionListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.list",
        summary="List the workspace's subscriptions, newest first",
        parameters=[s.WorkspaceQuerySerializer],
        responses={200: s.SubscriptionListOutputSerializer, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        items = selectors.subscription_list(workspace_id=workspace_id)
        return Response({"subscriptions": s.SubscriptionOutputSerializer(items, many=True).data})


class SubscriptionGetView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.get",
        summary="Get one subscription",
        parameters=[s.SubscriptionGetQuerySerializer],
        responses={200: s.SubscriptionEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = _validated(s.SubscriptionGetQuerySerializer, request.query_params).validated_data
        return _envelope(_subscription(workspace_id, query["id"]))


class SubscriptionUpdateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.update",
        summary="Replace a subscription's settings",
        description="A full replacement: filters left out are cleared. An omitted `enabled` keeps the current state.",
        request=s.SubscriptionUpdateInputSerializer,
        responses={200: s.SubscriptionEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionUpdateInputSerializer, request.data)
        subscription = _subscription(workspace_id, data.validated_data["id"])
        subscription = services.subscription_update(
            subscription=subscription, enabled=data.validated_data.get("enabled"), **data.service_kwargs()
        )
        return _envelope(subscription)


class SubscriptionDeleteView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.delete",
        summary="Delete a subscription with its deliveries",
        request=s.SubscriptionIdInputSerializer,
        responses={200: s.SuccessOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionIdInputSerializer, request.data).validated_data
        services.subscription_delete(subscription=_subscription(workspace_id, data["id"]))
        return Response({"success": True})


class SubscriptionToggleView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.toggle",
        summary="Enable or disable a subscription",
        description="Disabled: nothing new is recorded for it and its pending deliveries wait; enabled: they resume.",
        request=s.SubscriptionToggleInputSerializer,
        responses={200: s.SubscriptionEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionToggleInputSerializer, request.data).validated_data
        subscription = services.subscription_set_enabled(
            subscription=_subscription(workspace_id, data["id"]), enabled=data["enabled"]
        )
        return _envelope(subscription)


class SubscriptionRegenerateSecretView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.regenerateSecret",
        summary="Issue a new signing secret",
        description=(
            "The previous secret stays valid for 24 hours: deliveries meanwhile carry a signature by each "
            "(space-separated in webhook-signature), so receivers can switch without losing any."
        ),
        request=s.SubscriptionIdInputSerializer,
        responses={200: s.SubscriptionEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionIdInputSerializer, request.data).validated_data
        subscription = services.subscription_secret_regenerate(subscription=_subscription(workspace_id, data["id"]))
        return _envelope(subscription)


class SubscriptionDeliveriesView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.deliveries",
        summary="Deliveries, newest first (offset pages)",
        parameters=[s.DeliveriesQuerySerializer],
        responses={200: s.DeliveryListOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = _validated(s.DeliveriesQuerySerializer, request.query_params).validated_data
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
    @extend_schema(
        operation_id="webhookSubscriptions.attempts",
        summary="Every attempt of one delivery (time, duration, status, resolved IP, error kind)",
        parameters=[s.AttemptsQuerySerializer],
        responses={200: s.AttemptListOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = _validated(s.AttemptsQuerySerializer, request.query_params).validated_data
        delivery = selectors.delivery_get(workspace_id=workspace_id, message_id=query["delivery_id"])
        if delivery is None:
            raise Http404("No delivery with that id in this workspace.")
        attempts = selectors.attempt_list(delivery=delivery)
        return Response(
            {
                "delivery": s.DeliveryOutputSerializer(delivery).data,
                "attempts": s.AttemptOutputSerializer(attempts, many=True).data,
            }
        )


class SubscriptionTestView(WorkspaceAPIView):
    @extend_schema(
        operation_id="webhookSubscriptions.test",
        summary="Send a signed sample now and report the answer",
        description="A sample of the type's real payload shape, sent synchronously and recorded as a test delivery.",
        request=s.SubscriptionTestInputSerializer,
        responses={200: s.TestOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.SubscriptionTestInputSerializer, request.data).validated_data
        delivery, response = services.subscription_test(
            subscription=_subscription(workspace_id, data["id"]), event_type=data.get("event_type")
        )
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
    @extend_schema(
        operation_id="webhookSubscriptions.replay",
        summary="Send deliveries again: one (delivery_id), or all failed ones of a subscription since a time",
        description=(
            "A replay keeps the delivery id (receivers deduplicate on webhook-id) and starts a new round of retries."
        ),
        request=s.ReplayInputSerializer,
        responses={200: s.ReplayOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = _validated(s.ReplayInputSerializer, request.data).validated_data
        if data.get("delivery_id"):
            delivery = selectors.delivery_get(workspace_id=workspace_id, message_id=data["delivery_id"])
            if delivery is None:
                raise Http404("No delivery with that id in this workspace.")
            count = services.delivery_replay(delivery=delivery)
        else:
            subscription = _subscription(workspace_id, data["subscription_id"])
            count = services.deliveries_replay_failed(subscription=subscription, since=data["since"])
        return Response({"success": True, "count": count})


class EventTypesView(APIView):
    @extend_schema(
        operation_id="webhookSubscriptions.eventTypes",
        summary="The event types this app emits",
        responses={200: s.EventTypesOutputSerializer, 401: dict},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        return Response(
            {
                "event_types": [t.name for t in EVENT_TYPES],
                "descriptions": [
                    {"name": t.name, "subject": t.subject, "description": t.description} for t in EVENT_TYPES
                ],
            }
        )
