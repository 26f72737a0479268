"""Workspace scoping for pages: which workspace a signed-in user is looking at.

The choice lives in the session (server-side, so every web process agrees); it is checked
against membership on every request, and a user never sees a workspace they do not belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .models import Workspace

SESSION_KEY = "workspace_id"


def user_workspaces(user: Any) -> list[Workspace]:
    return list(Workspace.objects.filter(memberships__user=user).order_by("name"))


def current_workspace(request: HttpRequest) -> Workspace | None:
    """The session's workspace if the user is a member of it, else their first workspace."""
    if hasattr(request, "_workspace_cache"):
        return request._workspace_cache  # type: ignore[attr-defined]
    workspaces = user_workspaces(request.user)
    wanted = request.session.get(SESSION_KEY)
    chosen = next((w for w in workspaces if w.id == wanted), workspaces[0] if workspaces else None)
    request._workspace_cache = chosen  # type: ignore[attr-defined]
    request._workspaces_cache = workspaces  # type: ignore[attr-defined]
    return chosen


def workspace_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required, and ``request.workspace`` set; a user without any workspace gets a clear page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        workspace = current_workspace(request)
        if workspace is None:
            return render(request, "workspaces/no_workspace.html", status=403)
        request.workspace = workspace  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper
