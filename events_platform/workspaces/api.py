"""Workspace scoping shared by every API view.

Order of checks: authentication (401), ``workspace_id`` present (400), then access (403).
A key used with another workspace gets the same 403 whether that workspace exists or not,
so keys cannot enumerate workspaces; nothing is read or written before this check.
"""

from collections.abc import Callable, Iterable
from typing import Any, Generic, NoReturn, Protocol, TypeVar

from django.contrib.auth.models import User
from django.db import models
from django.http import QueryDict
from django.urls import URLPattern, path
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from . import ratelimit
from .authentication import ApiKeyUser
from .models import ApiKey, WorkspaceMembership

# What any workspace endpoint may answer besides its own: bad input, no credentials, no access.
ERRORS: dict[int, Any] = {400: dict, 401: dict, 403: dict}
_Handler = TypeVar("_Handler", bound=Callable[..., Any])
_Row = TypeVar("_Row", bound=models.Model)
# Each API handler's operation id (api_operation writes it, api_paths reads it).
_OPERATION_IDS: dict[Callable[..., Any], str] = {}


class ApiRequest(Protocol):
    """What the API views read from DRF's ``Request`` once authentication has passed
    (``IsAuthenticated`` is the default permission): the principal is an API key's
    (``ApiKeyAuthentication``) or a signed-in user's (the session). DRF's stubs type
    ``Request.user`` as a Django user only, so this names the principals the API really has."""

    @property
    def user(self) -> ApiKeyUser | User: ...
    @property
    def method(self) -> str: ...
    @property
    def data(self) -> Any: ...
    @property
    def query_params(self) -> QueryDict: ...


class Envelope(Generic[_Row]):
    """How endpoints answer with one row, ``{key: serializer(row).data}``, or with a list of them,
    ``{plural: [...]}``."""

    def __init__(self, key: str, plural: str, serializer: type[serializers.Serializer]) -> None:
        self.key, self.plural, self.serializer = key, plural, serializer

    def body(self, row: _Row) -> dict[str, Any]:
        return {self.key: self.serializer(row).data}

    def listing(self, rows: Iterable[_Row]) -> Response:
        return Response({self.plural: self.serializer(rows, many=True).data})

    def answer(self, row: _Row, code: int = 200) -> Response:
        return Response(self.body(row), status=code)

    def written(self, row: _Row, code: int = 200) -> Response:
        """The answer to a write: the row as stored now (the service's SQL may have moved it on)."""
        row.refresh_from_db()
        return self.answer(row, code)


def workspace_access_check(*, user: ApiKeyUser | User, workspace_id: str) -> None:
    if isinstance(user, ApiKeyUser):
        allowed = user.workspace_id == workspace_id
    else:
        allowed = WorkspaceMembership.objects.filter(user=user, workspace_id=workspace_id).exists()
    if not allowed:
        raise exceptions.PermissionDenied(f"Your credentials do not grant access to workspace '{workspace_id}'.")


class ApiKeyRateThrottle(BaseThrottle):
    """API_RATE_LIMIT per API key (events_platform/workspaces/ratelimit.py); signed-in people
    using the API from their session are not counted."""

    usage: ratelimit.Usage | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self.usage = ratelimit.api_key_hit(api_key=request.auth)
        request.rate_limit_usage = self.usage  # type: ignore[attr-defined]  # for the response's fields
        return self.usage is None or self.usage.allowed

    def wait(self) -> float | None:
        return self.usage.reset_seconds if self.usage else None


