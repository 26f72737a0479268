"""Segment API serializers: inputs validate, outputs present."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from contacts.api.serializers import ContactOutputSerializer, PageOutputSerializer, PageQuerySerializer
from events_platform.workspaces.models import SLUG_VALIDATOR, validate_timezone
from segments import rules
from segments.models import COLOR_PATTERN, Segment


class RuleTreeField(serializers.JSONField):
    """A rule tree; ``segments/api/schema.py`` documents it from the rule vocabulary."""


class SegmentCreateInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    id = serializers.CharField(max_length=32, validators=[SLUG_VALIDATOR])
    name = serializers.CharField(max_length=255, required=False)
    color = serializers.RegexField(COLOR_PATTERN, required=False)
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_timezone])
    tree = RuleTreeField(required=False)
    template = serializers.ChoiceField(choices=sorted(rules.TEMPLATES), required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "template" in attrs and "tree" in attrs:
            raise serializers.ValidationError({"template": ["Give a tree or a template, not both."]})
        if "template" in attrs:
            attrs["tree"] = rules.TEMPLATES[attrs["template"]]["tree"]
            attrs = rules.template_defaults(attrs["template"]) | attrs
        elif "tree" not in attrs:
            raise serializers.ValidationError({"tree": ["This field is required (or give a template)."]})
        if not attrs.get("name"):
            raise serializers.ValidationError({"name": ["This field is required."]})
        attrs["tree"] = validate_tree_field(attrs["tree"])
        return attrs


def validate_tree_field(tree: Any) -> dict[str, Any]:
    try:
        return rules.validate_tree(tree)
    except rules.TreeValidationError as exc:
        raise serializers.ValidationError(exc.errors) from exc


class SegmentUpdateInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    id = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=255, required=False)
    color = serializers.RegexField(COLOR_PATTERN, required=False)
    timezone = serializers.CharField(max_length=64, required=False, validators=[validate_timezone])
    tree = RuleTreeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tree" in attrs:
            attrs["tree"] = validate_tree_field(attrs["tree"])
        return attrs


class SegmentRefInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    id = serializers.CharField(max_length=32)


class SegmentOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="slug")
    workspace_id = serializers.CharField()
    tree = RuleTreeField()

    class Meta:
        model = Segment
        fields = [
            "id",
            "workspace_id",
            "name",
            "color",
            "timezone",
            "tree",
            "version",
            "status",
            "member_count",
            "last_built_at",
            "last_build_duration_ms",
            "last_error",
            "created_at",
            "updated_at",
        ]


class SegmentEnvelopeSerializer(serializers.Serializer):
    segment = SegmentOutputSerializer()


class SegmentListOutputSerializer(serializers.Serializer):
    segments = SegmentOutputSerializer(many=True)


class SegmentPreviewInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    tree = RuleTreeField()
    timezone = serializers.CharField(max_length=64, required=False, default="UTC", validators=[validate_timezone])

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["tree"] = validate_tree_field(attrs["tree"])
        return attrs


class PreviewConditionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    count = serializers.IntegerField()


class SegmentPreviewOutputSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    contacts_in_workspace = serializers.IntegerField()
    conditions = PreviewConditionSerializer(many=True)
    sample = ContactOutputSerializer(many=True)


class SegmentMembersQuerySerializer(PageQuerySerializer):
    id = serializers.CharField(max_length=32)


class SegmentMemberOutputSerializer(ContactOutputSerializer):
    """A member: the contact's own fields and when it entered the segment."""

    entered_at = serializers.DateTimeField()

    class Meta(ContactOutputSerializer.Meta):
        fields = ["id", "email", "external_id", "first_name", "last_name", "properties", "entered_at"]


class SegmentMembersOutputSerializer(PageOutputSerializer):
    contacts = SegmentMemberOutputSerializer(many=True)


class SegmentExplainQuerySerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    segment_id = serializers.CharField(max_length=32)
    email = serializers.CharField(max_length=254)


class TemplateOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    color = serializers.CharField()
    tree = RuleTreeField()
