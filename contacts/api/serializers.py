"""Input serializers validate; output serializers present. None of them writes."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation
from typing import Any

from django.core.validators import RegexValidator
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.fields import SkipField

from contacts.models import (
    EVENT_NAME_MAX_LENGTH,
    EVENT_NAME_PATTERN,
    EXTERNAL_ID_MAX_LENGTH,
    GOAL_NAME_MAX_LENGTH,
    GOAL_TYPES_REQUIRING_VALUE,
    GOAL_VALUE_DECIMAL_PLACES,
    GOAL_VALUE_MAX_DIGITS,
    PROFILE_FIELD_TYPES,
    PROFILE_STRING_MAX_LENGTHS,
    PROPERTIES_MAX_BYTES,
    Contact,
    CustomEvent,
    GoalType,
    TimelineEntry,
    normalize_email,
    profile_value_is_typed,
)
from contacts.services import GOAL_FIELDS, ContactInput, EventInput, EventUpsertResult
from events_platform import parsers
from events_platform.pagination import DEFAULT_LIMIT, MAX_LIMIT

EVENT_NAME_MESSAGE = (
    "Use only lowercase letters (a-z), digits (0-9), dot (.), underscore (_), hyphen (-) and slash (/); "
    "for example order.completed, subscription/started, form_submit, user-signup."
)
MAX_FUTURE = timedelta(hours=24)
CONTACTS_IMPORT_MAX = 1000
SOURCE_VALIDATOR = RegexValidator(r"^[a-z0-9_.-]+\Z", "Use lowercase letters, digits, dot, underscore or hyphen.")


@extend_schema_field(OpenApiTypes.OBJECT)
class JsonObjectField(serializers.Field):
    """A JSON object (not an array or scalar), at most 64 KiB once serialised, holding nothing
    PostgreSQL's jsonb refuses: no NUL character, no lone surrogate, no non-finite number (the
    API's parser refuses the last two already; files read by ``import_events`` meet them here)."""

    # What the value may be; custom_json_* profile fields take an array too.
    accepted: tuple[type, ...] = (dict,)
    accepted_text = "a JSON object"

    default_error_messages = {
        "not_object": "Must be {accepted}, not {kind}.",
        "too_large": "Must be at most {limit} bytes serialised (got {size}).",
        "nul": parsers.MESSAGES["nul"] + " (at {path})",
        "surrogate": parsers.MESSAGES["surrogate"] + " (at {path})",
        "non_finite": parsers.MESSAGES["non_finite"] + " (at {path})",
    }

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, self.accepted):
            kind = "null" if data is None else "an array" if isinstance(data, list) else f"a {type(data).__name__}"
            self.fail("not_object", accepted=self.accepted_text, kind=kind)
        # One serialisation measures the size and, at C speed, tells whether anything jsonb
        # refuses may be inside; only then is the object walked to name where it is.
        try:
            serialised = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            size = len(serialised.encode())
        except ValueError:  # a non-finite number, or a lone surrogate (UnicodeEncodeError)
            serialised, size = "", 0
        if not serialised or "\\u0000" in serialised:
            unsafe = parsers.unsafe_value(data)
            if unsafe is not None:
                path, problem = unsafe
                self.fail(problem, path=path)
        if size > PROPERTIES_MAX_BYTES:
            self.fail("too_large", limit=PROPERTIES_MAX_BYTES, size=size)
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ExactDateTimeField(serializers.DateTimeField):
    """A date-time that is exactly one: Python 3.11's ``datetime.fromisoformat`` (which Django's
    parsing tries first) stops reading at a NUL after the offset, so
    ``"2026-01-01T00:00:00Z\\u0000garbage"`` would pass with the rest dropped. Text with a control
    character (NUL, a newline, ...) is refused before it is parsed."""

    def to_internal_value(self, value: Any) -> Any:
        if isinstance(value, str) and not value.isprintable():
            raise serializers.ValidationError(
                "Must be exactly an ISO 8601 date-time such as 2026-01-01T12:00:00Z, with no control "
                "character (NUL, newline) in it."
            )
        return super().to_internal_value(value)


class StrictCharField(serializers.CharField):
    """A string field that refuses numbers and booleans instead of silently stringifying them."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


@extend_schema_field({"oneOf": [{"type": "object", "additionalProperties": True}, {"type": "array", "items": {}}]})
class JsonObjectOrArrayField(JsonObjectField):
    """A custom_json_* profile field: a JSON object or array, with JsonObjectField's rules."""

    accepted = (dict, list)
    accepted_text = "a JSON object or array"


