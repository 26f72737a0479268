"""The RFM API (RFM §8): rfmModels.create | update | delete | get | list | recompute | preview,
rfm.distribution, rfm.transitions, rfm.contacts (cursor pages or CSV)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.http import Http404, StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from events_platform.pages import csv_response
from events_platform.workspaces.api import ApiRequest, WorkspaceAPIView
from rfm import config as rfm_config
from rfm import selectors, services
from rfm.api import presentation
from rfm.api import serializers as s
from rfm.models import RfmModel

ERRORS = {400: dict, 401: dict, 403: dict}
TAGS = ["rfm"]


def _model(workspace_id: str, slug: str) -> RfmModel:
    model = selectors.rfm_model_get(workspace_id=workspace_id, slug=slug)
    if model is None:
        raise Http404(f"No RFM model '{slug}' in this workspace.")
    return model


def _body(model: RfmModel) -> dict[str, Any]:
    return {"rfm_model": s.RfmModelOutputSerializer(model).data}


class RfmModelCreateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.create",
        summary="Create an RFM model (config keys and/or preset=klaviyo); its first full run starts in the background",
        request=s.RfmModelCreateInputSerializer,
        responses={201: s.RfmModelEnvelopeSerializer, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        serializer = s.RfmModelCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = services.rfm_model_create(
            workspace_id=workspace_id,
            slug=data["id"],
            name=data.get("name") or data["id"],
            timezone_name=data.get("timezone"),
            settings=serializer.settings(),
        )
        model.refresh_from_db()
        return Response(_body(model), status=status.HTTP_201_CREATED)


class RfmModelUpdateView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.update",
        summary="Change a model; a change of what is scored starts a new full run",
        request=s.RfmModelUpdateInputSerializer,
        responses={200: s.RfmModelEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        serializer = s.RfmModelUpdateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        model = services.rfm_model_update(
            model=_model(workspace_id, data["id"]),
            name=data.get("name"),
            timezone_name=data.get("timezone"),
            settings=serializer.settings(),
        )
        model.refresh_from_db()
        return Response(_body(model))


class RfmModelDeleteView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.delete",
        summary="Delete a model and its scores (its runs and change log are kept)",
        request=s.RfmModelRefInputSerializer,
        responses={200: dict, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmModelRefInputSerializer, request.data)
        services.rfm_model_delete(model=_model(workspace_id, data["id"]))
        return Response({"deleted": True})


class RfmModelRecomputeView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.recompute",
        summary="Start a full run now (re-rank everyone, new cut points)",
        request=s.RfmModelRefInputSerializer,
        responses={202: s.RfmModelEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmModelRefInputSerializer, request.data)
        model = services.rfm_model_recompute(model=_model(workspace_id, data["id"]))
        model.refresh_from_db()
        return Response(_body(model), status=status.HTTP_202_ACCEPTED)


class RfmModelGetView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.get",
        summary="One model: its configuration, status, last run and cut points",
        parameters=[s.RfmModelRefInputSerializer],
        responses={200: s.RfmModelEnvelopeSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmModelRefInputSerializer, request.query_params)
        return Response(_body(_model(workspace_id, data["id"])))


class RfmModelListView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.list",
        summary="All RFM models of the workspace",
        responses={200: s.RfmModelListOutputSerializer, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        models = selectors.rfm_model_list(workspace_id=workspace_id)
        return Response({"rfm_models": s.RfmModelOutputSerializer(models, many=True).data})


class RfmModelPreviewView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfmModels.preview",
        summary="Run a configuration without saving: cut points, group counts, R x F cells, 10 sample customers",
        request=s.RfmModelPreviewInputSerializer,
        responses={200: dict, **ERRORS},
        tags=TAGS,
    )
    def post(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        serializer = s.RfmModelPreviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        canonical = rfm_config.validate_config(serializer.settings())
        tz = serializer.validated_data.get("timezone") or self.workspace_timezone(workspace_id)
        preview = selectors.rfm_preview(
            workspace_id=workspace_id, timezone_name=rfm_config.validate_timezone_name(tz), canonical=canonical
        )
        return Response(presentation.preview_body(preview, canonical))

    @staticmethod
    def workspace_timezone(workspace_id: str) -> str:
        from events_platform.workspaces.models import Workspace

        return Workspace.objects.filter(pk=workspace_id).values_list("timezone", flat=True).first() or "UTC"


class RfmDistributionView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfm.distribution",
        summary="Groups (size, % customers, % revenue, medians) and R x F cells of a model's current scores",
        parameters=[s.RfmModelQuerySerializer],
        responses={200: dict, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmModelQuerySerializer, request.query_params)
        model = _model(workspace_id, data["model"])
        return Response(
            {"model": model.slug, **presentation.distribution_body(selectors.rfm_distribution(model=model))}
        )


def _instant(value: dt.datetime | dt.date, model: RfmModel) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return selectors.end_of_day(value, model.timezone)


class RfmTransitionsView(WorkspaceAPIView):
    @extend_schema(
        operation_id="rfm.transitions",
        summary="Contacts counted by (group as of from, group as of to), from the change log",
        description="from and to are instants, or dates meaning the end of that day in the model's timezone. "
        "from before the model's first run is a 400.",
        parameters=[s.RfmTransitionsQuerySerializer],
        responses={200: s.RfmTransitionsOutputSerializer, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmTransitionsQuerySerializer, request.query_params)
        model = _model(workspace_id, data["model"])
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
    @extend_schema(
        operation_id="rfm.contacts",
        summary="Contacts of a group or an R x F cell with their scores: cursor pages, or output=csv for all",
        parameters=[s.RfmContactsQuerySerializer],
        responses={200: s.RfmContactsOutputSerializer, (200, "text/csv"): OpenApiTypes.STR, 404: dict, **ERRORS},
        tags=TAGS,
    )
    def get(self, request: ApiRequest) -> Response | StreamingHttpResponse:
        workspace_id = self.get_workspace_id(request)
        data = self.validated(s.RfmContactsQuerySerializer, request.query_params)
        model = _model(workspace_id, data["model"])
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
