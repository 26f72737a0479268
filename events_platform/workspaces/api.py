"""Workspace scoping shared by every API view.

Order of checks: authentication (401), ``workspace_id`` present (400), then access (403).
A key used with another workspace gets the same 403 whether that workspace exists or not,
so keys cannot enumerate workspaces; nothing is read or written before this check.
"""

from typing import Any, Protocol

from django.contrib.auth.models import User
from django.http import QueryDict
from rest_framework import exceptions, serializers
from rest_framework.views import APIView

from .authentication import ApiKeyUser
from .models import WorkspaceMembership


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


class WorkspaceAPIView(APIView):
    """An API view whose requests name their workspace: in the JSON body of POSTs, else the query."""

    def get_workspace_id(self, request: ApiRequest) -> str:
        source = request.data if request.method == "POST" else request.query_params
        if not hasattr(source, "get"):
            raise exceptions.ValidationError({"non_field_errors": ["The request body must be a JSON object."]})
        workspace_id = source.get("workspace_id")
        if workspace_id in (None, ""):
            raise exceptions.ValidationError({"workspace_id": ["This field is required."]})
        if not isinstance(workspace_id, str):
            raise exceptions.ValidationError({"workspace_id": ["Must be a string."]})
        workspace_access_check(user=request.user, workspace_id=workspace_id)
        return workspace_id

    def validated(self, serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
        """``data`` as ``serializer_class`` validates it; an invalid request is the standard 400."""
        serializer = serializer_class(data=data, **kwargs)
        serializer.is_valid(raise_exception=True)
        validated: dict[str, Any] = serializer.validated_data
        return validated