@extend_schema_field(OpenApiTypes.NUMBER)
class ProfileNumberField(serializers.Field):
    """A custom_number_* profile field: a JSON number, kept as sent (Notifuse decodes it as a
    double: a string, a boolean or a number beyond a double's range is refused)."""

    default_error_messages = {"invalid": "Must be a number (a JSON number, not a string), within a double's range."}

    def to_internal_value(self, data: Any) -> int | float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            self.fail("invalid")
        try:
            if not math.isfinite(float(data)):
                self.fail("invalid")
        except OverflowError:  # an integer beyond a double's range
            self.fail("invalid")
        number: int | float = data
        return number

    def to_representation(self, value: Any) -> Any:
        return value


# RFC 3339 as Go's time.Time decodes it: a date, a time, a fraction of 1-9 digits and a zone.
_RFC3339 = re.compile(r"\A\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,9})?([Zz]|[+-]\d\d:\d\d)\Z")


@extend_schema_field(OpenApiTypes.DATETIME)
class ProfileDateTimeField(serializers.Field):
    """A custom_datetime_* profile field: an RFC 3339 date-time with a zone, stored as UTC text
    ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (microseconds, as PostgreSQL keeps them), which the segment
    engine's time filters read."""

    default_error_messages = {
        "invalid": "Must be an RFC 3339 date-time with a zone, such as 2026-03-01T10:00:00Z or "
        "2026-03-01T12:00:00.123+02:00."
    }

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not _RFC3339.match(data):
            self.fail("invalid")
        try:
            moment = datetime.fromisoformat(data.upper().replace("Z", "+00:00"))
            return profile_datetime_text(moment)
        except (ValueError, OverflowError):  # no such day or time, or beyond year 1-9999 in UTC
            self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


def profile_datetime_text(moment: datetime) -> str:
    """An aware datetime as a profile time is stored: UTC RFC 3339 with ``Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class _ProfileOutput(serializers.Field):
    """A profile field read from the contact's ``properties`` under its own name; left out of the
    answer when it is not set (NOTIFUSE-API.md §4.1: present only when set) or holds another type."""

    def get_attribute(self, contact: Contact | Mapping[str, Any]) -> Any:
        name = str(self.field_name)
        if isinstance(contact, Mapping):  # a contact rendered already (segments.contacts' members)
            value = contact.get(name)
        else:
            value = contact.properties.get(name) if isinstance(contact.properties, dict) else None
        if value is None or not profile_value_is_typed(name, value):
            raise SkipField
        return value


class FreePropertiesField(JsonObjectField):
    """A contact's ``properties`` without the profile fields (``Contact.free_properties``)."""

    def get_attribute(self, contact: Contact | Mapping[str, Any]) -> Any:
        if isinstance(contact, Mapping):  # rendered already: its properties are the free ones
            return contact["properties"]
        return contact.free_properties


class ProfileStringOutputField(_ProfileOutput, serializers.CharField):
    pass


class ProfileNumberOutputField(_ProfileOutput, ProfileNumberField):
    pass


class ProfileDateTimeOutputField(_ProfileOutput, ProfileDateTimeField):
    pass


class ProfileJsonOutputField(_ProfileOutput, JsonObjectOrArrayField):
    pass


PROFILE_OUTPUT_FIELDS: dict[str, type[serializers.Field]] = {
    "string": ProfileStringOutputField,
    "number": ProfileNumberOutputField,
    "datetime": ProfileDateTimeOutputField,
    "json": ProfileJsonOutputField,
}


def profile_output_fields() -> dict[str, serializers.Field]:
    """The Contact object's profile fields, top-level, each present only when set."""
    return {
        name: PROFILE_OUTPUT_FIELDS[kind](required=False, help_text="Notifuse's profile field; absent when not set.")
        for name, kind in PROFILE_FIELD_TYPES.items()
    }


def _profile_help(name: str, kind: str) -> str:
    what = {
        "string": f"A string of at most {PROFILE_STRING_MAX_LENGTHS.get(name)} characters",
        "number": "A JSON number",
        "datetime": "An RFC 3339 date-time with a zone (stored in UTC)",
        "json": "A JSON object or array",
    }[kind]
    return f"Notifuse's profile field, stored as properties.{name}. {what}; null clears it; omitted, it is kept."


