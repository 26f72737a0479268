"""Workspace scoping shared by every API view.

Order of checks: authentication (401), ``workspace_id`` present (400), then access (403).
A key used with another workspace gets the same 403 whether that workspace exists or not,
so keys cannot enumerate workspaces; nothing is read or written before this check.
"""

from typing import Any, NoReturn, Protocol

from django.contrib.auth.models import User
from django.http import QueryDict
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from . import ratelimit
from .authentication import ApiKeyUser
from .models import ApiKey, WorkspaceMembership


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

    def validated(self, serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
        """``data`` as ``serializer_class`` validates it; an invalid request is the standard 400."""
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        validated: dict[str, Any] = serializer.validated_data
        return validated
