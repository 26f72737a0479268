"""The request boundary: what is refused before any view runs, and how errors answer.

- A body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``Content-Length``) is a 413 naming the limit,
  answered before the body is read; a malformed ``Content-Length`` is a 400.
- A ``Transfer-Encoding: chunked`` body is accepted: :class:`ChunkedBodyWSGI` (around the WSGI
  application gunicorn serves) reads it, at most one byte past the limit, and hands Django a
  body with its length. A chunked body that reaches Django undecoded (a server that passes it
  on as it is) is a 411 asking for ``Content-Length``, never read as an empty body.
- On pages, the NUL character in a query string or a posted form's field (a name or a value)
  is a 400 naming the parameter: no text column can hold it, no field takes it. (The API's
  serializers refuse it field by field, after authentication.)
- Under ``/api/`` every answer is JSON in the API's error format, even those Django makes
  itself: :func:`api_aware_handler` wraps the 400, 403, 404 and 500 handlers (``urls.py``). A
  statement stopped by a time limit stays the 503 of ``time_limits``.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.template.loader import render_to_string
from django.views import defaults

from . import time_limits

API_PREFIX = "/api/"
# Set by ChunkedBodyWSGI when a chunked body was read only up to one byte past the limit.
OVER_LIMIT = "events_platform.body_over_limit"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def error_response(
    request: HttpRequest, status: int, message: str, details: dict[str, list[str]] | None = None
) -> HttpResponse:
    """``{"error", "details"}`` under /api/, a short page elsewhere (a fragment to htmx)."""
    if is_api(request):
        return JsonResponse({"error": message, "details": details or {}}, status=status)
    # No context processors: the answer reads nothing from the database.
    template = "400.html#message" if request.headers.get("HX-Request") else "400.html"
    return HttpResponse(render_to_string(template, {"status": status, "message": message}), status=status)


def _limit_text(limit: int) -> str:
    return f"{limit / (1024 * 1024):g} MiB" if limit >= 1024 * 1024 else f"{limit} bytes"


def _nul_parameter(params: QueryDict) -> str | None:
    """The name of the first parameter whose name or a value holds NUL (printable), else None."""
    key: str
    for key, values in params.lists():
        if "\x00" in key or any("\x00" in value for value in values):
            return key.replace("\x00", "\\u0000")
    return None


class RequestBoundaryMiddleware:
    """First in MIDDLEWARE: size, framing and NUL checks before anything reads the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        refused = self.refusal(request)
        return refused if refused is not None else self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        raw_length = request.META.get("CONTENT_LENGTH") or ""
        if raw_length:
            try:
                length = int(raw_length)
                if length < 0:
                    raise ValueError
            except ValueError:
                return error_response(request, 400, "Content-Length must be a whole number of bytes.")
            if limit is not None and length > limit:
                size = f"over {limit} bytes" if request.META.get(OVER_LIMIT) else f"{length} bytes"
                return error_response(
                    request,
                    413,
                    f"The request body is {size}; at most {_limit_text(limit)} ({limit} bytes) is accepted "
                    "(DATA_UPLOAD_MAX_MEMORY_SIZE). Send fewer items at once.",
                    {"body": [f"At most {limit} bytes."]},
                )
        elif "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
            return error_response(
                request,
                411,
                "This server could not read a chunked request body: send the body with a Content-Length header.",
            )
        if is_api(request):
            # The API's own checks name such fields in its format, after authentication.
            return None
        name = _nul_parameter(request.GET)
        if name is None and request.method == "POST":
            name = _nul_parameter(request.POST)
        if name is not None:
            return error_response(
                request,
                400,
                f"Invalid request: {name}: Null characters are not allowed.",
                {name: ["Null characters are not allowed."]},
            )
        return None


class ChunkedBodyWSGI:
    """WSGI middleware: a ``Transfer-Encoding: chunked`` request body becomes a plain one.

    gunicorn decodes the chunks but passes no ``CONTENT_LENGTH``, and Django reads a body without
    one as empty. This reads the decoded body (at most one byte more than the limit, so an
    oversized one is still refused as 413 without being read whole) and gives it its length.
    """

    def __init__(self, application: Callable[..., Iterable[bytes]]) -> None:
        self.application = application

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower() and not environ.get("CONTENT_LENGTH"):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            body = environ["wsgi.input"].read() if limit is None else environ["wsgi.input"].read(limit + 1)
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
            if limit is not None and len(body) > limit:
                environ[OVER_LIMIT] = True  # only the start was read
            del environ["HTTP_TRANSFER_ENCODING"]
        return self.application(environ, start_response)


def _json_under_api(
    status: int, message: Callable[[HttpRequest], str], page: Callable[..., HttpResponse]
) -> Callable[..., HttpResponse]:
    def handler(request: HttpRequest, exception: BaseException | None = None) -> HttpResponse:
        if is_api(request):
            return JsonResponse({"error": message(request), "details": {}}, status=status)
        return page(request, exception)

    handler.__doc__ = f"{status}: JSON in the API's error format under /api/, else Django's page."
    return handler


bad_request = _json_under_api(400, lambda request: "Bad request: the request could not be read.", defaults.bad_request)
permission_denied = _json_under_api(
    403, lambda request: "Forbidden: these credentials may not do this.", defaults.permission_denied
)
page_not_found = _json_under_api(
    404, lambda request: f"No API endpoint at {request.path}. See /api/docs/.", defaults.page_not_found
)


def server_error(request: HttpRequest) -> HttpResponse:
    """500: JSON under /api/, Django's page elsewhere. A statement a time limit stopped outside a
    view (in a middleware) is that limit's 503, as it is from a view."""
    exc = sys.exc_info()[1]
    if exc is not None and time_limits.is_time_limit(exc):
        return time_limits.time_limit_response(request)
    if not is_api(request):
        return defaults.server_error(request)
    return JsonResponse(
        {"error": "Internal server error: it has been logged. Please retry; if it persists, report it.", "details": {}},
        status=500,
    )
