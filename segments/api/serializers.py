"""Segment API serializers: inputs validate, outputs present."""

from __future__ import annotations

import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from contacts.api.serializers import (
    ContactOutputSerializer,
    LenientCountField,
    PageOutputSerializer,
    PageQuerySerializer,
    StrictCharField,
)
from events_platform.pagination import DEFAULT_LIMIT, MAX_LIMIT
from events_platform.workspaces.models import SLUG_VALIDATOR, validate_timezone
from segments import rules
from segments.models import COLOR_PATTERN, DEFAULT_COLOR, NAMED_COLORS, Segment

COLOR_HELP = (
    f"A hex colour (#rrggbb), or a colour name as Notifuse's console sends it ({', '.join(NAMED_COLORS)}), "
    "stored and answered as that name's hex (blue is #1677ff)."
)


def _any_case(word: str) -> str:
    return "".join(f"[{char.upper()}{char.lower()}]" if char.isalpha() else re.escape(char) for char in word)


# What ColorField takes, as a schema pattern (case-insensitive names; surrounding blanks are trimmed).
COLOR_SCHEMA_PATTERN = r"^\s*(#[0-9a-fA-F]{6}|" + "|".join(_any_case(name) for name in NAMED_COLORS) + r")\s*$"


@extend_schema_field({"type": "string", "maxLength": 50, "pattern": COLOR_SCHEMA_PATTERN})
class ColorField(serializers.CharField):
    """A hex colour, or one of the console's colour names stored as its hex."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=50, help_text=COLOR_HELP, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        named = NAMED_COLORS.get(text.lower())
        if named is not None:
            return named
        if not re.fullmatch(COLOR_PATTERN, text):
            raise serializers.ValidationError(
                f"Use a hex colour such as {DEFAULT_COLOR}, or one of: {', '.join(NAMED_COLORS)}."
            )
        return text


class RuleTreeField(serializers.JSONField):
    """A rule tree; ``segments/api/schema.py`` documents it from the rule vocabulary."""


class SegmentCreateInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=32, validators=[SLUG_VALIDATOR])
    name = StrictCharField(max_length=255, required=False)
    color = ColorField(required=False)
    timezone = StrictCharField(max_length=64, required=False, validators=[validate_timezone])
    tree = RuleTreeField(required=False)
    template = serializers.CharField(
        max_length=120,
        required=False,
        help_text="A template's id from segments.templates: vip, at_risk_high_value, new_high_potential, "
        "or rfm:<model>:<group> for a group of one of the workspace's RFM models.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "template" in attrs and "tree" in attrs:
            raise serializers.ValidationError({"template": ["Give a tree or a template, not both."]})
        if "template" in attrs:
            # The view gives the workspace's templates (the seed's and its RFM models' groups).
            templates = self.context.get("templates", rules.TEMPLATES)
            template = templates.get(attrs["template"])
            if template is None:
                raise serializers.ValidationError(
                    {"template": [f"Unknown template '{attrs['template']}': see segments.templates."]}
                )
            attrs["tree"] = template["tree"]
            attrs = rules.template_defaults(template) | attrs
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
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=32)
    name = StrictCharField(max_length=255, required=False)
    color = ColorField(required=False)
    timezone = StrictCharField(max_length=64, required=False, validators=[validate_timezone])
    tree = RuleTreeField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "tree" in attrs:
            attrs["tree"] = validate_tree_field(attrs["tree"])
        return attrs


class SegmentRefInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    id = StrictCharField(max_length=32)


class SegmentIdInputSerializer(serializers.Serializer):
    """A segment named as Notifuse names it here (``segment_id``) or as this app did (``id``)."""

    workspace_id = StrictCharField(max_length=32)
    segment_id = StrictCharField(max_length=32, required=False, help_text="Notifuse's spelling.")
    id = StrictCharField(max_length=32, required=False, help_text="This app's earlier spelling, kept.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _one_segment(attrs)
        slug = attrs.get("segment_id") or attrs.get("id")
        if not slug:
            raise serializers.ValidationError({"segment_id": ["This field is required."]})
        return attrs | {"slug": slug}


def _one_segment(attrs: dict[str, Any]) -> None:
    """``segment_id`` and ``id`` are two spellings of one reference: both may be sent only when they agree."""
    if attrs.get("segment_id") and attrs.get("id") and attrs["segment_id"] != attrs["id"]:
        raise serializers.ValidationError({"id": ["Names another segment than segment_id: send one of them."]})


# Notifuse's segment states; this app's failed build is shown as active (with its last_error).
NOTIFUSE_STATUS: dict[str, str] = {Segment.Status.FAILED: Segment.Status.ACTIVE}


class SegmentOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="slug")
    workspace_id = serializers.CharField()
    tree = RuleTreeField()
    status = serializers.SerializerMethodField(
        help_text="building, active or deleted (Notifuse's states); a failed build is active with last_error."
    )
    build_state = serializers.CharField(
        source="status", help_text="This app's own state: building, active, failed or deleted."
    )
    users_count = serializers.IntegerField(source="member_count", help_text="Notifuse's name for member_count.")
    db_created_at = serializers.DateTimeField(source="created_at")
    db_updated_at = serializers.DateTimeField(source="updated_at")
    build_phase = serializers.ChoiceField(
        choices=["queued", "running", ""],
        read_only=True,
        help_text=(
            "While building: queued (waiting for a worker; also what a write whose background publish "
            "failed answers, the build starting once the broker is back) or running. Empty otherwise."
        ),
    )

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
            "build_state",
            "build_phase",
            "users_count",
            "member_count",
            "last_built_at",
            "last_build_duration_ms",
            "last_error",
            "created_at",
            "updated_at",
            "db_created_at",
            "db_updated_at",
        ]

    @extend_schema_field(serializers.ChoiceField(choices=["building", "active", "deleted"]))
    def get_status(self, segment: Segment) -> str:
        return NOTIFUSE_STATUS.get(str(segment.status), str(segment.status))


class SegmentEnvelopeSerializer(serializers.Serializer):
    segment = SegmentOutputSerializer()


class SegmentListOutputSerializer(serializers.Serializer):
    segments = SegmentOutputSerializer(many=True)


@extend_schema_field(
    {
        "description": "Any JSON value is read: absent, null or 0 is 10; an integer from 1 to 100 is itself; anything "
        "else (below 1, above 100, not a number) is 20, as Notifuse reads it."
    }
)
class PreviewLimitField(LenientCountField):
    """Notifuse's preview limit: absent or 0 is 10; otherwise below 1, above 100 or not a number is 20."""

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:  # null is "not given" (NOTIFUSE-API.md §0): the default, never a null limit
            return True, 10
        validated: tuple[bool, Any] = super().validate_empty_values(data)
        return validated

    def to_internal_value(self, data: Any) -> int:
        try:
            number = int(str(data).strip())
        except ValueError:
            return 20
        if number == 0:
            return 10
        return number if 1 <= number <= MAX_LIMIT else 20


class SegmentPreviewInputSerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    tree = RuleTreeField()
    timezone = StrictCharField(max_length=64, required=False, default="UTC", validators=[validate_timezone])
    limit = PreviewLimitField(
        default=10,
        smallest=1,
        allow_null=True,
        help_text="Notifuse's: echoed in the answer (0 or absent is 10; below 1 or above 100 is 20). At most 10 "
        "sample emails are shown whatever the limit.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["tree"] = validate_tree_field(attrs["tree"])
        return attrs


class PreviewConditionSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    count = serializers.IntegerField()


class SegmentPreviewOutputSerializer(serializers.Serializer):
    emails = serializers.ListField(child=serializers.CharField(), help_text="Sample matching emails (at most 10).")
    total_count = serializers.IntegerField(help_text="Notifuse's name for total.")
    limit = serializers.IntegerField()
    total = serializers.IntegerField()
    contacts_in_workspace = serializers.IntegerField()
    conditions = PreviewConditionSerializer(many=True)
    sample = ContactOutputSerializer(many=True)


class SegmentMembersQuerySerializer(PageQuerySerializer):
    """This app's spelling of segments.contacts (``id``, strict limit 1-100, a cursor)."""

    id = StrictCharField(max_length=32)
    offset = LenientCountField(default=0, smallest=0, refuse_above=1_000_000, help_text="Rows to skip.")


class SegmentMembersNotifuseQuerySerializer(serializers.Serializer):
    """Notifuse's spelling of segments.contacts: ``segment_id``, offset paging, limit read leniently."""

    workspace_id = StrictCharField(max_length=32)
    segment_id = StrictCharField(max_length=32)
    limit = LenientCountField(
        default=DEFAULT_LIMIT,
        smallest=1,
        cap=MAX_LIMIT,
        help_text=f"Default {DEFAULT_LIMIT}, served at most {MAX_LIMIT}; a bad value is the default.",
    )
    offset = LenientCountField(default=0, smallest=0, refuse_above=1_000_000)
    cursor = StrictCharField(required=False, allow_blank=True)
    id = StrictCharField(max_length=32, required=False, help_text="This app's spelling; if sent, the same segment.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        _one_segment(attrs)
        return attrs


class SegmentMemberOutputSerializer(ContactOutputSerializer):
    """A member: the contact's own fields and when it entered the segment."""

    entered_at = serializers.DateTimeField()

    class Meta(ContactOutputSerializer.Meta):
        fields = ["id", "email", "external_id", "first_name", "last_name", "properties", "entered_at"]


class SegmentMembersOutputSerializer(PageOutputSerializer):
    emails = serializers.ListField(child=serializers.CharField(), help_text="Notifuse's answer: the page's emails.")
    limit = serializers.IntegerField(help_text="The limit served.")
    offset = serializers.IntegerField()
    contacts = SegmentMemberOutputSerializer(many=True)


class SegmentDeleteOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Notifuse's answer.")
    deleted = serializers.BooleanField(help_text="This app's earlier answer, kept.")


class SegmentRebuildOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField()
    message = serializers.CharField()
    segment = SegmentOutputSerializer()


class SegmentExplainQuerySerializer(serializers.Serializer):
    workspace_id = StrictCharField(max_length=32)
    segment_id = StrictCharField(max_length=32)
    email = StrictCharField(max_length=254)


class TemplateOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    color = serializers.CharField()
    tree = RuleTreeField()
