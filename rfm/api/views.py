"""The RFM API (RFM §8): rfmModels.create | update | delete | get | list | recompute | preview,
rfm.distribution, rfm.transitions, rfm.contacts (cursor pages or CSV)."""

from __future__ import annotations

import datetime as dt
from functools import partial

from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from rest_framework import status
from rest_framework.response import Response

from events_platform.pages import csv_response, found
from events_platform.workspaces.api import ApiRequest, Envelope, WorkspaceAPIView, api_operation
from rfm import config as rfm_config
from rfm import selectors, services
from rfm.api import presentation
from rfm.api import serializers as s
from rfm.models import RfmModel

operation = partial(api_operation, tag="rfm")


def _model(workspace_id: str, slug: str) -> RfmModel:
    return found(
        selectors.rfm_model_get(workspace_id=workspace_id, slug=slug), f"No RFM model '{slug}' in this workspace."
    )


_envelope = Envelope[RfmModel]("rfm_model", "rfm_models", s.RfmModelOutputSerializer)


class RfmModelCreateView(WorkspaceAPIView):
    @operation("rfmModels.create", s.RfmModelCreateInputSerializer, ok={201: s.RfmModelEnvelopeSerializer})
    def post(self, request: ApiRequest) -> Response:
        """Create an RFM model (config keys and/or preset=klaviyo); its first full run starts in the background"""
        workspace_id, data = self.parse(request, s.RfmModelCreateInputSerializer)
        model = services.rfm_model_create(
            workspace_id=workspace_id,
            slug=data["id"],
            name=data.get("name") or data["id"],
            timezone_name=data.get("timezone"),
            settings=s.RfmModelCreateInputSerializer.settings(data),
        )
        return _envelope.written(model, status.HTTP_201_CREATED)


