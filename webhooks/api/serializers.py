"""Input serializers validate shapes; the services check the rules. Output serializers present
Notifuse's Subscription and Delivery objects (with our extra keys)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.api.serializers import ExactDateTimeField, StrictCharField

from .. import selectors
from ..events import EVENT_TYPE_NAMES
from ..models import URL_MAX_LENGTH, WebhookAttempt, WebhookDelivery, WebhookSubscription
from ..services import SubscriptionSettings

MAX_DELIVERIES_LIMIT = 100


class StringListField(serializers.ListField):
    """A JSON array of strings (null means not given)."""

    child = StrictCharField(max_length=255, trim_whitespace=False)

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("max_length", 100)
        super().__init__(**kwargs)


@extend_schema_field({"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPE_NAMES)}, "maxItems": 100})
class EventTypesField(StringListField):
    """Event type names (unknown ones are a 400 naming them): the schema lists them."""

    child = StrictCharField(max_length=64)


class CustomEventFiltersSerializer(serializers.Serializer):
    goal_types = StringListField(help_text="Only events with one of these goal types (none: any).")
    event_names = StringListField(help_text="Only events with one of these names (none: any).")


class SubscriptionWriteInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    name = StrictCharField(max_length=255, allow_blank=True)
    url = StrictCharField(max_length=URL_MAX_LENGTH, allow_blank=True)
    event_types = EventTypesField(required=True, allow_null=False, help_text=", ".join(EVENT_TYPE_NAMES))
    custom_event_filters = CustomEventFiltersSerializer(required=False, allow_null=True)
    segment_ids = StringListField(help_text="Only these segments for segment.* types (none: every segment).")

    @staticmethod
    def settings(data: dict[str, Any]) -> SubscriptionSettings:
        """The subscription's settings out of the validated ``data`` (Notifuse nests the filters)."""
        filters = data.get("custom_event_filters") or {}
        return {
            "name": data["name"],
            "url": data["url"],
            "event_types": data["event_types"],
            "goal_types": filters.get("goal_types") or [],
            "event_names": filters.get("event_names") or [],
            "segment_ids": data.get("segment_ids") or [],
        }


class SubscriptionCreateInputSerializer(SubscriptionWriteInputSerializer):
    pass


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: true or false, not DRF's 0 / 1 / "yes" spellings (the schema says boolean)."""

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid", input=data)
        return data


class SubscriptionUpdateInputSerializer(SubscriptionWriteInputSerializer):
    id = StrictCharField(max_length=64)
    enabled = StrictBooleanField(required=False, allow_null=True, help_text="Omitted: unchanged.")


class SubscriptionIdInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=64)


class SubscriptionToggleInputSerializer(SubscriptionIdInputSerializer):
    enabled = StrictBooleanField()


class SubscriptionTestInputSerializer(SubscriptionIdInputSerializer):
    event_type = serializers.ChoiceField(choices=EVENT_TYPE_NAMES, required=False, allow_null=True)


class SubscriptionGetQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=64)


class WorkspaceQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)


class DeliveriesQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    subscription_id = StrictCharField(required=False, allow_blank=True, max_length=64)
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values, required=False, allow_blank=True)
    event_type = serializers.ChoiceField(choices=EVENT_TYPE_NAMES, required=False, allow_blank=True)
    limit = serializers.IntegerField(required=False, min_value=1, default=20, help_text="1-100 (more is capped).")
    offset = serializers.IntegerField(required=False, min_value=0, max_value=1_000_000, default=0)

    def validate_limit(self, value: int) -> int:
        return min(value, MAX_DELIVERIES_LIMIT)


class AttemptsQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    delivery_id = StrictCharField(max_length=64)


class ReplayInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    delivery_id = StrictCharField(required=False, allow_null=True, max_length=64)
    subscription_id = StrictCharField(required=False, allow_null=True, max_length=64)
    since = ExactDateTimeField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("delivery_id"):
            if attrs.get("subscription_id") or attrs.get("since"):
                raise serializers.ValidationError(
                    {"delivery_id": ["Give delivery_id alone, or subscription_id with since."]}
                )
            return attrs
        if not attrs.get("subscription_id"):
            raise serializers.ValidationError({"delivery_id": ["Give delivery_id, or subscription_id with since."]})
        if not attrs.get("since"):
            raise serializers.ValidationError(
                {"since": ["Required with subscription_id (replays failed deliveries since then)."]}
            )
        return attrs


# --- output ------------------------------------------------------------------------------


class CustomEventFiltersOutputSerializer(serializers.Serializer):
    goal_types = serializers.ListField(child=serializers.CharField(), required=False)
    event_names = serializers.ListField(child=serializers.CharField(), required=False)


class SubscriptionSettingsOutputSerializer(serializers.Serializer):
    event_types = serializers.ListField(child=serializers.CharField())
    custom_event_filters = CustomEventFiltersOutputSerializer(required=False)
    segment_ids = serializers.ListField(child=serializers.CharField())


