from typing import Any

from django.http import HttpRequest

from .web import current_workspace


def workspace(request: HttpRequest) -> dict[str, Any]:
    """The current workspace and the user's workspaces, for the layout's switcher."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    current = current_workspace(request)
    return {"current_workspace": current, "user_workspaces": getattr(request, "_workspaces_cache", [])}