class RfmModelUpdateView(WorkspaceAPIView):
    @operation("rfmModels.update", s.RfmModelUpdateInputSerializer, ok=s.RfmModelEnvelopeSerializer, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Change a model; a change of what is scored starts a new full run"""
        model, data = self.parse_row(request, s.RfmModelUpdateInputSerializer, _model)
        model = services.rfm_model_update(
            model=model,
            name=data.get("name"),
            timezone_name=data.get("timezone"),
            settings=s.RfmModelUpdateInputSerializer.settings(data),
        )
        return _envelope.written(model)


class RfmModelDeleteView(WorkspaceAPIView):
    @operation("rfmModels.delete", s.RfmModelRefInputSerializer, ok=dict, missing=True)
    def post(self, request: ApiRequest) -> Response:
        """Delete a model and its scores (its runs and change log are kept)"""
        model, _ = self.parse_row(request, s.RfmModelRefInputSerializer, _model)
        services.rfm_model_delete(model=model)
        return Response({"deleted": True})


class RfmModelRecomputeView(WorkspaceAPIView):
    @operation(
        "rfmModels.recompute", s.RfmModelRefInputSerializer, ok={202: s.RfmModelEnvelopeSerializer}, missing=True
    )
    def post(self, request: ApiRequest) -> Response:
        """Start a full run now (re-rank everyone, new cut points)"""
        model, _ = self.parse_row(request, s.RfmModelRefInputSerializer, _model)
        return _envelope.written(services.rfm_model_recompute(model=model), status.HTTP_202_ACCEPTED)


class RfmModelGetView(WorkspaceAPIView):
    @operation("rfmModels.get", s.RfmModelRefInputSerializer, ok=s.RfmModelEnvelopeSerializer, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """One model: its configuration, status, last run and cut points"""
        model, _ = self.parse_row(request, s.RfmModelRefInputSerializer, _model)
        return _envelope.answer(model)


class RfmModelListView(WorkspaceAPIView):
    @operation("rfmModels.list", ok=s.RfmModelListOutputSerializer)
    def get(self, request: ApiRequest) -> Response:
        """All RFM models of the workspace"""
        return _envelope.listing(selectors.rfm_model_list(workspace_id=self.get_workspace_id(request)))


class RfmModelPreviewView(WorkspaceAPIView):
    @operation("rfmModels.preview", s.RfmModelPreviewInputSerializer, ok=dict)
    def post(self, request: ApiRequest) -> Response:
        """Run a configuration without saving: cut points, group counts, R x F cells, 10 sample customers"""
        workspace_id, data = self.parse(request, s.RfmModelPreviewInputSerializer)
        canonical = rfm_config.validate_config(s.RfmModelPreviewInputSerializer.settings(data))
        tz = data.get("timezone") or self.workspace_timezone(workspace_id)
        preview = selectors.rfm_preview(
            workspace_id=workspace_id, timezone_name=rfm_config.validate_timezone_name(tz), canonical=canonical
        )
        return Response(presentation.preview_body(preview, canonical))

    @staticmethod
    def workspace_timezone(workspace_id: str) -> str:
        from events_platform.workspaces.models import Workspace

        return Workspace.objects.filter(pk=workspace_id).values_list("timezone", flat=True).first() or "UTC"


class RfmDistributionView(WorkspaceAPIView):
    @operation("rfm.distribution", s.RfmModelQuerySerializer, ok=dict, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """Groups (size, % customers, % revenue, medians) and R x F cells of a model's current scores"""
        model, _ = self.parse_row(request, s.RfmModelQuerySerializer, _model, key="model")
        return Response(
            {"model": model.slug, **presentation.distribution_body(selectors.rfm_distribution(model=model))}
        )


def _instant(value: dt.datetime | dt.date, model: RfmModel) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return selectors.end_of_day(value, model.timezone)


class RfmTransitionsView(WorkspaceAPIView):
    @operation("rfm.transitions", s.RfmTransitionsQuerySerializer, ok=s.RfmTransitionsOutputSerializer, missing=True)
    def get(self, request: ApiRequest) -> Response:
        """Contacts counted by (group as of from, group as of to), from the change log

        from and to are instants, or dates meaning the end of that day in the model's timezone. from before the
        model's first run is a 400.
        """
        model, data = self.parse_row(request, s.RfmTransitionsQuerySerializer, _model, key="model")
        start = _instant(data["from"], model)
        end = _instant(data["to"], model) if "to" in data else timezone.now()
        first = selectors.first_run_at(model=model)
        if first is None or start < first:
            since = f"its first run, {first.isoformat()}" if first else "its first run (none yet)"
            raise services.RfmError("from", f"The change log of this model starts at {since}.")
        if end < start:
            raise services.RfmError("to", "to must not be before from.")
        rows = selectors.rfm_transitions(model=model, start=start, end=end)
        return Response({"model": model.slug, "from": start, "to": end, "transitions": rows})


class RfmContactsView(WorkspaceAPIView):
    @operation(
        "rfm.contacts",
        s.RfmContactsQuerySerializer,
        ok={200: s.RfmContactsOutputSerializer, (200, "text/csv"): OpenApiTypes.STR},
        missing=True,
    )
    def get(self, request: ApiRequest) -> Response | StreamingHttpResponse:
        """Contacts of a group or an R x F cell with their scores: cursor pages, or output=csv for all"""
        model, data = self.parse_row(request, s.RfmContactsQuerySerializer, _model, key="model")
        where = {"group": data.get("group"), "r": data.get("r"), "f": data.get("f")}
        if data["output"] == "csv":
            return csv_response(
                filename=f"rfm-{model.slug}-{presentation.selection_label(**where)}.csv",
                header=presentation.CSV_HEADER,
                rows=(presentation.csv_row(score) for score in selectors.rfm_contacts_rows(model=model, **where)),
            )
        page = selectors.rfm_contacts_page(model=model, limit=data["limit"], cursor=data.get("cursor") or None, **where)
        return Response(
            {
                "contacts": [presentation.contact_score(score) for score in page.items],
                "next_cursor": page.next_cursor,
            }
        )
