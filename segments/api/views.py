"""The segments API: CRUD, rebuild, preview, members, CSV export, explain, templates."""

from __future__ import annotations

from typing import Any

from django.http import Http404, StreamingHttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from contacts import selectors as contact_selectors
from events_platform.workspaces.api import ApiRequest, WorkspaceAPIView
from segments import presenters, selectors, services
from segments.api import serializers as s
from segments.models import DEFAULT_COLOR, Segment

ERRORS = {400: dict, 401: dict, 403: dict}


def _segment(workspace_id: str, slug: str) -> Segment:
    segment = selectors.segment_get(workspace_id=workspace_id, slug=slug)
    if segment is None:
        raise Http404(f"No segment '{slug}' in this workspace.")
    return segment


def _segment_body(segment: Segment) -> dict[str, Any]:
    return {"segment": s.SegmentOutputSerializer(segment).data}


class SegmentCreateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.create",
        summary="Create a segment from a rule tree or a built-in template; a build starts in the background",
        request=s.SegmentCreateInputSerializer,
        responses={201: s.SegmentEnvelopeSerializer, **ERRORS},
        tags=["segments"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        templates = selectors.segment_templates(workspace_id=workspace_id)
        data = self.validated(s.SegmentCreateInputSerializer, request.data, context={"templates": templates})
        segment = services.segment_create(
            workspace_id=workspace_id,
            slug=data["id"],
            name=data["name"],
            tree=data["tree"],
            color=data.get("color", DEFAULT_COLOR),
            timezone_name=data.get("timezone", "UTC"),
        )
        segment.refresh_from_db()
        return Response(_segment_body(segment), status=status.HTTP_201_CREATED)


class SegmentUpdateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.update",
        summary="Change a segment; a new tree or timezone starts a new build",
        request=s.SegmentUpdateInputSerializer,
        responses={200: s.SegmentEnvelopeSerializer, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentUpdateInputSerializer, request.data)
        segment = _segment(workspace_id, data["id"])
        segment = services.segment_update(
            segment=segment,
            name=data.get("name"),
            color=data.get("color"),
            tree=data.get("tree"),
            timezone_name=data.get("timezone"),
        )
        segment.refresh_from_db()
        return Response(_segment_body(segment))


class SegmentDeleteView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.delete",
        summary="Delete a segment (refused while other segments use it)",
        description="Answers Notifuse's `success` beside this app's `deleted`.",
        request=s.SegmentRefInputSerializer,
        responses={200: s.SegmentDeleteOutputSerializer, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentRefInputSerializer, request.data)
        services.segment_delete(segment=_segment(workspace_id, data["id"]))
        return Response({"success": True, "deleted": True})


class SegmentRebuildView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.rebuild",
        summary="Start a full build now",
        description=(
            "Name the segment as Notifuse does (`segment_id`: the answer is 200) or as this app did (`id`: 202, "
            'as before). Either way the answer is `{"success": true, "message", "segment"}`, the segment '
            "`building` at its new version."
        ),
        request=s.SegmentIdInputSerializer,
        responses={
            200: s.SegmentRebuildOutputSerializer,
            202: s.SegmentRebuildOutputSerializer,
            404: dict,
            **ERRORS,
        },
        tags=["segments"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentIdInputSerializer, request.data)
        segment = services.segment_rebuild(segment=_segment(workspace_id, data["slug"]))
        segment.refresh_from_db()
        body = {"success": True, "message": f"Rebuild of '{segment.slug}' queued (version {segment.version})."}
        notifuse = bool(data.get("segment_id"))
        return Response(
            body | _segment_body(segment), status=status.HTTP_200_OK if notifuse else status.HTTP_202_ACCEPTED
        )


class SegmentGetView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.get",
        summary="One segment with its count, status and last build",
        parameters=[s.SegmentRefInputSerializer],
        responses={200: s.SegmentEnvelopeSerializer, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentRefInputSerializer, request.query_params)
        return Response(_segment_body(_segment(workspace_id, data["id"])))


class SegmentListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.list",
        summary="All segments of the workspace with counts, status and last build",
        responses={200: s.SegmentListOutputSerializer, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        segments = selectors.segment_list(workspace_id=workspace_id)
        return Response({"segments": s.SegmentOutputSerializer(segments, many=True).data})


class SegmentPreviewView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.preview",
        summary="Count a tree's matches without saving anything",
        description=(
            "Notifuse's answer (`emails`: up to 10 sample emails, `total_count`, the `limit` used) beside this "
            "app's: the total, the count of each top-level condition alone, and up to 10 sample contacts."
        ),
        request=s.SegmentPreviewInputSerializer,
        responses={200: s.SegmentPreviewOutputSerializer, **ERRORS},
        tags=["segments"],
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentPreviewInputSerializer, request.data)
        preview = selectors.segment_preview(
            workspace_id=workspace_id, tree=data["tree"], timezone_name=data["timezone"]
        )
        return Response(
            {
                "emails": [contact.email for contact in preview.sample[: data["limit"]]],
                "total_count": preview.total,
                "limit": data["limit"],
                "total": preview.total,
                "contacts_in_workspace": preview.contacts_in_workspace,
                "conditions": [{"index": i, "count": c} for i, c in enumerate(preview.condition_counts)],
                "sample": s.ContactOutputSerializer(preview.sample, many=True).data,
            }
        )


class SegmentContactsView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.contacts",
        summary="Members of a segment, most recently entered first",
        description=(
            "Two spellings. Notifuse's: `segment_id`, `limit` (default 50, served at most 100, a bad value is the "
            "default) and `offset`. This app's: `id`, `limit` 1-100 (else 400), `cursor` (and `offset`). Both "
            'answer Notifuse\'s `{"emails", "limit", "offset"}` beside this app\'s `contacts` and '
            "`next_cursor`."
        ),
        parameters=[s.SegmentMembersNotifuseQuerySerializer, s.SegmentMembersQuerySerializer],
        responses={200: s.SegmentMembersOutputSerializer, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        if "segment_id" in request.query_params:  # Notifuse's spelling
            data = self.validated(s.SegmentMembersNotifuseQuerySerializer, request.query_params)
            slug = data["segment_id"]
        else:
            data = self.validated(s.SegmentMembersQuerySerializer, request.query_params)
            slug = data["id"]
        segment = _segment(workspace_id, slug)
        page = selectors.segment_members(
            segment=segment, limit=data["limit"], cursor=data.get("cursor") or None, offset=data["offset"]
        )
        members = [{**s.ContactOutputSerializer(m.contact).data, "entered_at": m.entered_at} for m in page.items]
        return Response(
            {
                "emails": [m.contact.email for m in page.items],
                "limit": data["limit"],
                "offset": data["offset"],
                "contacts": s.SegmentMemberOutputSerializer(members, many=True).data,
                "next_cursor": page.next_cursor,
            }
        )


class SegmentExportView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.export",
        summary="CSV of all members, streamed (constant memory)",
        parameters=[s.SegmentRefInputSerializer],
        responses={(200, "text/csv"): str, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> StreamingHttpResponse:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentRefInputSerializer, request.query_params)
        return presenters.members_csv(_segment(workspace_id, data["id"]))


class SegmentExplainView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.explain",
        summary="Why one contact is in or out: each condition's actual value and whether it held",
        parameters=[s.SegmentExplainQuerySerializer],
        responses={200: dict, 404: dict, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.SegmentExplainQuerySerializer, request.query_params)
        segment = _segment(workspace_id, data["segment_id"])
        contact = contact_selectors.contact_get(workspace_id=workspace_id, email=data["email"])
        if contact is None:
            raise Http404("No contact with that email in this workspace.")
        return Response(selectors.segment_explain(segment=segment, contact=contact))


class SegmentTemplatesView(WorkspaceAPIView):
    @extend_schema(
        operation_id="segments.templates",
        summary="Segment templates: the three built-in ones and one per group of each RFM model "
        "(create one with segments.create and template=<id>)",
        responses={200: dict, **ERRORS},
        tags=["segments"],
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        templates = [
            {"id": key, **value} for key, value in selectors.segment_templates(workspace_id=workspace_id).items()
        ]
        return Response({"templates": s.TemplateOutputSerializer(templates, many=True).data})
