"""The custom-events, contacts and timeline API (Notifuse-compatible paths and payloads)."""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, PolymorphicProxySerializer
from rest_framework import serializers, status
from rest_framework.response import Response

from contacts import selectors, services
from contacts.api import fast_input
from contacts.api import serializers as s
from contacts.models import Contact, CustomEvent
from events_platform.exceptions import flatten_errors, summarize
from events_platform.pages import found
from events_platform.pagination import Page
from events_platform.workspaces.api import ApiRequest, WorkspaceAPIView, api_operation

# conflict=True: a write that lost a race with a concurrent one (the contact's erasure) is rolled
# back and answered 409: retry it.
operation = partial(api_operation, tag="contacts")
event_operation = partial(api_operation, tag="custom events")


def _page_args(query: dict[str, Any]) -> dict[str, Any]:
    return {"limit": query["limit"], "cursor": query.get("cursor") or None}


class EventUpsertView(WorkspaceAPIView):
    @event_operation(
        "customEvents.upsert", s.EventUpsertInputSerializer, ok=s.EventUpsertOutputSerializer, conflict=True
    )
    def post(self, request: ApiRequest) -> Response:
        """Create or update one custom event

        Identity is (workspace, event_name, external_id). An existing event changes only when the incoming
        occurred_at is newer, or when deleted_at is set (soft delete) or omitted on a deleted event (restore). The
        contact is created from the email if needed. A `source` in the body is checked and then ignored: an upserted
        event's source is always `api`, as in Notifuse (customEvents.import keeps the source sent).
        """
        workspace_id = self.get_workspace_id(request)
        event = fast_input.upsert_input(request.data)
        if event is None:  # not plainly valid: the serializer decides, and words any error
            serializer = s.EventUpsertInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            event = serializer.to_event_input(serializer.validated_data)
        # Notifuse's upsert ignores the source sent (NOTIFUSE-API.md §1.2): what it stores is "api".
        event = dataclasses.replace(event, source=CustomEvent.Source.API)
        result = services.event_upsert(workspace_id=workspace_id, event=event)
        return Response(s.event_upsert_output(result))


class EventImportView(WorkspaceAPIView):
    @event_operation(
        "customEvents.import", s.EventImportInputSerializer, ok={201: s.EventImportOutputSerializer}, conflict=True
    )
    def post(self, request: ApiRequest) -> Response:
        """Import 1 to 50 events in one transaction

        All or nothing: if any event is invalid, nothing is written and the error names its index
        (events[3].goal_value). The same (event_name, external_id) twice in a batch behaves as two upserts sent one
        after the other.
        """
        workspace_id = self.get_workspace_id(request)
        inputs = fast_input.import_inputs(request.data)
        if inputs is None:  # not plainly valid: the serializer decides, and words any error
            data = self.validated(s.EventImportInputSerializer, request.data)
            converter = s.EventInputSerializer()
            inputs = [converter.to_event_input(attrs) for attrs in data["events"]]
        results = services.events_upsert(workspace_id=workspace_id, events=inputs)
        body = {
            "event_ids": [r.event.external_id for r in results],
            "count": len(results),
            "results": [
                {"event_name": r.event.event_name, "external_id": r.event.external_id, "operation": r.operation}
                for r in results
            ],
        }
        return Response(body, status=status.HTTP_201_CREATED)


