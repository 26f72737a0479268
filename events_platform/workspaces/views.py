"""Pages of the workspaces layer: switching workspace."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from .models import WorkspaceMembership
from .web import SESSION_KEY


@login_required
@require_POST
def workspace_switch(request: HttpRequest) -> HttpResponse:
    workspace_id = request.POST.get("workspace_id", "")
    if not WorkspaceMembership.objects.filter(user=request.user, workspace_id=workspace_id).exists():
        return HttpResponseForbidden("You are not a member of that workspace.")
    request.session[SESSION_KEY] = workspace_id
    target = request.POST.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    return redirect(target)
