"""The OpenAPI schema and the interactive docs, served without any CDN."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import Client

from events_platform.workspaces.api import WorkspaceAPIView

ENDPOINTS = {
    "/api/customEvents.upsert": "post",
    "/api/customEvents.import": "post",
    "/api/customEvents.get": "get",
    "/api/customEvents.list": "get",
    "/api/contacts.upsert": "post",
    "/api/contacts.get": "get",
    "/api/contacts.list": "get",
    "/api/contacts.delete": "post",
    "/api/timeline.list": "get",
}


def test_schema_is_an_openapi_3_document_listing_the_endpoints(db: None) -> None:
    """/api/schema/ serves OpenAPI 3 with every endpoint and the bearer scheme, without credentials."""
    # given
    client = Client()
    # when
    response = client.get("/api/schema/", {"format": "json"})
    # then
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path, method in ENDPOINTS.items():
        assert method in schema["paths"].get(path, {}), path
    schemes = schema["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())


def test_schema_operation_ids_follow_the_notifuse_names(db: None) -> None:
    """Each operation is named as its path (customEvents.upsert, ...)."""
    # when
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    # then
    for path, method in ENDPOINTS.items():
        assert schema["paths"][path][method]["operationId"] == path.removeprefix("/api/")


def test_every_operation_is_described_by_its_own_words(db: None) -> None:
    """Each operation has a summary, and no description is a base class's docstring (an endpoint
    without a description of its own has none, not ``WorkspaceAPIView``'s)."""
    # given
    inherited = " ".join((WorkspaceAPIView.__doc__ or "").split()[:8])
    # when
    schema = Client().get("/api/schema/", {"format": "json"}).json()
    # then
    operations = [op for path in schema["paths"].values() for op in path.values()]
    assert len(operations) > 40
    for operation in operations:
        assert operation.get("summary"), operation["operationId"]
        assert inherited not in " ".join(operation.get("description", "").split()), operation["operationId"]


def test_schema_is_served_as_yaml_by_default(db: None) -> None:
    """Without a format the schema comes as YAML (what drf-spectacular clients fetch)."""
    # when
    response = Client().get("/api/schema/")
    # then
    assert response.status_code == 200
    assert b"openapi: 3." in response.content


def test_docs_page_uses_only_local_assets(db: None) -> None:
    """/api/docs/ is HTML whose scripts and stylesheets are served locally, not from a CDN."""
    # when
    response = Client().get("/api/docs/")
    # then
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    tags = re.findall(r"<(?:script|link|img)\b[^>]*>", html, flags=re.IGNORECASE)
    urls = [m for tag in tags for m in re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)""", tag)]
    assert any("swagger-ui" in url for url in urls), urls
    assert all(not re.match(r"^(https?:)?//", url) for url in urls), urls
    assert "cdn.jsdelivr" not in html and "unpkg.com" not in html and "cdnjs" not in html


def test_docs_assets_ship_with_the_app(db: None) -> None:
    """Every local asset the docs page names is a static file the app ships (collectstatic serves it
    offline), but for its start-up script, which the docs view serves itself (?script) so that the
    page needs no inline script under the Content-Security-Policy."""
    # given
    client = Client()
    html = client.get("/api/docs/").content.decode()
    urls = re.findall(r"""<script\b[^>]*\bsrc=["']([^"']+)""", html) + re.findall(
        r"""<link\b[^>]*\bhref=["']([^"']+)""", html
    )
    init_script = "/api/docs/?script="
    # when
    static = [url for url in urls if url != init_script]
    missing = [url for url in static if finders.find(url.removeprefix(settings.STATIC_URL).split("?")[0]) is None]
    # then
    assert init_script in urls
    assert client.get(init_script)["Content-Type"].startswith("application/javascript")
    assert static
    assert all(url.startswith(settings.STATIC_URL) for url in static), urls
    assert missing == []


def test_unknown_api_path_is_a_json_404(db: None) -> None:
    """A mistyped endpoint answers JSON in the error format, pointing at the docs."""
    # when
    response = Client().post("/api/customEvents.upsrt", {}, content_type="application/json")
    # then
    assert response.status_code == 404
    assert "/api/docs/" in response.json()["error"]