def profile_input_fields() -> dict[str, serializers.Field]:
    """The input fields of Notifuse's contact profile fields (``PROFILE_FIELD_TYPES``); each takes null."""
    fields: dict[str, serializers.Field] = {}
    for name, kind in PROFILE_FIELD_TYPES.items():
        options: dict[str, Any] = {"required": False, "allow_null": True, "help_text": _profile_help(name, kind)}
        if kind == "string":
            fields[name] = StrictCharField(allow_blank=True, max_length=PROFILE_STRING_MAX_LENGTHS[name], **options)
        elif kind == "number":
            fields[name] = ProfileNumberField(**options)
        elif kind == "datetime":
            fields[name] = ProfileDateTimeField(**options)
        else:
            fields[name] = JsonObjectOrArrayField(**options)
    return fields


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "minLength": 1, "maxLength": EXTERNAL_ID_MAX_LENGTH, "pattern": r"\S"},
            {"type": "number"},
        ],
        "description": 'A string; a JSON number is accepted too and stored as its text (42 is "42").',
    }
)
class ExternalIdField(serializers.CharField):
    """An event's external_id: a string, or a number read as its text (order numbers sent as numbers)."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, bool):
            self.fail("invalid")
        return super().to_internal_value(data)


GOAL_VALUE_QUANTUM = Decimal(1).scaleb(-GOAL_VALUE_DECIMAL_PLACES)  # 0.01
# Enough digits to quantize any finite double (the largest has 309 integer digits) exactly.
_WIDE = Context(prec=400)


def goal_value_from_number(value: float | int) -> Decimal:
    """A JSON number as Notifuse stores it (NOTIFUSE-API.md §1.7): its shortest round-trip decimal
    text (``repr``: what JavaScript's ``String(x)`` prints), rounded to cents half away from zero.

    So ``1.1 * 3`` (3.3000000000000003) is 3.30 and 1.005 is 1.01, where ``round(x, 2)`` gives 1.0.
    """
    rounded = Decimal(repr(value)).quantize(GOAL_VALUE_QUANTUM, rounding=ROUND_HALF_UP, context=_WIDE)
    return rounded.copy_abs() if rounded.is_zero() else rounded  # -0.001 is 0.00, not -0.00


# What fits the column once rounded to cents: 999999999999.995 would round to 1000000000000.00.
GOAL_VALUE_BOUND = 999999999999.995


@extend_schema_field(
    {
        "type": "number",
        "format": "double",
        "maximum": GOAL_VALUE_BOUND,
        "exclusiveMaximum": True,
        "minimum": -GOAL_VALUE_BOUND,
        "exclusiveMinimum": True,
    }
)
class GoalValueField(serializers.DecimalField):
    """A goal value: any finite JSON number, rounded to cents; or a numeric string (this API's own
    spelling, Notifuse refuses it) that must already fit: at most 2 decimals.

    Either way the result must fit the column (12 integer digits); NaN, infinities, booleans and
    other types are refused, naming the field.
    """

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, bool):
            self.fail("invalid")
        if isinstance(data, float):
            if not math.isfinite(data):
                self.fail("invalid")
            try:
                data = goal_value_from_number(data)
            except InvalidOperation:  # pragma: no cover - _WIDE holds every finite double
                self.fail("invalid")
        elif isinstance(data, int):
            data = Decimal(data)
        elif not isinstance(data, str):
            self.fail("invalid")
        value: Decimal = super().to_internal_value(data)
        return value


class EventInputSerializer(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    event_name = StrictCharField(
        max_length=EVENT_NAME_MAX_LENGTH,
        validators=[RegexValidator(EVENT_NAME_PATTERN, EVENT_NAME_MESSAGE)],
        trim_whitespace=False,
    )
    external_id = ExternalIdField(max_length=EXTERNAL_ID_MAX_LENGTH)
    properties = JsonObjectField(
        required=False,
        default=dict,
        help_text="Any JSON object. No key or string at any depth may hold NUL (\\u0000) or a lone surrogate, and "
        "no number may be infinite (PostgreSQL's jsonb refuses them): a 400 naming the path.",
    )
    occurred_at = ExactDateTimeField(required=False, allow_null=True)
    # DRF's metaclass moves declared fields off the class, so this API field does not replace
    # Field.source; the stubs cannot tell (typeddjango/djangorestframework-stubs#158).
    source = StrictCharField(required=False, max_length=32, validators=[SOURCE_VALIDATOR])  # type: ignore[assignment]
    integration_id = StrictCharField(required=False, allow_null=True, max_length=255)
    goal_type = serializers.ChoiceField(choices=GoalType.choices, required=False, allow_null=True)
    goal_name = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=GOAL_NAME_MAX_LENGTH)
    goal_value = GoalValueField(
        max_digits=GOAL_VALUE_MAX_DIGITS,
        decimal_places=GOAL_VALUE_DECIMAL_PLACES,
        required=False,
        allow_null=True,
        help_text=(
            "A JSON number, any finite double: stored rounded to cents, half away from zero on its shortest "
            "decimal text (3.3000000000000003 is 3.3, 1.005 is 1.01), as Notifuse stores it. Also accepted: a "
            "numeric string with at most 2 decimals. At most 999999999999.99 in magnitude."
        ),
    )
    deleted_at = ExactDateTimeField(required=False, allow_null=True)

    default_error_messages = {"invalid": "Each event must be a JSON object."}

    def __init__(self, *args: Any, default_source: str = CustomEvent.Source.API, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.default_source = default_source

    def validate_email(self, value: str) -> str:
        return normalize_email(value)

    def validate_occurred_at(self, value: Any) -> Any:
        if value is not None and value > timezone.now() + MAX_FUTURE:
            raise serializers.ValidationError("Must not be more than 24 hours in the future.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        goal_type = attrs.get("goal_type")
        if goal_type in GOAL_TYPES_REQUIRING_VALUE and attrs.get("goal_value") is None:
            raise serializers.ValidationError({"goal_value": [f"Required when goal_type is '{goal_type}'."]})
        return attrs

    def to_event_input(self, attrs: dict[str, Any]) -> EventInput:
        return EventInput(
            email=attrs["email"],
            event_name=attrs["event_name"],
            external_id=attrs["external_id"],
            occurred_at=attrs.get("occurred_at") or timezone.now(),
            properties=attrs.get("properties") or {},
            source=attrs.get("source") or self.default_source,
            integration_id=attrs.get("integration_id"),
            goal={name: attrs[name] for name in GOAL_FIELDS if name in attrs},
            deleted_at=attrs.get("deleted_at"),
        )


class EventUpsertInputSerializer(EventInputSerializer):
    workspace_id = serializers.CharField(max_length=32)
    source = StrictCharField(
        required=False,
        max_length=32,
        validators=[SOURCE_VALIDATOR],
        help_text="Checked, then ignored: an upserted event's source is always api, as in Notifuse (the import "
        "keeps it).",
    )


class EventImportInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    events = EventInputSerializer(many=True, allow_empty=False, min_length=1, max_length=50)


class EventOutputSerializer(serializers.ModelSerializer):
    email = serializers.CharField(source="contact.email")
    workspace_id = serializers.CharField()
    goal_value = serializers.DecimalField(
        max_digits=GOAL_VALUE_MAX_DIGITS, decimal_places=GOAL_VALUE_DECIMAL_PLACES, allow_null=True
    )

    class Meta:
        model = CustomEvent
        fields = [
            "id",
            "workspace_id",
            "email",
            "event_name",
            "external_id",
            "properties",
            "occurred_at",
            "source",
            "integration_id",
            "goal_type",
            "goal_name",
            "goal_value",
            "deleted_at",
            "created_at",
            "updated_at",
        ]


class EventUpsertOutputSerializer(serializers.Serializer):
    event = EventOutputSerializer()
    operation = serializers.ChoiceField(choices=["created", "updated", "unchanged", "deleted", "restored"])


@functools.cache
def _event_output() -> EventOutputSerializer:
    return EventOutputSerializer()


def event_upsert_output(result: EventUpsertResult) -> dict[str, Any]:
    """What ``EventUpsertOutputSerializer(result).data`` holds, from one serializer whose fields
    are built once per process: a ModelSerializer introspects the model again on every
    instantiation (about 2 ms of a single upsert). The fields hold no request state."""
    return {"event": _event_output().to_representation(result.event), "operation": result.operation}


class ImportResultSerializer(serializers.Serializer):
    event_name = serializers.CharField()
    external_id = serializers.CharField()
    operation = serializers.CharField()


class EventImportOutputSerializer(serializers.Serializer):
    event_ids = serializers.ListField(child=serializers.CharField())
    count = serializers.IntegerField()
    results = ImportResultSerializer(many=True)


class EventGetOutputSerializer(serializers.Serializer):
    event = EventOutputSerializer()


class PageQuerySerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT)
    cursor = serializers.CharField(required=False, allow_blank=True)


class PageOutputSerializer(serializers.Serializer):
    """A page of a list; subclasses name the list. ``next_cursor`` is null on the last page."""

    next_cursor = serializers.CharField(allow_null=True)


class EventGetQuerySerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    event_name = serializers.CharField(max_length=EVENT_NAME_MAX_LENGTH)
    external_id = serializers.CharField(max_length=EXTERNAL_ID_MAX_LENGTH)


@extend_schema_field({"oneOf": [{"type": "integer"}, {"type": "string"}]})
class LenientCountField(serializers.IntegerField):
    """A paging number read as Notifuse reads it (NOTIFUSE-API.md §1.2, ``customEvents.list``):
    a value that is not an integer is ignored, so is one below ``smallest`` (both give the
    default), and one above ``cap`` is served as ``cap``: never a 400. Beyond ``refuse_above`` it
    is a 400 (no database could skip that many rows). The schema says so: an integer, or any
    other text (which means the default); an empty value is the default too."""

    allow_blank = True

    def __init__(
        self, *, default: int, smallest: int, cap: int | None = None, refuse_above: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(required=False, default=default, **kwargs)
        self.fallback, self.smallest, self.cap, self.refuse_above = default, smallest, cap, refuse_above

    def to_internal_value(self, data: Any) -> int:
        try:
            number = int(str(data).strip())
        except ValueError:
            return self.fallback
        if self.refuse_above is not None and number > self.refuse_above:
            raise serializers.ValidationError(f"Ensure this value is less than or equal to {self.refuse_above}.")
        if number < self.smallest:
            return self.fallback
        return min(number, self.cap) if self.cap is not None else number


class EventListQuerySerializer(PageQuerySerializer):
    email = serializers.CharField(required=False, max_length=254)
    event_name = serializers.CharField(required=False, max_length=EVENT_NAME_MAX_LENGTH)
    goal_type = serializers.ChoiceField(choices=GoalType.choices, required=False)
    limit = LenientCountField(
        default=DEFAULT_LIMIT,
        smallest=1,
        cap=MAX_LIMIT,
        help_text=f"Default {DEFAULT_LIMIT}; above {MAX_LIMIT} is served as {MAX_LIMIT}; 0, negative or not an "
        "integer gives the default (Notifuse's rule).",
    )
    offset = LenientCountField(
        default=0,
        smallest=0,
        refuse_above=1_000_000,
        help_text="Rows to skip (Notifuse clients page by offset; next_cursor is better). Negative or not an "
        "integer is 0.",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs.get("email") and not attrs.get("event_name"):
            raise serializers.ValidationError({"email": ["Give email or event_name (or both)."]})
        return attrs


class EventListOutputSerializer(PageOutputSerializer):
    events = EventOutputSerializer(many=True)
    count = serializers.IntegerField(
        help_text="The number of events on this page (not a total): offset-paging clients stop when count < limit."
    )


# --- contacts ---------------------------------------------------------------------------


PROPERTIES_HELP = (
    "This app's own free-form object: when sent, it replaces the free-form keys whole. Notifuse's profile "
    "fields (phone, country, custom_string_1, ...) are not touched by it: they change only when sent, top-level "
    "or as keys of this object (read as the field of that name, with its type; the same field sent both ways "
    "with different values is a 400). Answers show them top-level only, never inside properties."
)


class ProfileFieldsInputSerializer(serializers.Serializer):
    """Notifuse's contact profile fields alone, each optional and nullable."""

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = super().get_fields()
        return {**fields, **profile_input_fields()}


class ContactFieldsInputSerializer(ProfileFieldsInputSerializer):
    """A contact's fields as they are sent: Notifuse's ``contact`` object (contacts.upsert, contacts.import).

    Only the keys sent change; an explicit null clears a field. Notifuse's profile fields (phone,
    country, custom_*, ...: ``PROFILE_FIELD_TYPES``) are type-checked and stored as keys of
    ``properties`` (``models.merged_properties``); other unknown keys are ignored.
    """

    email = serializers.EmailField(max_length=254)
    external_id = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=255)
    first_name = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=150)
    last_name = StrictCharField(required=False, allow_blank=True, allow_null=True, max_length=150)
    properties = JsonObjectField(required=False, help_text=PROPERTIES_HELP)

    default_error_messages = {"invalid": "Must be a JSON object with an email."}

    def validate_email(self, value: str) -> str:
        return normalize_email(value)

    def validate_properties(self, value: dict[str, Any]) -> dict[str, Any]:
        """Profile fields sent inside properties are checked as those fields (``properties.phone``)."""
        sent = {name: value[name] for name in PROFILE_FIELD_TYPES if name in value}
        if not sent:
            return value
        checked = ProfileFieldsInputSerializer(data=sent)
        if not checked.is_valid():
            raise serializers.ValidationError(checked.errors)
        return {**value, **checked.validated_data}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A profile field inside properties is that field: moved beside the others, unless it was
        # also sent top-level with another value.
        properties = attrs.get("properties")
        if properties is not None:
            inside = {name: properties[name] for name in PROFILE_FIELD_TYPES if name in properties}
            clashes = {
                name: [f"Also sent as {name} with another value: send it once."]
                for name, value in inside.items()
                if name in attrs and attrs[name] != value
            }
            if clashes:
                raise serializers.ValidationError({"properties": clashes})
            attrs = {**inside, **attrs, "properties": {k: v for k, v in properties.items() if k not in inside}}
        # The columns are blank, never NULL: null (Notifuse's "clear it") is the empty string. A
        # profile field's null removes it (``models.merged_properties``).
        return {key: "" if value is None and key not in PROFILE_FIELD_TYPES else value for key, value in attrs.items()}

    def to_contact_input(self, attrs: dict[str, Any]) -> ContactInput:
        fields = {k: v for k, v in attrs.items() if k not in ("workspace_id", "email")}
        return ContactInput(email=attrs["email"], fields=fields)


