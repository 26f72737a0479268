"""The custom-events, contacts and timeline API (Notifuse-compatible paths and payloads)."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.response import Response

from contacts import selectors, services
from contacts.api import fast_input
from contacts.api import serializers as s
from events_platform.workspaces.api import ApiRequest, WorkspaceAPIView

ERROR_RESPONSES = {400: dict, 401: dict, 403: dict}


def _page_args(query: dict[str, Any]) -> dict[str, Any]:
    return {"limit": query["limit"], "cursor": query.get("cursor") or None}


class EventUpsertView(WorkspaceAPIView):
    @extend_schema(
        operation_id="customEvents.upsert",
        summary="Create or update one custom event",
        description=(
            "Identity is (workspace, event_name, external_id). An existing event changes only when the "
            "incoming occurred_at is newer, or when deleted_at is set (soft delete) or omitted on a "
            "deleted event (restore). The contact is created from the email if needed."
        ),
        request=s.EventUpsertInputSerializer,
        responses={200: s.EventUpsertOutputSerializer, **ERROR_RESPONSES},
        tags=["custom events"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        event = fast_input.upsert_input(request.data)
        if event is None:  # not plainly valid: the serializer decides, and words any error
            serializer = s.EventUpsertInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            event = serializer.to_event_input(serializer.validated_data)
        result = services.event_upsert(workspace_id=workspace_id, event=event)
        return Response(s.EventUpsertOutputSerializer(result).data)


class EventImportView(WorkspaceAPIView):
    @extend_schema(
        operation_id="customEvents.import",
        summary="Import 1 to 50 events in one transaction",
        description=(
            "All or nothing: if any event is invalid, nothing is written and the error names its index "
            "(events[3].goal_value). The same (event_name, external_id) twice in a batch behaves as two "
            "upserts sent one after the other."
        ),
        request=s.EventImportInputSerializer,
        responses={201: s.EventImportOutputSerializer, **ERROR_RESPONSES},
        tags=["custom events"],
    )
    def post(self, request: ApiRequest) -> Response:
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
    @extend_schema(
        operation_id="customEvents.get",
        summary="Get one live event by its identity",
        parameters=[s.EventGetQuerySerializer],
        responses={200: s.EventGetOutputSerializer, 404: dict, **ERROR_RESPONSES},
        tags=["custom events"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = self.validated(s.EventGetQuerySerializer, request.query_params)
        event = selectors.event_get(
            workspace_id=workspace_id, event_name=query["event_name"], external_id=query["external_id"]
        )
        if event is None:
            raise Http404("No live event with that event_name and external_id.")
        return Response({"event": s.EventOutputSerializer(event).data})


class EventListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="customEvents.list",
        summary="List live events of a contact or of an event name, newest first",
        parameters=[s.EventListQuerySerializer],
        responses={200: s.EventListOutputSerializer, **ERROR_RESPONSES},
        tags=["custom events"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = self.validated(s.EventListQuerySerializer, request.query_params)
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
    @extend_schema(
        operation_id="contacts.upsert",
        summary="Create or update a contact by email",
        description="Only the fields sent change; properties, when sent, replace the stored object whole.",
        request=s.ContactUpsertInputSerializer,
        responses={200: s.ContactUpsertOutputSerializer, **ERROR_RESPONSES},
        tags=["contacts"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.ContactUpsertInputSerializer, request.data)
        fields = {k: v for k, v in data.items() if k not in ("workspace_id", "email")}
        result = services.contact_upsert(workspace_id=workspace_id, email=data["email"], fields=fields)
        return Response(s.ContactUpsertOutputSerializer(result).data)


class ContactGetView(WorkspaceAPIView):
    """contacts.get: the contact, plus the segments it belongs to."""

    @extend_schema(
        operation_id="contacts.get",
        summary="Get a contact by email, with the segments it belongs to",
        parameters=[s.ContactGetQuerySerializer],
        responses={200: s.ContactGetOutputSerializer, 404: dict, **ERROR_RESPONSES},
        tags=["contacts"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = self.validated(s.ContactGetQuerySerializer, request.query_params)
        contact = selectors.contact_get(workspace_id=workspace_id, email=query["email"])
        if contact is None:
            raise Http404("No contact with that email in this workspace.")
        # Memberships come through the reverse relation segments defines on contacts.
        memberships = selectors.contact_segment_memberships(contact=contact)
        body = s.ContactWithSegmentsOutputSerializer(contact, context={"memberships": memberships}).data
        return Response({"contact": body})


class ContactListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="contacts.list",
        summary="List contacts newest first, optionally searching by email",
        parameters=[s.ContactListQuerySerializer],
        responses={200: s.ContactListOutputSerializer, **ERROR_RESPONSES},
        tags=["contacts"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = self.validated(s.ContactListQuerySerializer, request.query_params)
        page = selectors.contact_list(workspace_id=workspace_id, search=query.get("email"), **_page_args(query))
        return Response(
            {"contacts": s.ContactOutputSerializer(page.items, many=True).data, "next_cursor": page.next_cursor}
        )


class ContactDeleteView(WorkspaceAPIView):
    @extend_schema(
        operation_id="contacts.delete",
        summary="Erase a contact",
        description=(
            "Permanently erases the contact with all its custom events, its timeline and its segment "
            "memberships (for erasure requests). This cannot be undone; to hide a single event, soft-delete "
            "it instead."
        ),
        request=s.ContactDeleteInputSerializer,
        responses={200: s.ContactDeleteOutputSerializer, 404: dict, **ERROR_RESPONSES},
        tags=["contacts"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.ContactDeleteInputSerializer, request.data)
        if not services.contact_delete(workspace_id=workspace_id, email=data["email"]):
            raise Http404("No contact with that email in this workspace.")
        return Response({"deleted": True})


class TimelineListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="timeline.list",
        summary="A contact's timeline, newest first",
        description=(
            "Custom-event entries carry the event's current row under `event` (properties, goal, source). "
            "`kind` filters exactly, or by prefix when it ends with `*` (`custom_event.*`)."
        ),
        parameters=[s.TimelineQuerySerializer, OpenApiParameter("kind", str, description="e.g. custom_event.*")],
        responses={200: s.TimelineListOutputSerializer, 404: dict, **ERROR_RESPONSES},
        tags=["timeline"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        query = self.validated(s.TimelineQuerySerializer, request.query_params)
        contact = selectors.contact_get(workspace_id=workspace_id, email=query["email"])
        if contact is None:
            raise Http404("No contact with that email in this workspace.")
        page = selectors.timeline_list(contact=contact, kind=query.get("kind"), **_page_args(query))
        return Response(
            {
                "timeline": s.TimelineEntryOutputSerializer(page.items, many=True).data,
                "next_cursor": page.next_cursor,
            }
        )
