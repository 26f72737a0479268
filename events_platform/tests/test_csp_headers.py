"""The Content-Security-Policy each kind of answer carries (the browser test proves pages pass it)."""

from __future__ import annotations

import pytest
from django.test import Client

STRICT = {
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
}


def directives(header: str) -> set[str]:
    return {part.strip() for part in header.split(";") if part.strip()}


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/", "/api/schema/"])
def test_pages_admin_and_the_api_carry_the_strict_policy(client: Client, path: str) -> None:
    """Pages, admin and API answers allow scripts, styles and images from this site only, and
    nothing inline."""
    # when
    response = client.get(path)
    # then
    assert directives(response["Content-Security-Policy"]) == STRICT
    assert "unsafe" not in response["Content-Security-Policy"]


@pytest.mark.django_db
def test_the_swagger_ui_alone_also_allows_data_images(client: Client) -> None:
    """/api/docs/ adds data: images (Swagger UI's icons) and nothing else; its init script is a
    file of its own (?script), not inline."""
    # when
    page = client.get("/api/docs/")
    script = client.get("/api/docs/?script=")
    # then
    expected = (STRICT - {"img-src 'self'"}) | {"img-src 'self' data:"}
    assert directives(page["Content-Security-Policy"]) == expected
    html = page.content.decode()
    assert "<style" not in html and "<script>" not in html
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