class ContactUpsertInputSerializer(ContactFieldsInputSerializer):
    """This app's own flat spelling of contacts.upsert: the contact's fields beside workspace_id."""

    workspace_id = serializers.CharField(max_length=32)


class ContactUpsertEnvelopeInputSerializer(serializers.Serializer):
    """Notifuse's spelling of contacts.upsert: ``{"workspace_id", "contact": {email, ...}}``."""

    workspace_id = serializers.CharField(max_length=32)
    contact = ContactFieldsInputSerializer()


class ContactImportInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    contacts = serializers.ListField(
        child=serializers.JSONField(),
        allow_empty=False,
        min_length=1,  # what allow_empty says, in a form the schema carries (minItems)
        max_length=CONTACTS_IMPORT_MAX,
        help_text=f"1 to {CONTACTS_IMPORT_MAX} contact objects (each as contacts.upsert's contact).",
    )
    subscribe_to_lists = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Accepted and ignored: this app has no lists.",
    )


class ContactImportOperationSerializer(serializers.Serializer):
    email = serializers.CharField()
    action = serializers.ChoiceField(choices=["create", "update", "error"])
    error = serializers.CharField(required=False)


class ContactImportOutputSerializer(serializers.Serializer):
    operations = ContactImportOperationSerializer(many=True)


