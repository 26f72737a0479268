"""Login throttling (django-axes): who a failed sign-in counts against, and what a locked-out
person sees.

After ``LOGIN_FAILURE_LIMIT`` failed sign-ins for one username, or from one client address, that
username or address is locked for ``LOGIN_LOCKOUT_MINUTES``, on the login page and on admin's
alike, and the right password does not get in meanwhile. The failures live in the database
(axes' handler), so every web process sees the same count.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def client_ip(request: HttpRequest) -> str:
    """The address the request came from, as ``TRUSTED_PROXY_COUNT`` proxies in front say.

    Each trusted proxy appends the address it was connected from to ``X-Forwarded-For``, so the
    client is the N-th entry from the right; anything left of it is what the client claimed and
    is not trusted. Without trusted proxies it is the connection's own address.
    """
    count = settings.TRUSTED_PROXY_COUNT
    if count:
        hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
        if len(hops) >= count:
            return str(hops[-count])
    return str(request.META.get("REMOTE_ADDR", ""))


def lockout_response(request: HttpRequest, original_response: Any = None, credentials: Any = None) -> HttpResponse:
    """429 with the login page's look, saying how long the lock lasts and how to get unlocked."""
    context = {"failure_limit": settings.LOGIN_FAILURE_LIMIT, "minutes": settings.LOGIN_LOCKOUT_MINUTES}
    return render(request, "registration/locked_out.html", context, status=429)
