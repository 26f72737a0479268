"""The segments API: CRUD, rebuild, preview, members, CSV export, explain, templates."""

from __future__ import annotations

from functools import partial

from django.http import StreamingHttpResponse
from rest_framework import status
from rest_framework.response import Response

from contacts import selectors as contact_selectors
from events_platform.pages import found
from events_platform.workspaces.api import ApiRequest, Envelope, WorkspaceAPIView, api_operation
from segments import presenters, selectors, services
from segments.api import serializers as s
from segments.models import DEFAULT_COLOR, Segment

operation = partial(api_operation, tag="segments")


def _segment(workspace_id: str, slug: str) -> Segment:
    return found(selectors.segment_get(workspace_id=workspace_id, slug=slug), f"No segment '{slug}' in this workspace.")


_envelope = Envelope[Segment]("segment", "segments", s.SegmentOutputSerializer)


class SegmentCreateView(WorkspaceAPIView):
    @operation("segments.create", s.SegmentCreateInputSerializer, ok={201: s.SegmentEnvelopeSerializer})
    def post(self, request: ApiRequest) -> Response:
        """Create a segment from a rule tree or a template (built-in or an RFM group's); it builds in the background"""
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
        return _envelope.written(segment, status.HTTP_201_CREATED)


class SegmentUpdateView(WorkspaceAPIView):
    @operation("segments.update", s.SegmentUpdateInputSerializer, ok=s.SegmentEnvelopeSerializer, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Change a segment; a new tree or timezone starts a new build"""
        segment, data = self.parse_row(request, s.SegmentUpdateInputSerializer, _segment)
        segment = services.segment_update(
            segment=segment,
            name=data.get("name"),
            color=data.get("color"),
            tree=data.get("tree"),
            timezone_name=data.get("timezone"),
        )
        return _envelope.written(segment)


class SegmentDeleteView(WorkspaceAPIView):
    @operation("segments.delete", s.SegmentRefInputSerializer, ok=s.SegmentDeleteOutputSerializer, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Delete a segment (refused while other segments use it)

        Answers Notifuse's `success` beside this app's `deleted`.
        """
        segment, _ = self.parse_row(request, s.SegmentRefInputSerializer, _segment)
        services.segment_delete(segment=segment)
        return Response({"success": True, "deleted": True})


class SegmentRebuildView(WorkspaceAPIView):
    @operation(
        "segments.rebuild",
        s.SegmentIdInputSerializer,
        ok={200: s.SegmentRebuildOutputSerializer, 202: s.SegmentRebuildOutputSerializer},
        missing=True,
    )
    def post(self, request: ApiRequest) -> Response:
        """Start a full build now

        Name the segment as Notifuse does (`segment_id`: the answer is 200) or as this app did (`id`: 202, as
        before). Either way the answer is `{"success": true, "message", "segment"}`, the segment `building` at its
        new version.
        """
        segment, data = self.parse_row(request, s.SegmentIdInputSerializer, _segment, key="slug")
        segment = services.segment_rebuild(segment=segment)
        segment.refresh_from_db()
        body = {"success": True, "message": f"Rebuild of '{segment.slug}' queued (version {segment.version})."}
        notifuse = bool(data.get("segment_id"))
        return Response(
            body | _envelope.body(segment), status=status.HTTP_200_OK if notifuse else status.HTTP_202_ACCEPTED
        )


class SegmentGetView(WorkspaceAPIView):
    @operation("segments.get", s.SegmentRefInputSerializer, ok=s.SegmentEnvelopeSerializer, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """One segment with its count, status and last build"""
        segment, _ = self.parse_row(request, s.SegmentRefInputSerializer, _segment)
        return _envelope.answer(segment)


class SegmentListView(WorkspaceAPIView):
    @operation("segments.list", ok=s.SegmentListOutputSerializer)
    def get(self, request: ApiRequest) -> Response:
        """All segments of the workspace with counts, status and last build"""
        return _envelope.listing(selectors.segment_list(workspace_id=self.get_workspace_id(request)))


class SegmentPreviewView(WorkspaceAPIView):
    @operation("segments.preview", s.SegmentPreviewInputSerializer, ok=s.SegmentPreviewOutputSerializer)
    def post(self, request: ApiRequest) -> Response:
        """Count a tree's matches without saving anything

        Notifuse's answer (`emails`: up to 10 sample emails, `total_count`, the `limit` used) beside this app's: the
        total, the count of each top-level condition alone, and up to 10 sample contacts.
        """
        workspace_id, data = self.parse(request, s.SegmentPreviewInputSerializer)
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
    @operation(
        "segments.contacts",
        [s.SegmentMembersNotifuseQuerySerializer, s.SegmentMembersQuerySerializer],
        ok=s.SegmentMembersOutputSerializer,
        missing=True,
    )
    def get(self, request: ApiRequest) -> Response:
        """Members of a segment, most recently entered first

        Two spellings. Notifuse's: `segment_id`, `limit` (default 50, served at most 100, a bad value is the default)
        and `offset`. This app's: `id`, `limit` 1-100 (else 400), `cursor` (and `offset`). Both answer Notifuse's
        `{"emails", "limit", "offset"}` beside this app's `contacts` and `next_cursor`.
        """
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
    @operation("segments.export", s.SegmentRefInputSerializer, ok={(200, "text/csv"): str}, missing=True)
    def get(self, request: ApiRequest) -> StreamingHttpResponse:
        """CSV of all members, streamed (constant memory)"""
        segment, _ = self.parse_row(request, s.SegmentRefInputSerializer, _segment)
        return presenters.members_csv(segment)


class SegmentExplainView(WorkspaceAPIView):
    @operation("segments.explain", s.SegmentExplainQuerySerializer, ok=dict, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """Why one contact is in or out: each condition's actual value and whether it held"""
        workspace_id, data = self.parse(request, s.SegmentExplainQuerySerializer)
        segment = _segment(workspace_id, data["segment_id"])
        contact = found(
            contact_selectors.contact_get(workspace_id=workspace_id, email=data["email"]),
            "No contact with that email in this workspace.",
        )
        return Response(selectors.segment_explain(segment=segment, contact=contact))


class SegmentTemplatesView(WorkspaceAPIView):
    @operation("segments.templates", ok=dict)
    def get(self, request: ApiRequest) -> Response:
        """Segment templates: the three built-in ones and one per group of each RFM model

        Create one with segments.create and template=<id>.
        """
        workspace_id = self.get_workspace_id(request)
        templates = [
            {"id": key, **value} for key, value in selectors.segment_templates(workspace_id=workspace_id).items()
        ]
        return Response({"templates": s.TemplateOutputSerializer(templates, many=True).data})
