"""RFM API serializers: inputs validate the request's shape (``rfm/config.py`` then validates the
configuration itself, naming the path), outputs present."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.api.serializers import (
    PageOutputSerializer,
    PageQuerySerializer,
    RfmScoreFieldsSerializer,
    StrictCharField,
)
from events_platform.workspaces.models import SLUG_VALIDATOR
from rfm import groups
from rfm.config import PRESETS, WINDOW_DAYS_MAX
from rfm.models import RFM_SLUG_MAX_LENGTH, RfmModel

DIMENSION_HELP = '{"mode": "quantile"} or {"mode": "thresholds", "cuts": [...]} with scale-1 increasing cuts.'


@extend_schema_field(OpenApiTypes.OBJECT)
class DimensionField(serializers.JSONField):
    """A dimension's scoring: quantile, or fixed cut points (days, orders, money with 2 decimals)."""


@extend_schema_field({"oneOf": [{"type": "string", "enum": ["klaviyo6", "classic11"]}, {"type": "array"}]})
class GroupMapField(serializers.JSONField):
    """klaviyo6 (scale 3), classic11 (scale 5) or [{"name", "r": [lo, hi], "f": [...], "m": [...]}]."""


class RfmConfigInputSerializer(serializers.Serializer):
    """The configuration keys of a model; any left out keep their default (or stored) value."""

    preset = serializers.ChoiceField(choices=sorted(PRESETS), required=False)
    goal_types = serializers.ListField(child=StrictCharField(max_length=16), required=False)
    event_names = serializers.ListField(child=StrictCharField(max_length=100), required=False, allow_null=True)
    window_days = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=WINDOW_DAYS_MAX)
    scale = serializers.IntegerField(required=False, help_text="3 or 5.")
    recency = DimensionField(required=False, help_text=DIMENSION_HELP + " Days.")
    frequency = DimensionField(required=False, help_text=DIMENSION_HELP + " Orders.")
    monetary = DimensionField(required=False, help_text=DIMENSION_HELP + " Money.")
    group_map = GroupMapField(required=False)
    timezone = StrictCharField(max_length=64, required=False, help_text="IANA; default the workspace's.")

    @staticmethod
    def settings(data: dict[str, Any]) -> dict[str, Any]:
        """What is scored, out of the validated ``data``: all but which model it is and its timezone."""
        return {k: v for k, v in data.items() if k not in ("workspace_id", "id", "name", "timezone")}


class RfmModelCreateInputSerializer(RfmConfigInputSerializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=RFM_SLUG_MAX_LENGTH, validators=[SLUG_VALIDATOR])
    name = StrictCharField(max_length=255, required=False)


class RfmModelUpdateInputSerializer(RfmConfigInputSerializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=RFM_SLUG_MAX_LENGTH)
    name = StrictCharField(max_length=255, required=False)


class RfmModelPreviewInputSerializer(RfmConfigInputSerializer):
    workspace_id = StrictCharField(max_length=32)


class RfmModelRefInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=RFM_SLUG_MAX_LENGTH)


class RfmGroupOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()


class RfmModelOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="slug")
    workspace_id = serializers.CharField()
    recency = DimensionField()
    frequency = DimensionField()
    monetary = DimensionField()
    group_map = GroupMapField()
    groups = serializers.SerializerMethodField()
    cutpoints = serializers.JSONField(help_text="As of last_computed_at: per dimension the worst value per score.")

    class Meta:
        model = RfmModel
        fields = [
            "id",
            "workspace_id",
            "name",
            "timezone",
            "goal_types",
            "event_names",
            "window_days",
            "scale",
            "recency",
            "frequency",
            "monetary",
            "group_map",
            "groups",
            *RfmModel.RUN_FIELDS,
        ]

    @extend_schema_field(RfmGroupOutputSerializer(many=True))
    def get_groups(self, model: RfmModel) -> Any:
        return [{"id": g, "name": groups.display_name(g)} for g in groups.groups_of(model.group_map, model.scale)]


class RfmModelEnvelopeSerializer(serializers.Serializer):
    rfm_model = RfmModelOutputSerializer()


class RfmModelListOutputSerializer(serializers.Serializer):
    rfm_models = RfmModelOutputSerializer(many=True)


class RfmModelQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    model = StrictCharField(max_length=RFM_SLUG_MAX_LENGTH, help_text="The RFM model's id.")


@extend_schema_field(OpenApiTypes.STR)
class InstantField(serializers.Field):
    """An ISO 8601 instant, or a date meaning the end of that day in the model's timezone."""

    def to_internal_value(self, data: Any) -> dt.datetime | dt.date:
        if not isinstance(data, str) or len(data) > 64:
            raise serializers.ValidationError("Expected a date (2026-05-31) or an ISO 8601 instant.")
        text = data.strip()
        try:
            day = parse_date(text)
            moment = None if day else parse_datetime(text)
        except ValueError:
            day, moment = None, None
        if day is not None:
            return day
        if moment is None:
            raise serializers.ValidationError("Expected a date (2026-05-31) or an ISO 8601 instant.")
        if moment.tzinfo is None:
            raise serializers.ValidationError("An instant needs its offset (Z or +02:00); or give a date.")
        return moment


class RfmTransitionsQuerySerializer(RfmModelQuerySerializer):
    # "from" is a Python keyword: declared below under its wire name.
    locals()["from"] = InstantField(help_text="Date or instant.")
    to = InstantField(required=False, help_text="Date or instant; default now.")


class RfmContactsQuerySerializer(PageQuerySerializer):
    model = StrictCharField(max_length=RFM_SLUG_MAX_LENGTH)
    group = StrictCharField(max_length=48, required=False)
    r = serializers.IntegerField(required=False, min_value=1, max_value=5)
    f = serializers.IntegerField(required=False, min_value=1, max_value=5)
    output = serializers.ChoiceField(
        choices=["json", "csv"], required=False, default="json", help_text="csv: every row as a CSV download."
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "group" not in attrs and "r" not in attrs and "f" not in attrs:
            raise serializers.ValidationError({"group": ["Give a group, or r and/or f (an R x F cell)."]})
        return attrs


class RfmContactOutputSerializer(RfmScoreFieldsSerializer):
    # The RFM API writes money as decimal text (presentation.money, "310.14"): the schema says so.
    monetary = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True, coerce_to_string=True)
    contact_id = serializers.IntegerField()
    email = serializers.CharField()


class RfmContactsOutputSerializer(PageOutputSerializer):
    contacts = RfmContactOutputSerializer(many=True)


class RfmTransitionOutputSerializer(serializers.Serializer):
    locals()["from"] = serializers.CharField(help_text="Group as of from.")  # "from": a keyword
    to = serializers.CharField(help_text="Group as of to.")
    count = serializers.IntegerField()


class RfmTransitionsOutputSerializer(serializers.Serializer):
    model = serializers.CharField()
    locals()["from"] = serializers.DateTimeField()
    to = serializers.DateTimeField()
    transitions = RfmTransitionOutputSerializer(many=True)
