"""What every server-rendered page shares: links that keep the current filters, pages that survive a
stale cursor, streamed CSV, the icon, the 404 of a lookup that found nothing.

Used by the page views of every app (and by the API's CSV export); it knows nothing of contacts
or segments.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponseRedirect, StreamingHttpResponse
from django.templatetags.static import static

from events_platform.pagination import InvalidCursor

P = TypeVar("P")
Found = TypeVar("Found")


def found(value: Found | None, message: str) -> Found:
    """``value``, or the 404 (a page, or the API's JSON answer) saying ``message`` when a lookup found nothing."""
    if value is None:
        raise Http404(message)
    return value


def query_with(request: HttpRequest, **changes: str | None) -> str:
    """The current query string with some parameters replaced (None drops one): ``?q=ann&after=...``."""
    params = {key: value for key, value in request.GET.items() if value}
    for key, value in changes.items():
        params.pop(key, None)
        if value:
            params[key] = value
    return "?" + urlencode(params) if params else "?"


def page_or_first(fetch: Callable[..., P], **cursors: str | None) -> P:
    """``fetch`` at the cursors a link carries, or the first page when one is stale or not ours: a
    page answers any link (the API, by contrast, answers a bad cursor with a 400)."""
    given = {name: value for name, value in cursors.items() if value}
    try:
        return fetch(**given)
    except InvalidCursor:
        return fetch()


class _Echo:
    """A file-like object whose write returns the line, for csv.writer in a streaming response."""

    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> StreamingHttpResponse:
    """A CSV download streamed row by row: ``rows`` is consumed lazily, so memory stays constant."""
    writer = csv.writer(_Echo())

    def lines() -> Iterable[str]:
        yield writer.writerow(header)
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{safe_filename(filename)}"'
    return response


def safe_filename(filename: str) -> str:
    """``filename`` with every run of characters other than ASCII letters, digits, ``.``, ``_``
    and ``-`` as one ``_``: names built from request values (an RFM group) cannot put a quote or
    a control character into the header (gunicorn answered such a header with its own HTML 500)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", filename)


def favicon_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """``/favicon.ico`` -> the icon whitenoise serves. Pages link the icon themselves; this answers
    what a browser asks for on its own (a JSON response opened in a tab) instead of a 404."""
    return HttpResponseRedirect(static("favicon.svg"))