class EventGetView(WorkspaceAPIView):
    @event_operation("customEvents.get", s.EventGetQuerySerializer, ok=s.EventGetOutputSerializer, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """Get one live event by its identity"""
        workspace_id, query = self.parse(request, s.EventGetQuerySerializer)
        event = found(
            selectors.event_get(
                workspace_id=workspace_id, event_name=query["event_name"], external_id=query["external_id"]
            ),
            "No live event with that event_name and external_id.",
        )
        return Response({"event": s.EventOutputSerializer(event).data})


class EventListView(WorkspaceAPIView):
    @event_operation("customEvents.list", s.EventListQuerySerializer, ok=s.EventListOutputSerializer)
    def get(self, request: ApiRequest) -> Response:
        """List live events of a contact or of an event name, newest first"""
        workspace_id, query = self.parse(request, s.EventListQuerySerializer)
        page = selectors.event_list(
            workspace_id=workspace_id,
            email=query.get("email"),
            event_name=query.get("event_name"),
            goal_type=query.get("goal_type"),
            offset=query["offset"],
            **_page_args(query),
        )
        return Response(
            {
                "events": s.EventOutputSerializer(page.items, many=True).data,
                "count": len(page.items),
                "next_cursor": page.next_cursor,
            }
        )


class ContactUpsertView(WorkspaceAPIView):
    @operation(
        "contacts.upsert",
        PolymorphicProxySerializer(
            component_name="ContactUpsertRequest",
            serializers=[s.ContactUpsertEnvelopeInputSerializer, s.ContactUpsertInputSerializer],
            resource_type_field_name=None,
        ),
        ok=s.ContactUpsertOutputSerializer,
        conflict=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Create or update a contact by email

        Two spellings of one request: Notifuse's envelope `{"workspace_id", "contact": {"email", ...}}` and this
        app's flat body (the contact's fields beside workspace_id). Only the fields sent change; an explicit null
        clears one. Notifuse's profile fields (timezone, language, phone, address_line_1/2, country, postcode, state,
        job_title, custom_string_1..5, custom_number_1..5, custom_datetime_1..5, custom_json_1..5) are type-checked
        and stored; a wrong type is a 400 naming it (`contact.custom_number_1`). `properties`, when sent, replaces
        this app's free-form keys whole and leaves the profile fields as they are. The answer carries Notifuse's
        `email` and `action` (create | update) beside this app's `contact` and `operation`.
        """
        workspace_id = self.get_workspace_id(request)
        if "contact" in request.data:  # Notifuse's envelope
            attrs = self.validated(s.ContactUpsertEnvelopeInputSerializer, request.data)["contact"]
        else:
            attrs = self.validated(s.ContactUpsertInputSerializer, request.data)
        contact = s.ContactFieldsInputSerializer().to_contact_input(attrs)
        result = services.contacts_upsert(workspace_id=workspace_id, contacts=[contact])[0]
        return Response(s.ContactUpsertOutputSerializer(result).data)


class ContactImportView(WorkspaceAPIView):
    @operation(
        "contacts.import",
        s.ContactImportInputSerializer,
        ok=s.ContactImportOutputSerializer,
        summary=f"Create or update 1 to {s.CONTACTS_IMPORT_MAX} contacts in one transaction",
        description=(
            "Each item is a contacts.upsert `contact`. An invalid item does not stop the others: it is answered "
            "inline as `action: error` with its `error` (still 200), and the valid ones are written in one "
            "transaction, in order (an email twice is two upserts one after the other). `operations` keeps the "
            "input order (Notifuse dedupes by email and lists errors first)."
        ),
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id, data = self.parse(request, s.ContactImportInputSerializer)
        operations: list[dict[str, Any]] = []
        valid: list[tuple[int, services.ContactInput]] = []
        for index, item in enumerate(data["contacts"]):
            serializer = s.ContactFieldsInputSerializer(data=item)
            if serializer.is_valid():
                valid.append((index, serializer.to_contact_input(serializer.validated_data)))
                operations.append({})
            else:
                email = item.get("email") if isinstance(item, dict) else None
                error = summarize(flatten_errors(serializer.errors))
                operations.append({"email": email if isinstance(email, str) else "", "action": "error", "error": error})
        # Every contact refused: nothing to write (the service takes at least one).
        results = services.contacts_upsert(workspace_id=workspace_id, contacts=[c for _, c in valid]) if valid else []
        for (index, _), result in zip(valid, results, strict=True):
            action = "create" if result.operation == services.Operation.CREATED else "update"
            operations[index] = {"email": result.contact.email, "action": action}
        return Response({"operations": operations})


def _contact_body(contact: Contact) -> dict[str, Any]:
    """``{"contact": ...}`` with its segments, as contacts.get, getByEmail and getByExternalID answer."""
    memberships = selectors.contacts_segment_memberships(contacts=[contact])
    # Its RFM scores come through the reverse relations rfm defines (contacts never imports rfm).
    rfm = {contact.pk: selectors.contact_rfm_scores(contact=contact)}
    body = s.ContactWithSegmentsOutputSerializer(contact, context={"memberships": memberships, "rfm": rfm}).data
    return {"contact": body}


def _found(contact: Contact | None, what: str) -> Contact:
    return found(contact, f"No contact with that {what} in this workspace.")


def _contact_get_schema(operation_id: str, summary: str, query: type[serializers.Serializer]) -> Any:
    """The OpenAPI description shared by the three reads of one contact."""
    return operation(
        operation_id,
        query,
        ok=s.ContactGetOutputSerializer,
        missing=True,
        summary=summary,
        description=(
            "The contact with the segments it belongs to (`segments`: id, name, color, entered_at; and "
            "Notifuse's `contact_segments`). `contact_lists` is always [] (this app has no lists)."
        ),
    )


class ContactGetView(WorkspaceAPIView):
    """contacts.get: the contact, plus the segments it belongs to."""

    @_contact_get_schema(
        "contacts.get", "Get a contact by email, with the segments it belongs to", s.ContactGetQuerySerializer
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id, query = self.parse(request, s.ContactGetQuerySerializer)
        return Response(
            _contact_body(_found(selectors.contact_get(workspace_id=workspace_id, email=query["email"]), "email"))
        )


class ContactGetByEmailView(ContactGetView):
    """contacts.getByEmail: Notifuse's name for contacts.get."""

    @_contact_get_schema(
        "contacts.getByEmail",
        "Get a contact by email (trimmed, lower-cased), with the segments it belongs to",
        s.ContactGetQuerySerializer,
    )
    def get(self, request: ApiRequest) -> Response:
        response: Response = super().get(request)
        return response