class ContactOutputSerializer(serializers.ModelSerializer):
    """A contact as Notifuse's Contact object (§4.1), with this app's keys. Notifuse's profile fields
    (phone, country, custom_*, ...) are top-level, each present only when set, and never repeated
    inside ``properties``."""

    workspace_id = serializers.CharField()
    full_name = serializers.CharField(read_only=True)
    properties = FreePropertiesField(help_text="This app's own free-form object, without Notifuse's profile fields.")
    contact_lists = serializers.SerializerMethodField(help_text="Always []: this app has no lists.")

    class Meta:
        model = Contact
        fields = [
            "id",
            "workspace_id",
            "email",
            "external_id",
            "first_name",
            "last_name",
            "full_name",
            "properties",
            "contact_lists",
            "created_at",
            "updated_at",
        ]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields: dict[str, serializers.Field] = super().get_fields()
        # The profile fields follow the names, as in Notifuse's object.
        names = list(fields)
        at = max((names.index(n) + 1 for n in ("last_name", "full_name") if n in names), default=len(names))
        before, after = names[:at], names[at:]
        return {**{n: fields[n] for n in before}, **profile_output_fields(), **{n: fields[n] for n in after}}

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_contact_lists(self, contact: Contact) -> list[Any]:
        return []


class ContactUpsertOutputSerializer(serializers.Serializer):
    email = serializers.CharField(source="contact.email", help_text="Notifuse's answer: the normalised email.")
    action = serializers.SerializerMethodField(
        help_text="Notifuse's answer: create, or update (also when nothing changed)."
    )
    contact = ContactOutputSerializer()
    operation = serializers.ChoiceField(choices=["created", "updated", "unchanged"])

    @extend_schema_field(serializers.ChoiceField(choices=["create", "update"]))
    def get_action(self, result: Any) -> str:
        return "create" if result.operation == "created" else "update"


class ContactGetQuerySerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    email = serializers.CharField(max_length=254)


class ContactSegmentOutputSerializer(serializers.Serializer):
    """One of a contact's segment memberships, as contacts.get lists them."""

    id = serializers.CharField(source="segment.slug")
    name = serializers.CharField(source="segment.name")
    color = serializers.CharField(source="segment.color")
    entered_at = serializers.DateTimeField()


class ContactSegmentMembershipOutputSerializer(serializers.Serializer):
    """One membership as Notifuse's ``contact_segments`` lists it."""

    email = serializers.CharField(source="contact.email")
    segment_id = serializers.CharField(source="segment.slug")
    version = serializers.IntegerField(source="segment.version")
    matched_at = serializers.DateTimeField(source="entered_at")
    computed_at = serializers.SerializerMethodField()

    @extend_schema_field(OpenApiTypes.DATETIME)
    def get_computed_at(self, membership: Any) -> Any:
        field = serializers.DateTimeField()
        return field.to_representation(membership.segment.last_built_at or membership.entered_at)


class RfmScoreFieldsSerializer(serializers.Serializer):
    # What a contact's scores under one RFM model show, in the contact API and the RFM API (rfm
    # imports it: contacts never imports rfm). No docstring: each output serializer words its own.
    r = serializers.IntegerField(allow_null=True)
    f = serializers.IntegerField(allow_null=True)
    m = serializers.IntegerField(allow_null=True)
    recency_days = serializers.IntegerField(allow_null=True)
    frequency = serializers.IntegerField(allow_null=True)
    monetary = serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)
    group = serializers.CharField()
    previous_group = serializers.CharField(allow_null=True)
    group_changed_at = serializers.DateTimeField(allow_null=True)