def _filters(subscription: WebhookSubscription) -> dict[str, list[str]] | None:
    filters = {}
    if subscription.goal_types:
        filters["goal_types"] = list(subscription.goal_types)
    if subscription.event_names:
        filters["event_names"] = list(subscription.event_names)
    return filters or None


@extend_schema_field(CustomEventFiltersOutputSerializer)
class FiltersOutputField(serializers.Field):
    """A subscription's custom_event_filters (``_filters``); None is left out by the serializer."""

    def get_attribute(self, subscription: WebhookSubscription) -> dict[str, list[str]] | None:
        return _filters(subscription)

    def to_representation(self, value: Any) -> Any:
        return value


class SubscriptionOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="public_id")
    name = serializers.CharField()
    url = serializers.CharField()
    secret = serializers.CharField()
    settings = serializers.SerializerMethodField()
    event_types = serializers.ListField(child=serializers.CharField())
    custom_event_filters = FiltersOutputField(required=False)
    segment_ids = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    disabled_reason = serializers.CharField(allow_null=True, help_text="manual, gone_410 or failing_5_days.")
    disabled_detail = serializers.CharField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    previous_secret_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until then the previous secret signs too."
    )
    # Left out when unset (to_representation): not required in the schema.
    last_delivery_at = serializers.DateTimeField(allow_null=True, required=False)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    @extend_schema_field(SubscriptionSettingsOutputSerializer)
    def get_settings(self, subscription: WebhookSubscription) -> dict[str, Any]:
        out: dict[str, Any] = {"event_types": list(subscription.event_types)}
        filters = _filters(subscription)
        if filters:
            out["custom_event_filters"] = filters
        out["segment_ids"] = list(subscription.segment_ids)
        return out

    def to_representation(self, instance: WebhookSubscription) -> dict[str, Any]:
        data = super().to_representation(instance)
        # Notifuse leaves these out when unset.
        for key in ("custom_event_filters", "last_delivery_at"):
            if data.get(key) is None:
                data.pop(key, None)
        for key in ("disabled_reason", "disabled_detail"):
            data[key] = data[key] or None
        return data


class SubscriptionEnvelopeSerializer(serializers.Serializer):
    subscription = SubscriptionOutputSerializer()


class SubscriptionListOutputSerializer(serializers.Serializer):
    subscriptions = SubscriptionOutputSerializer(many=True)


class SuccessOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.CharField(source="message_id", help_text="Also the webhook-id header and the envelope id.")
    subscription_id = serializers.CharField(source="subscription.public_id")
    event_type = serializers.CharField()
    payload = serializers.SerializerMethodField(help_text="The envelope's data object.")
    status = serializers.ChoiceField(choices=WebhookDelivery.Status.values)
    attempts = serializers.IntegerField()
    max_attempts = serializers.IntegerField()
    next_attempt_at = serializers.DateTimeField(allow_null=True)
    last_attempt_at = serializers.DateTimeField(required=False)
    delivered_at = serializers.DateTimeField(required=False)
    last_response_status = serializers.IntegerField(required=False)
    last_response_body = serializers.CharField(required=False)
    last_error = serializers.CharField(required=False)
    is_test = serializers.BooleanField()
    created_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, delivery: WebhookDelivery) -> Any:
        return selectors.delivery_payload(delivery)

    def to_representation(self, instance: WebhookDelivery) -> dict[str, Any]:
        data = super().to_representation(instance)
        for key in ("last_attempt_at", "delivered_at", "last_response_status", "last_response_body", "last_error"):
            if data.get(key) in (None, ""):
                data.pop(key, None)
        return data


class DeliveryListOutputSerializer(serializers.Serializer):
    deliveries = DeliveryOutputSerializer(many=True)
    total = serializers.IntegerField()
    limit = serializers.IntegerField()
    offset = serializers.IntegerField()


class AttemptOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookAttempt
        fields = [
            "number",
            "started_at",
            "duration_ms",
            "resolved_ip",
            "status_code",
            "response_body",
            "error_kind",
            "error",
        ]


class AttemptListOutputSerializer(serializers.Serializer):
    delivery = DeliveryOutputSerializer()
    attempts = AttemptOutputSerializer(many=True)


class TestOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    status_code = serializers.IntegerField(help_text="0 when no HTTP answer came.")
    response_body = serializers.CharField()
    error = serializers.CharField(required=False)
    delivery_id = serializers.CharField()


class ReplayOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    count = serializers.IntegerField(help_text="Deliveries queued again.")


class EventTypeOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    subject = serializers.CharField()
    description = serializers.CharField()


class EventTypesOutputSerializer(serializers.Serializer):
    event_types = serializers.ListField(child=serializers.CharField())
    descriptions = EventTypeOutputSerializer(many=True)