class ContactGetByExternalIdView(WorkspaceAPIView):
    @_contact_get_schema(
        "contacts.getByExternalID",
        "Get a contact by its external_id (exact match), with the segments it belongs to",
        s.ContactGetByExternalIdQuerySerializer,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id, query = self.parse(request, s.ContactGetByExternalIdQuerySerializer)
        contact = selectors.contact_get_by_external_id(workspace_id=workspace_id, external_id=query["external_id"])
        return Response(_contact_body(_found(contact, "external_id")))


class ContactCountView(WorkspaceAPIView):
    @operation("contacts.count", ok=s.ContactCountOutputSerializer)
    def get(self, request: ApiRequest) -> Response:
        """How many contacts the workspace has"""
        workspace_id = self.get_workspace_id(request)
        return Response({"total_contacts": selectors.contact_count(workspace_id=workspace_id)})


class ContactListView(WorkspaceAPIView):
    @operation(
        "contacts.list",
        [
            s.ContactListQuerySerializer(),
            OpenApiParameter("segments[]", str, many=True, description="Notifuse's spelling of segments."),
        ],
        ok=s.ContactListOutputSerializer,
    )
    def get(self, request: ApiRequest) -> Response:
        """List contacts newest first, filtered as Notifuse filters them

        Text filters (email, external_id, first_name, last_name, full_name, phone, country, language) are
        case-insensitive substrings, ANDed; `segments[]` (or `segments`, repeatable) keeps members of any of the given
        segments. Filters on lists (list_id, contact_list_status) match no contact: this app has no lists. Each
        contact carries `contact_lists: []` and its `contact_segments`, and, like contacts.get, its `rfm` scores
        under each RFM model.
        """
        workspace_id = self.get_workspace_id(request)
        params = request.query_params
        data: dict[str, Any] = {key: params.get(key) for key in params if key not in ("segments", "segments[]")}
        data["segments"] = params.getlist("segments[]") + params.getlist("segments")
        query = self.validated(s.ContactListQuerySerializer, data)
        if any(query.get(name) for name in s.UNSTORED_CONTACT_FILTERS):
            page = Page[Contact](items=[], next_cursor=None)
        else:
            page = selectors.contact_list(
                workspace_id=workspace_id,
                search=query.get("email"),
                containing={name: query[name] for name in s.CONTACT_TEXT_FILTERS if query.get(name)},
                segment_slugs=query.get("segments", []),
                **_page_args(query),
            )
        memberships = selectors.contacts_segment_memberships(contacts=page.items)
        # Each contact's RFM scores, as contacts.get carries them: one read for the whole page.
        rfm = selectors.contacts_rfm_scores(workspace_id=workspace_id, contacts=page.items)
        contacts = s.ContactWithSegmentsOutputSerializer(
            page.items, many=True, context={"memberships": memberships, "rfm": rfm}
        )
        return Response({"contacts": contacts.data, "next_cursor": page.next_cursor})


class ContactDeleteView(WorkspaceAPIView):
    @operation(
        "contacts.delete",
        s.ContactDeleteInputSerializer,
        ok=s.ContactDeleteOutputSerializer,
        missing=True,
        conflict=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Erase a contact

        Permanently erases the contact with all its custom events, its timeline and its segment memberships (for
        erasure requests; Notifuse keeps the events and segment rows). This cannot be undone; to hide a single event,
        soft-delete it instead. Answers Notifuse's `success` beside this app's `deleted`.
        """
        workspace_id, data = self.parse(request, s.ContactDeleteInputSerializer)
        if not services.contact_delete(workspace_id=workspace_id, email=data["email"]):
            raise Http404("No contact with that email in this workspace.")
        return Response({"success": True, "deleted": True})


class TimelineListView(WorkspaceAPIView):
    @operation(
        "timeline.list",
        [s.TimelineQuerySerializer, OpenApiParameter("kind", str, description="e.g. custom_event.*")],
        ok=s.TimelineListOutputSerializer,
        missing=True,
        tag="timeline",
    )
    def get(self, request: ApiRequest) -> Response:
        """A contact's timeline, newest first

        Custom-event entries carry the event's current row under `event` (properties, goal, source). `kind` filters
        exactly, or by prefix when it ends with `*` (`custom_event.*`).
        """
        workspace_id, query = self.parse(request, s.TimelineQuerySerializer)
        contact = _found(selectors.contact_get(workspace_id=workspace_id, email=query["email"]), "email")
        page = selectors.timeline_list(contact=contact, kind=query.get("kind"), **_page_args(query))
        return Response(
            {
                "timeline": s.TimelineEntryOutputSerializer(
                    page.items, many=True, context={"email": contact.email}
                ).data,
                "next_cursor": page.next_cursor,
            }
        )
