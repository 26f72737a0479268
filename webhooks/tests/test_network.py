"""SSRF: internal addresses are refused when a subscription is saved and again on every attempt,
and the connection goes to the address that was checked (no DNS rebinding)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from webhooks import network, services
from webhooks.models import WebhookAttempt, WebhookDelivery
from webhooks.receiver import Receiver

from .conftest import subscribe

BLOCKED = [
    "127.0.0.1",
    "127.8.9.10",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # CG-NAT
    "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "255.255.255.255",
    "192.0.0.8",
    "198.18.0.1",
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
]
PUBLIC = ["93.184.216.34", "8.8.8.8", "2606:2800:220:1:248:1893:25c8:1946", "::ffff:93.184.216.34"]


@pytest.mark.parametrize("address", BLOCKED)
def test_internal_addresses_are_blocked(address: str, settings: Any) -> None:
    """Loopback, private, link-local, CG-NAT, multicast, reserved and their IPv6 forms are refused."""
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert not network.is_allowed_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_allowed(address: str, settings: Any) -> None:
    """Public addresses (and an IPv4-mapped public one) pass."""
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    assert network.is_allowed_address(ipaddress.ip_address(address))


def test_allowed_networks_let_chosen_ranges_through(settings: Any) -> None:
    """WEBHOOK_ALLOWED_NETWORKS opens exactly its CIDRs, including their IPv4-mapped forms."""
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.1/32"]
    assert network.is_allowed_address(ipaddress.ip_address("10.9.9.9"))
    assert network.is_allowed_address(ipaddress.ip_address("::ffff:10.9.9.9"))
    assert network.is_allowed_address(ipaddress.ip_address("127.0.0.1"))
    assert not network.is_allowed_address(ipaddress.ip_address("127.0.0.2"))
    assert not network.is_allowed_address(ipaddress.ip_address("192.168.0.1"))


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.5:8443/x",
        "http://93.184.216.34/hook",  # public, but plain http
        "ftp://93.184.216.34/hook",
        "https:///nohost",
        "https://user:pass@93.184.216.34/hook",
        "not a url",
    ],
)
def test_create_refuses_unsendable_urls(workspace: Any, url: str, settings: Any) -> None:
    """Saving a subscription checks the URL: a 400 naming `url` for each of these."""
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(ValidationError) as caught:
        subscribe(workspace, url)
    assert "url" in caught.value.message_dict


def test_a_name_with_one_internal_answer_is_refused(workspace: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every resolved address must be public: one private A record among public ones refuses the name."""
    monkeypatch.setattr(
        network,
        "resolve",
        lambda host, port: [ipaddress.ip_address("93.184.216.34"), ipaddress.ip_address("10.0.0.1")],
    )
    with pytest.raises(ValidationError) as caught:
        subscribe(workspace, "https://hooks.example.com/in")
    assert "10.0.0.1" in caught.value.message_dict["url"][0]


