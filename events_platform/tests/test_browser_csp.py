"""In a real browser, under the Content-Security-Policy: every page, admin's pages and the Swagger
UI work without one CSP violation (no inline script, style or handler is blocked)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib import admin
from django.urls import URLPattern, get_resolver
from django.utils import timezone

from conftest import login, save_screenshot
from contacts.models import Contact
from contacts.services import events_upsert
from contacts.tests.factories import EventInputFactory
from events_platform.workspaces.models import ApiKey, Workspace
from events_platform.workspaces.services import api_key_create, workspace_create, workspace_member_add
from rfm import services as rfm_services
from segments import services
from segments.tests.trees import all_of, goal_leaf
from webhooks import services as webhook_services
from webhooks.models import WebhookDelivery, WebhookSubscription
from webhooks.receiver import Receiver

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Named pages of our apps that a browser does not open as a page, and why.
NOT_PAGES = {
    "workspace-switch": "POST only (the switcher's form, used below)",
    "segment-preview": "POST only (the builder's live preview, loaded by the builder page)",
    "segment-rebuild": "POST only (the segment page's Rebuild button)",
    "segment-export": "a CSV download, not a page",
    "webhook-action": "POST only (the webhooks page's buttons)",
    "rfm-create-preset": "POST only (the RFM list's one-click model)",
    "rfm-recompute": "POST only (the RFM page's Recompute button)",
}

# Collected in the page itself: the violations a page's own scripts would see.
LISTEN = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


@dataclass
class Visits:
    page: Any
    live_server: Any
    violations: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return self.live_server.url

    def open(self, path: str, *, ready: str = "body") -> Any:
        response = self.page.goto(self.base + path)
        assert response is not None and response.ok, f"{path}: {response and response.status}"
        assert "content-security-policy" in response.headers, f"{path} has no CSP"
        self.page.wait_for_selector(ready)
        self.page.wait_for_load_state("networkidle")
        self.collect(path)
        return response

    def collect(self, where: str) -> None:
        for attempt in (1, 2):
            try:
                found = self.page.evaluate("window.__csp || []")
                break
            except Exception as exc:  # playwright's Error
                # A page that reloads itself (a build finishing) replaced the document during the
                # read: the console listener saw the old one's violations; read the new one.
                if attempt == 2 or "Execution context was destroyed" not in str(exc):
                    raise
                self.page.wait_for_load_state("networkidle")
        self.violations += [f"{where}: {v}" for v in found]
        self.seen.append(where)


@pytest.fixture
def visits(browser_page: Any, live_server: Any) -> Iterator[Visits]:
    browser_page.context.add_init_script(LISTEN)
    visits = Visits(page=browser_page, live_server=live_server)
    browser_page.on(
        "console",
        lambda message: (
            visits.violations.append(f"console: {message.text}") if "Content Security Policy" in message.text else None
        ),
    )
    yield visits


@pytest.fixture
def hook_receiver(settings: Any) -> Iterator[Receiver]:
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    with Receiver() as running:
        yield running


@pytest.fixture
def shop(django_user_model: Any, hook_receiver: Receiver) -> tuple[Workspace, Any]:
    """A workspace with buyers, a built segment, an API key and a webhook with deliveries; its
    owner is staff (admin too)."""
    workspace = workspace_create(workspace_id="shop", name="Shop")
    workspace_create(workspace_id="warehouse", name="Warehouse")
    user = django_user_model.objects.create_superuser(username="owner", email="owner@example.com")
    workspace_member_add(workspace=workspace, user=user)
    workspace_member_add(workspace=Workspace.objects.get(pk="warehouse"), user=user)
    webhook_services.subscription_create(
        workspace_id=workspace.id, name="CRM", url=hook_receiver.url, event_types=["custom_event.created"]
    )
    now = timezone.now()
    events = [
        EventInputFactory.build(
            email=f"buyer{i}@example.com",
            external_id=f"o{i}",
            occurred_at=now - timedelta(days=i + 1),
            properties={"currency": "EUR", "items": ["A", "B"]},
            goal={"goal_type": "purchase", "goal_value": Decimal(100 * i)},
        )
        for i in range(6)
    ]
    events_upsert(workspace_id=workspace.id, events=events)
    services.segment_create(
        workspace_id=workspace.id, slug="big", name="Big spenders", tree=all_of(goal_leaf("sum", "gte", 200))
    )
    api_key_create(workspace=workspace, name="shop backend")
    rfm_model = rfm_services.rfm_model_create(workspace_id=workspace.id, slug="default", name="Purchases RFM")
    rfm_services.rfm_model_compute(model_pk=rfm_model.pk)  # whether or not on-commit did already
    return workspace, user


def our_page_names() -> set[str]:
    names = set()
    for module in ("events_platform.workspaces.urls", "contacts.urls", "segments.urls", "rfm.urls", "webhooks.urls"):
        for pattern in get_resolver(module).url_patterns:
            if isinstance(pattern, URLPattern) and pattern.name:
                names.add(pattern.name)
    return names


def test_every_page_admin_and_the_api_docs_pass_the_csp(visits: Visits, shop: tuple[Workspace, Any]) -> None:
    """No page reports a CSP violation: the app's pages (with their htmx fragments and the
    scripts' behaviours), admin's index, lists and forms, and the Swagger UI rendering the schema."""
    workspace, user = shop
    page = visits.page
    contact = Contact.objects.filter(workspace=workspace).order_by("pk").first()
    assert contact is not None
    key = ApiKey.objects.get(workspace=workspace)
    hook = WebhookSubscription.objects.get(workspace=workspace)
    delivery = WebhookDelivery.objects.filter(subscription=hook).order_by("pk").first()
    assert delivery is not None
    pages = {
        "dashboard": "/",
        "contact-list": "/contacts/",
        "contact-detail": f"/contacts/{contact.pk}/",
        "event-list": "/events/",
        "segment-list": "/segments/",
        "segment-create": "/segments/new-segment/",
        "segment-detail": "/segments/big/",
        "segment-edit": "/segments/big/edit/",
        "segment-delete": "/segments/big/delete/",
        "api-keys": "/settings/api-keys/",
        "api-key-revoke": f"/settings/api-keys/{key.pk}/revoke/",
        "rfm-list": "/rfm/",
        "rfm-detail": "/rfm/default/",
        "webhook-list": "/webhooks/",
        "webhook-deliveries": f"/webhooks/{hook.public_id}/deliveries/",
        "webhook-delivery-detail": f"/webhooks/{hook.public_id}/deliveries/{delivery.message_id}/",
    }
    assert set(pages) | set(NOT_PAGES) == our_page_names(), "a page was added: visit it here"

    # given the login page, seen before signing in
    visits.open("/accounts/login/")
    login(page, visits.live_server, user)

    # when every page is opened
    for path in pages.values():
        visits.open(path)
    # the builder's live preview (an htmx fragment)
    visits.open("/segments/big/edit/")
    page.wait_for_selector("[data-testid=preview-total]")
    visits.collect("builder live preview")
    # the RFM page's heatmap cell (an htmx fragment) and its colour toggle
    visits.open("/rfm/default/")
    page.locator("#heatmap td a").first.click()
    page.wait_for_selector("#cell h3")
    page.click("text=Average money")
    page.wait_for_selector("#heatmap [aria-current=true]:has-text('Average money')")
    visits.collect("rfm heatmap cell and toggle")
    # a new key's secret, and the copy button's script
    visits.open("/settings/api-keys/")
    page.fill("#id_name", "browser key")
    page.click("text=Create key")
    page.wait_for_selector("#new-secret")
    page.click("[data-copy]")
    visits.collect("new API key")
    # the workspace switcher submits on change
    page.select_option("#workspace-switch", "warehouse")
    page.wait_for_load_state("networkidle")
    visits.collect("workspace switch")
    # a missing page
    page.goto(visits.base + "/contacts/999999/")
    visits.collect("404 page")
    # admin: the index, and each model's list, add form and one change form
    visits.open("/admin/")
    for model in admin.site._registry:
        opts = model._meta
        base = f"/admin/{opts.app_label}/{opts.model_name}/"
        visits.open(base)
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            visits.open(f"{base}{first.pk}/change/")
        response = page.goto(visits.base + f"{base}add/")
        if response is not None and response.ok:
            visits.collect(f"{base}add/")
    # the Swagger UI renders every operation from the schema
    visits.open("/api/docs/", ready=".opblock")
    assert page.locator(".opblock").count() > 10
    visits.collect("swagger ui")
    save_screenshot(page, "csp-swagger-ui", full_page=False)

    # then
    assert visits.violations == [], "\n".join(visits.violations)
    assert len(visits.seen) > 30