class ContactRfmOutputSerializer(RfmScoreFieldsSerializer):
    """The contact's scores under one RFM model (all null and group prospect before its first score)."""


def rfm_score_values(score: Any, money: Callable[[int], Any] = lambda cents: Decimal(cents) / 100) -> dict[str, Any]:
    """The ``RfmScoreFieldsSerializer`` values of an RFM score row (``money`` shows its cents); no
    row yet is a prospect without scores."""
    if score is None:
        empty = dict.fromkeys(("r", "f", "m", "recency_days", "frequency", "monetary"))
        return {**empty, "group": "prospect", "previous_group": None, "group_changed_at": None}
    return {
        "r": score.r,
        "f": score.f,
        "m": score.m,
        "recency_days": score.recency_days,
        "frequency": score.frequency,
        "monetary": None if score.monetary_cents is None else money(score.monetary_cents),
        "group": score.group,
        "previous_group": score.previous_group or None,
        "group_changed_at": score.group_changed_at,
    }


class ContactWithSegmentsOutputSerializer(ContactOutputSerializer):
    """A contact with the segments it belongs to: by name (``segments``, ours) and as Notifuse lists
    them (``contact_segments``)."""

    # The memberships come read (selectors.contact_segment_memberships) in context["memberships"],
    # a list per contact pk.
    # Its RFM scores (selectors.contacts_rfm_scores) come in context["rfm"], a list per contact pk.
    segments = serializers.SerializerMethodField()
    contact_segments = serializers.SerializerMethodField()
    rfm = serializers.SerializerMethodField()

    class Meta(ContactOutputSerializer.Meta):
        fields = [*ContactOutputSerializer.Meta.fields, "segments", "contact_segments", "rfm"]

    @extend_schema_field(ContactSegmentOutputSerializer(many=True))
    def get_segments(self, contact: Contact) -> Any:
        return ContactSegmentOutputSerializer(self.context["memberships"].get(contact.pk, []), many=True).data

    @extend_schema_field(ContactSegmentMembershipOutputSerializer(many=True))
    def get_contact_segments(self, contact: Contact) -> Any:
        memberships = self.context["memberships"].get(contact.pk, [])
        return ContactSegmentMembershipOutputSerializer(memberships, many=True).data

    @extend_schema_field(serializers.DictField(child=ContactRfmOutputSerializer()))
    def get_rfm(self, contact: Contact) -> Any:
        return {
            slug: ContactRfmOutputSerializer(rfm_score_values(score)).data
            for slug, score in self.context.get("rfm", {}).get(contact.pk, [])
        }


