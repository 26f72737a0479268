"""Workspace scoping for pages: which workspace a signed-in user is looking at.

The choice lives in the session (server-side, so every web process agrees); it is checked
against membership on every request, and a user never sees a workspace they do not belong to.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Concatenate, ParamSpec, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import HttpRequest, HttpResponseBase
from django.shortcuts import render
from django_htmx.middleware import HtmxDetails

from .models import Workspace

SESSION_KEY = "workspace_id"

P = ParamSpec("P")


class HtmxRequest(HttpRequest):
    """Any page request: django-htmx's middleware sets ``htmx`` on every request."""

    htmx: HtmxDetails


class AuthenticatedRequest(HtmxRequest):
    """A page request behind ``login_required``: the user is signed in."""

    user: User


class WorkspaceRequest(AuthenticatedRequest):
    """A page request behind ``workspace_required``: signed in and scoped to a workspace."""

    workspace: Workspace


class _CachingRequest(HttpRequest):
    """What ``current_workspace`` remembers on a request, so the layout and the view share one query."""

    _workspace_cache: Workspace | None
    _workspaces_cache: list[Workspace]


def user_workspaces(user: AbstractBaseUser | AnonymousUser) -> list[Workspace]:
    return list(Workspace.objects.filter(memberships__user=user.pk).order_by("name"))


def current_workspace(request: HttpRequest) -> Workspace | None:
    """The session's workspace if the user is a member of it, else their first workspace."""
    caching = cast(_CachingRequest, request)
    if hasattr(caching, "_workspace_cache"):
        return caching._workspace_cache
    workspaces = user_workspaces(request.user)
    wanted = request.session.get(SESSION_KEY)
    chosen = next((w for w in workspaces if w.id == wanted), workspaces[0] if workspaces else None)
    caching._workspace_cache = chosen
    caching._workspaces_cache = workspaces
    return chosen


def cached_user_workspaces(request: HttpRequest) -> list[Workspace]:
    """The signed-in user's workspaces, read by the same query as ``current_workspace``."""
    current_workspace(request)
    return cast(_CachingRequest, request)._workspaces_cache


def workspace_required(
    view: Callable[Concatenate[WorkspaceRequest, P], HttpResponseBase],
) -> Callable[Concatenate[HttpRequest, P], HttpResponseBase]:
    """Login required, and ``request.workspace`` set; a user without any workspace gets a clear page."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: P.args, **kwargs: P.kwargs) -> HttpResponseBase:
        workspace = current_workspace(request)
        if workspace is None:
            return render(request, "workspaces/no_workspace.html", status=403)
        # This is the one place a request becomes a WorkspaceRequest.
        scoped = cast(WorkspaceRequest, request)
        scoped.workspace = workspace
        return view(scoped, *args, **kwargs)

    return wrapper