def test_a_name_that_rebinds_to_loopback_is_refused_at_send_time(
    workspace: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A name that resolved to an allowed address when saved and to 127.0.0.1 now is not connected to."""
    # given a receiver on loopback that must never be reached, and a subscription saved while
    # the name pointed at an allowed network
    settings.WEBHOOK_ALLOWED_NETWORKS = ["93.184.216.0/24"]
    answers = {"ip": "93.184.216.34"}
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address(answers["ip"])])
    with Receiver() as internal:
        subscription = subscribe(workspace, f"http://hooks.example.com:{internal.port}/in")
        # when the name now answers with loopback
        answers["ip"] = "127.0.0.1"
        delivery, response = services.subscription_test(subscription=subscription)
        # then
        assert internal.requests == []
    assert (response.status_code, response.error_kind) == (0, "blocked_address")
    assert WebhookAttempt.objects.get(delivery=delivery).error_kind == "blocked_address"


def test_the_connection_is_pinned_to_the_checked_address(
    workspace: Any, monkeypatch: pytest.MonkeyPatch, allow_loopback: None
) -> None:
    """The name is resolved once per attempt and that address is the one connected to, with the
    name in the Host header: a later DNS answer cannot redirect the request."""
    # given
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[Any]:
        lookups.append(host)
        # the first answer is checked and used; any later one would point at a dead address
        return [ipaddress.ip_address("127.0.0.1" if len(lookups) % 2 else "127.0.0.99")]

    monkeypatch.setattr(network, "resolve", rebinding)
    with Receiver() as receiver:
        url = f"http://hooks.example.com:{receiver.port}/in"
        lookups.clear()
        # when
        response = network.post(url, body=b"{}", headers={})
        # then
        assert response.ok, response.error
        assert lookups == ["hooks.example.com"]
        assert response.resolved_ip == "127.0.0.1"
        assert receiver.requests[0].headers["host"] == f"hooks.example.com:{receiver.port}"


def test_an_unresolvable_name_is_a_dns_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A name that does not resolve fails the attempt as dns, without a connection."""

    def fail(host: str, port: int) -> list[Any]:
        raise OSError("Name or service not known")

    monkeypatch.setattr(network, "resolve", fail)
    response = network.post("https://nowhere.example.com/in", body=b"{}", headers={})
    assert (response.status_code, response.error_kind) == (0, "dns")


def test_delivery_rechecks_addresses_on_every_attempt(
    workspace: Any, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    """A delivery whose host turned internal after saving fails as blocked_address and is retried."""
    # given
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    answers = {"ip": "93.184.216.34"}
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address(answers["ip"])])
    subscribe(workspace, "https://hooks.example.com/in", event_types=["contact.created"])
    from contacts import services as contacts

    contacts.contact_upsert(workspace_id=workspace.id, email="a@example.com", fields={})
    services.outbox_fan_out()
    answers["ip"] = "169.254.169.254"
    # when
    sent = services.deliveries_send_due()
    # then
    assert sent == 1
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert WebhookAttempt.objects.get().error_kind == "blocked_address"


TLS_DIR = __import__("pathlib").Path(__file__).parent / "tls"
CERT, KEY = str(TLS_DIR / "hooks.example.com.pem"), str(TLS_DIR / "hooks.example.com.key")


@pytest.fixture
def trust_test_certificate(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test certificate is trusted as if a public CA had issued it (the trust store is the outside world)."""
    import ssl

    monkeypatch.setattr(network, "tls_context", lambda: ssl.create_default_context(cafile=CERT))


@pytest.fixture
def tls_receiver(
    monkeypatch: pytest.MonkeyPatch, allow_loopback: None, trust_test_certificate: None
) -> Iterator[Receiver]:
    """A receiver serving the test certificate on 127.0.0.1, where every name resolves."""
    monkeypatch.setattr(network, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    with Receiver(tls=(CERT, KEY)) as receiver:
        yield receiver


def test_https_is_pinned_with_sni_and_the_certificate_checked_for_the_name(tls_receiver: Receiver) -> None:
    """The TLS connection goes to the checked address while SNI, certificate check and Host name the URL's host."""
    response = network.post(f"https://hooks.example.com:{tls_receiver.port}/in", body=b"{}", headers={})
    assert response.ok, response.error
    assert tls_receiver.server_names == ["hooks.example.com"]
    assert tls_receiver.requests[0].headers["host"] == f"hooks.example.com:{tls_receiver.port}"
    assert response.resolved_ip == "127.0.0.1"


def test_a_certificate_for_another_name_fails_as_tls(tls_receiver: Receiver) -> None:
    """A name the certificate does not cover is refused (error kind tls), nothing is posted."""
    response = network.post(f"https://other.example.com:{tls_receiver.port}/in", body=b"{}", headers={})
    assert (response.status_code, response.error_kind) == (0, "tls")
    assert tls_receiver.requests == []