class ContactGetOutputSerializer(serializers.Serializer):
    contact = ContactWithSegmentsOutputSerializer()


class ContactGetByExternalIdQuerySerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    external_id = serializers.CharField(max_length=255)


class ContactCountOutputSerializer(serializers.Serializer):
    total_contacts = serializers.IntegerField()


def _substring(name: str) -> serializers.CharField:
    return serializers.CharField(
        required=False, allow_blank=True, max_length=254, help_text=f"Case-insensitive substring of {name}."
    )


class ContactListQuerySerializer(PageQuerySerializer):
    email = _substring("the email")
    external_id = _substring("external_id")
    first_name = _substring("first_name")
    last_name = _substring("last_name")
    full_name = _substring("first and last name")
    phone = _substring("phone")
    country = _substring("country")
    language = _substring("language")
    # This app has no lists: a non-empty filter on them matches no contact.
    list_id = _substring("a list id (this app has no lists: matches none)")
    contact_list_status = _substring("a list status (this app has no lists: matches none)")
    segments = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        help_text="Segment ids (query key segments[] or segments, repeatable): members of any of them.",
    )
    with_contact_lists = serializers.BooleanField(required=False, help_text="Accepted; contact_lists is always [].")


UNSTORED_CONTACT_FILTERS = ("list_id", "contact_list_status")
CONTACT_TEXT_FILTERS = ("external_id", "first_name", "last_name", "full_name", "phone", "country", "language")


class ContactListOutputSerializer(PageOutputSerializer):
    contacts = ContactWithSegmentsOutputSerializer(many=True)


class ContactDeleteInputSerializer(serializers.Serializer):
    workspace_id = serializers.CharField(max_length=32)
    email = serializers.EmailField(max_length=254)


class ContactDeleteOutputSerializer(serializers.Serializer):
    success = serializers.BooleanField(help_text="Notifuse's answer.")
    deleted = serializers.BooleanField(help_text="This app's earlier answer, kept.")


# --- timeline ---------------------------------------------------------------------------


class TimelineLimitField(serializers.IntegerField):
    """timeline.list's ``limit`` as Notifuse reads it (NOTIFUSE-API.md §2.1): 0 or absent is the
    default, 1 to 100 is served, negative or above 100 is a 400."""

    def to_internal_value(self, data: Any) -> int:
        number: int = super().to_internal_value(data)
        return number or DEFAULT_LIMIT


class TimelineQuerySerializer(PageQuerySerializer):
    email = serializers.CharField(max_length=254)
    kind = serializers.CharField(required=False, max_length=200)
    limit = TimelineLimitField(
        required=False,
        min_value=0,
        max_value=MAX_LIMIT,
        default=DEFAULT_LIMIT,
        help_text=f"Default {DEFAULT_LIMIT}, also for 0 (Notifuse's rule); negative or above {MAX_LIMIT} is a 400.",
    )


class TimelineEntryOutputSerializer(serializers.ModelSerializer):
    """An entry as Notifuse's timeline.list answers it (a string id, the contact's email, a custom
    event's external_id as entity_id), with this app's ``event``: the event's current row.

    The contact's email comes in ``context["email"]`` (every entry of a page is that contact's).
    """

    id = serializers.CharField(read_only=True, help_text="A string, as Notifuse's clients decode it.")
    email = serializers.SerializerMethodField()
    entity_id = serializers.SerializerMethodField(
        help_text="custom_event entries: the event's external_id; segment entries: the segment id; contact "
        "entries: null (Notifuse leaves it out)."
    )
    event = EventOutputSerializer(source="custom_event", allow_null=True, read_only=True)

    def get_email(self, entry: TimelineEntry) -> str:
        email: str = self.context["email"]
        return email

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_entity_id(self, entry: TimelineEntry) -> str | None:
        if entry.entity_type == "contact":
            return None
        if entry.entity_type == "custom_event" and entry.custom_event is not None:
            return entry.custom_event.external_id
        return entry.entity_id or None

    class Meta:
        model = TimelineEntry
        fields = [
            "id",
            "email",
            "kind",
            "operation",
            "entity_type",
            "entity_id",
            "changes",
            "created_at",
            "db_created_at",
            "event",
        ]


class TimelineListOutputSerializer(PageOutputSerializer):
    timeline = TimelineEntryOutputSerializer(many=True)