class WorkspaceAPIView(APIView):
    """An API view whose requests name their workspace: in the JSON body of POSTs, else the query.

    Requests with an API key are rate limited, and every answer to them says where the key
    stands (``RateLimit-*`` fields); a refused one is a 429 with ``Retry-After``.
    """

    throttle_classes = [ApiKeyRateThrottle]

    def throttled(self, request: Request, wait: float | None) -> NoReturn:
        usage: ratelimit.Usage | None = getattr(request, "rate_limit_usage", None)
        limit = f"at most {usage.rate} per API key" if usage else "too many requests"
        raise exceptions.Throttled(wait=wait, detail=f"Rate limit exceeded: {limit} (API_RATE_LIMIT).")

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)
        usage: ratelimit.Usage | None = getattr(request, "rate_limit_usage", None)
        if usage is not None:
            for name, value in usage.headers().items():
                response[name] = value
        return response

    def get_workspace_id(self, request: ApiRequest) -> str:
        source = request.data if request.method == "POST" else request.query_params
        if not hasattr(source, "get"):
            raise exceptions.ValidationError({"non_field_errors": ["The request body must be a JSON object."]})
        workspace_id = source.get("workspace_id")
        if workspace_id in (None, ""):
            raise exceptions.ValidationError({"workspace_id": ["This field is required."]})
        if not isinstance(workspace_id, str):
            raise exceptions.ValidationError({"workspace_id": ["Must be a string."]})
        if not workspace_id.isprintable():  # NUL and other control characters reach no query
            raise exceptions.ValidationError({"workspace_id": ["Must not contain control characters (such as NUL)."]})
        workspace_access_check(user=request.user, workspace_id=workspace_id)
        return workspace_id

    def parse(self, request: ApiRequest, serializer_class: type[serializers.Serializer]) -> tuple[str, dict[str, Any]]:
        """The workspace (checked first, as ``get_workspace_id``) and the parameters ``serializer_class``
        validates, read where the workspace is: the body of a POST, else the query."""
        workspace_id = self.get_workspace_id(request)
        source = request.data if request.method == "POST" else request.query_params
        return workspace_id, self.validated(serializer_class, source)

    def parse_row(
        self,
        request: ApiRequest,
        serializer_class: type[serializers.Serializer],
        lookup: Callable[[str, str], _Row],
        key: str = "id",
    ) -> tuple[_Row, dict[str, Any]]:
        """``parse``, then the row the parameters name (``data[key]``), as ``lookup(workspace_id, name)``
        finds it in the workspace (or answers the 404)."""
        workspace_id, data = self.parse(request, serializer_class)
        return lookup(workspace_id, data[key]), data

    def validated(self, serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
        """``data`` as ``serializer_class`` validates it; an invalid request is the standard 400.

        A query parameter sent empty (``?group=``) is a value, as the schema says (``minLength: 1``
        where a field takes no blank): DRF would read it as left out, so the request would mean
        something else than it says. Only fields that take a blank (``allow_blank``) accept one.
        """
        serializer = serializer_class(data=data, **kwargs)
        if isinstance(data, QueryDict):
            blank = [name for name, value in data.items() if value == "" and _refuses_blank(serializer, name)]
            if blank:
                raise serializers.ValidationError({name: [BLANK_QUERY_VALUE] for name in blank})
        serializer.is_valid(raise_exception=True)
        validated: dict[str, Any] = serializer.validated_data
        return validated


BLANK_QUERY_VALUE = "May not be empty: leave the parameter out."


def _refuses_blank(serializer: serializers.Serializer, name: str) -> bool:
    field = serializer.fields.get(name)
    return field is not None and not getattr(field, "allow_blank", False)


def api_operation(
    operation_id: str,
    params: Any = None,
    *,
    tag: str,
    ok: Any,
    missing: bool = False,
    conflict: bool = False,
    errors: dict[int, Any] = ERRORS,
    summary: str | None = None,
    description: str | None = None,
) -> Callable[[_Handler], _Handler]:
    """The OpenAPI description of one endpoint (``extend_schema``), with the answers every workspace
    endpoint shares; ``api_paths`` serves the endpoint at ``operation_id``.

    ``params``: what the handler reads, the body's serializer for a POST, the query's (one, or a
    list of parameters) for a GET. ``ok``: the serializer of a 200, or the success answers by
    status. ``missing``: it answers 404 for what it names; ``conflict``: a write that lost a race
    is a 409 (retry it). The handler's docstring gives the summary (its first paragraph) and the
    description (the rest: ``schema.DocstringAutoSchema``) unless ``summary`` / ``description`` say them.
    """
    responses = {**(ok if isinstance(ok, dict) else {200: ok}), **({404: dict} if missing else {}), **errors}
    if conflict:
        responses[409] = dict
    said = {"summary": summary, "description": description}

    def decorate(handler: _Handler) -> _Handler:
        _OPERATION_IDS[handler] = operation_id
        schema: dict[str, Any] = {key: value for key, value in said.items() if value is not None}
        if params is not None and handler.__name__ == "post":
            schema["request"] = params
        elif params is not None:
            schema["parameters"] = params if isinstance(params, list) else [params]
        return extend_schema(operation_id=operation_id, responses=responses, tags=[tag], **schema)(handler)

    return decorate


def api_paths(names: dict[type[APIView], str]) -> list[URLPattern]:
    """One URL a view, by URL name: its path is the operation id of its handler (``api_operation``),
    as ``/api/segments.get``; the operation id is written once."""
    patterns = []
    for view, name in names.items():
        operation_id = next(_OPERATION_IDS[vars(view)[method]] for method in ("post", "get") if method in vars(view))
        patterns.append(path(operation_id, view.as_view(), name=name))
    return patterns
