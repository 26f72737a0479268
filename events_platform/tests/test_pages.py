"""What every page shares: links that keep the filters, streamed CSV, and the icon whitenoise serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.test import Client, RequestFactory
from django.urls import reverse
from pytest_django import Settings

from events_platform.pages import csv_response, page_or_first, query_with
from events_platform.pagination import InvalidCursor

ICON_LINK = re.compile(r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">')


def test_query_with_replaces_drops_and_keeps_parameters() -> None:
    """A link changes only the parameters it names; None and empty values drop out."""
    # given
    request = RequestFactory().get("/contacts/", {"q": "ann", "sort": "-ltv", "after": "abc", "segment": ""})
    # when / then
    assert query_with(request, after="xyz") == "?q=ann&sort=-ltv&after=xyz"
    assert query_with(request, after=None, before="p1") == "?q=ann&sort=-ltv&before=p1"
    assert query_with(RequestFactory().get("/"), after=None) == "?"


def test_csv_response_streams_the_header_then_each_row_lazily() -> None:
    """Rows are read as the response is consumed, not before; cells are quoted as CSV needs."""
    # given
    read: list[int] = []

    def rows() -> Any:
        for n in range(3):
            read.append(n)
            yield (f"user{n}@x.io", "a, b" if n == 1 else "")

    # when
    response = csv_response(filename="members.csv", header=("email", "note"), rows=rows())
    # then
    assert read == [] and response["Content-Disposition"] == 'attachment; filename="members.csv"'
    body = response.getvalue().decode()
    assert body.splitlines() == ["email,note", "user0@x.io,", 'user1@x.io,"a, b"', "user2@x.io,"]


def test_a_csv_download_s_filename_holds_only_safe_characters() -> None:
    """A name built from request values (rfm.contacts' group, which the fuzz sent as "\u00ae\u0006")
    cannot put a control character or a quote into Content-Disposition: gunicorn refused that
    header with its own HTML 500."""
    # when
    response = csv_response(filename='rfm-default-\u00ae\u0006"x\r\n.csv', header=("email",), rows=[])
    # then
    assert response["Content-Disposition"] == 'attachment; filename="rfm-default-_x_.csv"'


@pytest.fixture
def collected_static(settings: Settings, tmp_path: Path) -> Path:
    """Static files collected as in production: hashed names in a manifest, served by whitenoise."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", interactive=False, verbosity=0)
    return tmp_path


def _served(client: Client, url: str) -> Any:
    response = client.get(url)
    assert response.status_code == 200, url
    assert response["Content-Type"] == "image/svg+xml"
    assert b"<svg" in response.getvalue()
    return response


@pytest.mark.django_db
def test_every_page_links_the_icon_and_whitenoise_serves_it(
    client: Client, admin_client: Client, collected_static: Path
) -> None:
    """The layout, the error pages and the admin link the icon; whitenoise serves it (cached for
    good under its hashed name), and /favicon.ico leads there instead of a 404."""
    # when
    page = client.get("/accounts/login/").content.decode()
    not_found = client.get("/no-such-page/")
    admin = admin_client.get(reverse("admin:index")).content.decode()
    ico = client.get("/favicon.ico")
    # then
    (href,) = ICON_LINK.findall(page)
    assert re.fullmatch(r"/static/favicon\.[0-9a-f]{12}\.svg", href)
    assert ICON_LINK.findall(admin) == [href]
    assert not_found.status_code == 404
    (error_href,) = ICON_LINK.findall(not_found.content.decode())
    assert ico.status_code == 302 and ico["Location"] == href
    assert "immutable" in _served(client, href)["Cache-Control"]
    _served(client, error_href)


def test_table_tag_frames_the_rows_with_their_column_headers() -> None:
    """``{% table %}`` writes the wrapper, the header cells with their classes (a column label for
    screen readers only) and the rows it wraps, escaped like any template output."""
    # given
    source = (
        '{% load pages %}{% table "keys-table" "Name" "Created|hide-narrow" "Actions|sr-label" %}'
        "<tr><td>{{ v }}</td></tr>{% endtable %}"
    )
    # when
    html = Template(source).render(Context({"v": "<b>"}))
    # then
    assert html == (
        '<div class="table-wrap"><table class="keys-table table-stack"><thead><tr>'
        '<th scope="col">Name</th><th scope="col" class="hide-narrow">Created</th>'
        '<th scope="col" class="sr-label"><span class="visually-hidden">Actions</span></th>'
        "</tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table></div>"
    )


def test_page_or_first_restarts_at_the_first_page_on_a_cursor_not_ours() -> None:
    """A page fetched at a good cursor is that page; a stale or forged one gives the first page
    instead of an error; empty cursors are not passed on."""
    # given
    calls: list[dict[str, Any]] = []

    def fetch(**cursors: str) -> str:
        calls.append(cursors)
        if cursors.get("after") == "forged":
            raise InvalidCursor()
        return f"page after {cursors.get('after', 'start')}"

    # when / then
    assert page_or_first(fetch, after="abc", before=None) == "page after abc"
    assert page_or_first(fetch, after="forged") == "page after start"
    assert page_or_first(fetch, after="") == "page after start"
    assert calls == [{"after": "abc"}, {"after": "forged"}, {}, {}]
