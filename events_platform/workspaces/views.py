"""Pages of the workspaces layer: switching workspace, API keys."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseForbidden
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from .forms import ApiKeyForm
from .models import ApiKey, WorkspaceMembership
from .services import IssuedKey, api_key_create, api_key_revoke
from .web import SESSION_KEY, AuthenticatedRequest, WorkspaceRequest, workspace_required


@login_required
@require_POST
def workspace_switch(request: AuthenticatedRequest) -> HttpResponse:
    workspace_id = request.POST.get("workspace_id", "")
    if not WorkspaceMembership.objects.filter(user=request.user, workspace_id=workspace_id).exists():
        return HttpResponseForbidden("You are not a member of that workspace.")
    request.session[SESSION_KEY] = workspace_id
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)


# ---------------------------------------------------------------------------------------
# API keys of the current workspace
# ---------------------------------------------------------------------------------------


def _api_keys_page(
    request: WorkspaceRequest, form: ApiKeyForm, issued: IssuedKey | None = None, status: int = 200
) -> HttpResponse:
    keys = ApiKey.objects.filter(workspace=request.workspace).select_related("created_by")
    return render(
        request, "workspaces/api_keys.html", {"form": form, "keys": list(keys), "issued": issued}, status=status
    )


@never_cache  # Cache-Control: no-store: a new key's secret must not stay in any cache or history
@workspace_required
def api_keys(request: WorkspaceRequest) -> HttpResponse:
    """List the workspace's keys; a POST issues one and shows its secret in this response only."""
    if request.method != "POST":
        return _api_keys_page(request, ApiKeyForm())
    form = ApiKeyForm(request.POST)
    if form.is_valid():
        try:
            issued = api_key_create(
                workspace=request.workspace,
                name=form.cleaned_data["name"].strip(),
                created_by=request.user,
            )
        except ValidationError as error:
            form.add_error("name", error.message_dict.get("name", error.messages))
        else:
            # Never stored in the session or messages: the page that shows it is its only copy.
            return _api_keys_page(request, ApiKeyForm(), issued=issued, status=201)
    return _api_keys_page(request, form, status=400)


@workspace_required
def api_key_revoke_view(request: WorkspaceRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation (no JavaScript needed); POST revokes."""
    api_key = get_object_or_404(ApiKey, pk=pk, workspace=request.workspace)
    if request.method == "POST":
        api_key_revoke(api_key=api_key)
        messages.success(request, f"Key “{api_key.name}” ({api_key.prefix}…) is revoked; requests with it now fail.")
        return redirect("api-keys")
    return render(request, "workspaces/api_key_revoke.html", {"api_key": api_key})
