"""Fixtures shared by every app's tests: a workspace, an API key for it, and a client using it."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rest_framework.test import APIClient

from events_platform.workspaces.models import ApiKey, Workspace
from events_platform.workspaces.services import api_key_create, workspace_create


@dataclass(frozen=True)
class IssuedApiKey:
    """An API key as a client holds it: the secret (shown once) and the workspace it opens."""

    secret: str
    workspace: Workspace
    api_key: ApiKey


@pytest.fixture
def workspace(db: None) -> Workspace:
    return workspace_create(workspace_id="acme", name="Acme")


@pytest.fixture
def api_key(workspace: Workspace) -> IssuedApiKey:
    issued = api_key_create(workspace=workspace, name="tests")
    return IssuedApiKey(secret=issued.secret, workspace=workspace, api_key=issued.api_key)


@pytest.fixture
def api_client(api_key: IssuedApiKey) -> APIClient:
    """A DRF client sending ``Authorization: Bearer <secret>`` of the ``api_key`` fixture."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key.secret}")
    return client


# =======================================================================================
# Browser tests (UI part A; reused by part B): a real Chromium driven by Playwright.
# Debian's chromium at /usr/bin/chromium, never a downloaded browser. Missing chromium or
# Playwright skips the tests, or fails them when REQUIRE_SERVICES=1 (CI).
# =======================================================================================

import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

CHROMIUM_PATH = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS_DIR = Path(__file__).resolve().parent / "artifacts" / "screenshots"
BROWSER_PASSWORD = "browser-test-password-1"


# htmx inserts a swapped fragment, then (a task later, at settle) attaches its triggers: a
# control acted on in between is changed with nobody listening (on a fast machine Playwright
# changed a just-inserted <select> 25 ms before htmx processed it, and no refresh was sent).
# No person acts that fast; the tests wait as a person would, for htmx to be idle.
HTMX_IDLE = "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"


def _after_htmx(page: Any) -> None:
    """``page.wait_for_selector`` also waits for htmx to finish its swap (see HTMX_IDLE)."""
    found = page.wait_for_selector

    def wait_for_selector(selector: str, **options: Any) -> Any:
        handle = found(selector, **options)
        if options.get("state") in (None, "visible", "attached"):
            page.wait_for_function(HTMX_IDLE)
        return handle

    page.wait_for_selector = wait_for_selector


def _browser_unavailable(reason: str) -> None:
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def browser_page(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A fresh Playwright page (1280x900) in headless Chromium; closed after the test."""
    if not os.path.exists(CHROMIUM_PATH):
        _browser_unavailable(f"{CHROMIUM_PATH} is missing (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _browser_unavailable("playwright is not installed (pip install -r requirements.txt)")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous, so Django's async-safety check would be a false alarm here.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM_PATH, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(10_000)
        _after_htmx(page)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def login(page: Any, live_server: Any, user: Any, password: str | None = None, *, then: str = "") -> None:
    """Log ``user`` in through the login form; without ``password`` a known one is set first.
    ``then``: a path to open once logged in."""
    if password is None:
        password = BROWSER_PASSWORD
        user.set_password(password)
        user.save(update_fields=["password"])
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.get_username())
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/accounts/login/" not in page.url, "login failed"
    if then:
        page.goto(live_server.url + then)


def workspace_with_marketer(django_user_model: Any, *, workspace_id: str, name: str) -> tuple[Workspace, Any]:
    """A workspace and a user called "marketer" who is a member of it (browser tests log them in)."""
    from events_platform.workspaces.services import workspace_member_add

    workspace = workspace_create(workspace_id=workspace_id, name=name)
    user = django_user_model.objects.create_user(username="marketer")
    workspace_member_add(workspace=workspace, user=user)
    return workspace, user


def save_screenshot(page: Any, name: str, *, full_page: bool = True) -> Path:
    """Keep a screenshot under artifacts/screenshots/ (git-ignored) for humans to look at."""
    SCREENSHOTS_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


# --- Signed-in workspace member (page tests) ------------------------------------------------


@pytest.fixture
def member(django_user_model: Any, workspace: Workspace) -> Any:
    """A user who belongs to the ``workspace`` fixture (not staff)."""
    from events_platform.workspaces.services import workspace_member_add

    user = django_user_model.objects.create_user(username="marketer", password="pw-marketer-1")
    workspace_member_add(workspace=workspace, user=user)
    return user


@pytest.fixture
def member_client(client: Any, member: Any) -> Any:
    """Django's test client logged in as ``member``."""
    client.force_login(member)
    return client


# =======================================================================================
# Admin pages: a query count that must not grow with the number of rows.
# =======================================================================================

from collections.abc import Callable  # noqa: E402

from django.db import connection  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402


def page_queries(client: Any, url: str) -> int:
    """The queries of one GET of ``url`` (a 200), after a first GET that warms per-process
    caches (content types), which are not per-row costs."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    return len(queries)


def queries_with_5_and_30_rows(
    client: Any, url: str, make_rows: Callable[[int], None], assert_max_queries: Callable, max_queries: int
) -> tuple[int, int]:
    """``url``'s query counts once ``make_rows`` has topped its table up to 5 rows, then to 30
    (the latter within ``assert_max_queries(max_queries)``, pytest-django's fixture)."""
    make_rows(5)
    with_5 = page_queries(client, url)
    make_rows(30)
    with assert_max_queries(max_queries):
        with_30 = page_queries(client, url)
    return with_5, with_30
