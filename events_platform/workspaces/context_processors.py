from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from .models import Workspace
from .web import cached_user_workspaces, current_workspace


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace and the user's workspaces, for the layout's switcher.

    Lazy: pages that never show the switcher (the admin) pay no query for it.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    def workspaces() -> list[Workspace]:
        return cached_user_workspaces(request)

    return {
        "current_workspace": SimpleLazyObject(lambda: current_workspace(request)),
        "user_workspaces": SimpleLazyObject(workspaces),
    }
