"""Delivery to a real HTTP receiver on 127.0.0.1: signed, retried on schedule, never following
redirects, disabling on 410 or five days of failure, leased, replayable."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import standardwebhooks.webhooks as oracle
from django.utils import timezone

from contacts import services as contacts
from webhooks import services, tasks
from webhooks.models import WebhookAttempt, WebhookDelivery, WebhookOutbox, WebhookSubscription
from webhooks.receiver import Answer, Receiver

from .conftest import purchases, subscribe, verify


def _import(workspace: Any, n: int = 1, start: int = 0) -> None:
    contacts.events_upsert(workspace_id=workspace.id, events=purchases(n, start=start))


def _pending_delivery(workspace: Any, url: str, **kwargs: Any) -> tuple[WebhookSubscription, WebhookDelivery]:
    """A subscription and one fanned-out delivery of a custom_event.created, not yet sent."""
    subscription = subscribe(workspace, url, event_types=["custom_event.created"], **kwargs)
    _import(workspace)
    services.outbox_fan_out()
    return subscription, WebhookDelivery.objects.get(subscription=subscription)


def _attempt_at(now: Any) -> list[WebhookDelivery]:
    """Claim whatever is due at ``now`` and send it (the frozen clock's sender)."""
    claim = services.deliveries_claim(now=now)
    for delivery in claim.deliveries:
        services.delivery_attempt(delivery=delivery, token=claim.token, now=now)
    return claim.deliveries


def test_a_committed_change_is_delivered_signed(
    workspace: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    """An import with a subscription reaches the receiver once, verifiable by standardwebhooks,
    and the attempt is recorded with its status and resolved address."""
    # given
    subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    # when (the publish after the commit runs the fan-out and the send in-process)
    with django_capture_on_commit_callbacks(execute=True):
        _import(workspace, n=3)
    # then
    got = receiver.wait_for(3)
    assert len(got) == 3
    payloads = [verify(subscription.secret, request) for request in got]
    assert sorted(p["data"]["custom_event"]["external_id"] for p in payloads) == ["order_0", "order_1", "order_2"]
    assert {request.headers["webhook-id"] for request in got} == {p["id"] for p in payloads}
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}
    attempt = WebhookAttempt.objects.first()
    assert attempt is not None
    assert (attempt.status_code, attempt.resolved_ip, attempt.error_kind) == (200, "127.0.0.1", "")
    subscription.refresh_from_db()
    assert subscription.last_delivery_at is not None


def test_retries_follow_the_schedule_and_resend_the_same_signed_bytes(workspace: Any, allow_loopback: None) -> None:
    """With a frozen clock: a failing receiver is retried after 5 s, 5 min, 30 min ... (jitter within
    10%), ten attempts in all, then failed; every attempt carries the same id and body, signed for its time."""
    # given a receiver that always answers 500
    with Receiver(lambda request: Answer(status=500, body=b"down")) as failing:
        subscription, delivery = _pending_delivery(workspace, failing.url)
        now = delivery.next_attempt_at
        assert now is not None
        expected = [timedelta(0), *services.RETRY_SCHEDULE[1:]]
        waits = []
        # when each attempt is made at its due time
        for number in range(1, 11):
            before = now - timedelta(milliseconds=500) if number > 1 else None
            if before is not None:
                assert _attempt_at(before) == []  # not due yet
            assert len(_attempt_at(now)) == 1
            delivery.refresh_from_db()
            assert delivery.attempts == number
            if delivery.next_attempt_at is not None:
                waits.append(delivery.next_attempt_at - now)
                now = delivery.next_attempt_at
        # then
        assert delivery.status == WebhookDelivery.Status.FAILED
        assert len(failing.requests) == 10
        for wait, scheduled in zip(waits, expected[1:], strict=True):
            assert scheduled * 0.9 <= wait <= scheduled * 1.1 + timedelta(seconds=1)
        assert {r.body for r in failing.requests} == {delivery.body.encode()}
        assert {r.headers["webhook-id"] for r in failing.requests} == {delivery.message_id}
        for request in failing.requests:
            sent_at = datetime.fromtimestamp(int(request.headers["webhook-timestamp"]), tz=UTC)
            verify(subscription.secret, request, at=sent_at)
        numbers = list(WebhookAttempt.objects.filter(delivery=delivery).values_list("number", "status_code"))
        assert numbers == [(n, 500) for n in range(1, 11)]


@pytest.mark.parametrize(("header", "at_least", "at_most"), [("120", 120, 140), ("9999999", 86400, 86401)])
def test_retry_after_on_429_is_honoured_and_capped(
    workspace: Any, allow_loopback: None, header: str, at_least: float, at_most: float
) -> None:
    """A 429 with Retry-After waits at least that long (at most 24 hours), not the 5 s of the schedule."""
    # given
    with Receiver(lambda request: Answer(status=429, headers={"Retry-After": header})) as throttling:
        _subscription, delivery = _pending_delivery(workspace, throttling.url)
        now = delivery.next_attempt_at
        # when
        _attempt_at(now)
    # then
    delivery.refresh_from_db()
    assert delivery.next_attempt_at is not None and now is not None
    wait = (delivery.next_attempt_at - now).total_seconds()
    assert at_least <= wait <= at_most
    assert delivery.last_response_status == 429


def test_a_redirect_is_not_followed(workspace: Any, allow_loopback: None) -> None:
    """A 3xx is a failure to retry, never a request to the Location."""
    # given
    with (
        Receiver() as elsewhere,
        Receiver(lambda request: Answer(status=302, headers={"Location": elsewhere.url})) as redirecting,
    ):
        _subscription, delivery = _pending_delivery(workspace, redirecting.url)
        # when
        _attempt_at(delivery.next_attempt_at)
        # then
        assert len(redirecting.requests) == 1
        assert elsewhere.requests == []
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.PENDING
    attempt = WebhookAttempt.objects.get(delivery=delivery)
    assert (attempt.status_code, attempt.error_kind) == (302, "redirect")


def test_410_disables_the_subscription(workspace: Any, allow_loopback: None) -> None:
    """Gone means gone: the delivery fails, the subscription is disabled with the reason, and
    changes after that are not recorded for it."""
    # given
    with Receiver(lambda request: Answer(status=410)) as gone:
        subscription, delivery = _pending_delivery(workspace, gone.url)
        # when
        _attempt_at(delivery.next_attempt_at)
    # then
    delivery.refresh_from_db()
    subscription.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert (subscription.enabled, subscription.disabled_reason) == (False, "gone_410")
    assert "410" in subscription.disabled_detail
    _import(workspace, start=100)
    assert WebhookOutbox.objects.count() == 0


def test_five_days_of_failures_disable_the_subscription(workspace: Any, allow_loopback: None) -> None:
    """An endpoint failing from its first failure for five days is disabled with the reason shown;
    a success before then resets the clock."""
    # given
    answer = {"status": 500}
    with Receiver(lambda request: Answer(status=answer["status"])) as flaky:
        subscription = subscribe(workspace, flaky.url, event_types=["custom_event.created"])
        t0 = timezone.now()
        steps = [(t0, 500), (t0 + timedelta(days=1), 200), (t0 + timedelta(days=2), 500), (t0 + timedelta(days=6), 500)]
        for n, (at, status) in enumerate(steps):
            answer["status"] = status
            _import(workspace, start=n * 10)
            services.outbox_fan_out(now=at)
            _attempt_at(at)
            subscription.refresh_from_db()
            assert subscription.enabled, f"disabled too early, at step {n}"
        # when: the failures started at day 2; day 7 is more than five days later
        _import(workspace, start=99)
        services.outbox_fan_out(now=t0 + timedelta(days=7, minutes=1))
        _attempt_at(t0 + timedelta(days=7, minutes=1))
    # then
    subscription.refresh_from_db()
    assert (subscription.enabled, subscription.disabled_reason) == (False, "failing_5_days")
    assert "HTTP 500" in subscription.disabled_detail


def test_secret_rotation_signs_with_both_for_24_hours(workspace: Any, receiver: Receiver) -> None:
    """After regenerateSecret, deliveries verify with the old and the new secret; a day later only the new."""
    # given
    subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    old = subscription.secret
    t0 = timezone.now()
    subscription = services.subscription_secret_regenerate(subscription=subscription, now=t0)
    new = subscription.secret
    # when
    _import(workspace, n=2)
    services.outbox_fan_out()
    first, second = WebhookDelivery.objects.order_by("id")
    for delivery, at in ((first, t0 + timedelta(minutes=1)), (second, t0 + timedelta(hours=24, minutes=1))):
        claim = services.deliveries_claim(now=at)
        by_pk = {d.pk: d for d in claim.deliveries}
        services.delivery_attempt(delivery=by_pk[delivery.pk], token=claim.token, now=at)
        for other in claim.deliveries:
            if other.pk != delivery.pk:
                services._release([other], claim.token, at)
    # then
    during, after = receiver.requests
    assert len(during.headers["webhook-signature"].split(" ")) == 2
    verify(new, during, at=t0 + timedelta(minutes=1))
    verify(old, during, at=t0 + timedelta(minutes=1))
    verify(new, after, at=t0 + timedelta(hours=24, minutes=1))
    with pytest.raises(oracle.WebhookVerificationError):
        verify(old, after, at=t0 + timedelta(hours=24, minutes=1))


def test_only_a_kibibyte_of_the_response_is_kept(workspace: Any, allow_loopback: None) -> None:
    """A large response body is cut to 1 KiB in the attempt and the delivery."""
    # given
    with Receiver(lambda request: Answer(status=500, body=b"x" * 50_000)) as chatty:
        _subscription, delivery = _pending_delivery(workspace, chatty.url)
        # when
        _attempt_at(delivery.next_attempt_at)
    # then
    delivery.refresh_from_db()
    assert len(delivery.last_response_body) == 1024
    assert len(WebhookAttempt.objects.get().response_body) == 1024


def test_a_slow_receiver_is_cut_at_the_timeout(workspace: Any, allow_loopback: None, settings: Any) -> None:
    """The whole attempt is bounded by WEBHOOK_TIMEOUT: a receiver that takes longer is a timeout."""
    # given
    settings.WEBHOOK_TIMEOUT = 0.5
    with Receiver(lambda request: Answer(delay=3)) as slow:
        _subscription, delivery = _pending_delivery(workspace, slow.url)
        # when
        _attempt_at(delivery.next_attempt_at)
    # then
    attempt = WebhookAttempt.objects.get()
    assert attempt.error_kind == "timeout"
    assert attempt.duration_ms < 2000


def test_a_claim_is_exclusive_until_its_lease_ends(workspace: Any, allow_loopback: None) -> None:
    """A claimed delivery is not claimed again; after the lease (its sender died) it is, and the
    lost attempt is recorded."""
    # given
    with Receiver() as ok:
        _subscription, delivery = _pending_delivery(workspace, ok.url)
        now = delivery.next_attempt_at
        assert now is not None
        first = services.deliveries_claim(now=now)
        assert [d.pk for d in first.deliveries] == [delivery.pk]
        # when / then
        assert services.deliveries_claim(now=now + timedelta(seconds=30)).deliveries == []
        retaken = services.deliveries_claim(now=first.lease_ends + timedelta(seconds=1))
        assert [d.pk for d in retaken.deliveries] == [delivery.pk]
        services.delivery_attempt(delivery=retaken.deliveries[0], token=retaken.token, now=first.lease_ends)
        # the first sender's late answer settles nothing
        services.attempt_record(
            delivery=first.deliveries[0],
            token=first.token,
            response=services.network.post(ok.url, body=b"{}", headers={}),
            started_at=now,
        )
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED
    kinds = list(
        WebhookAttempt.objects.filter(delivery=delivery).order_by("number", "id").values_list("number", "error_kind")
    )
    assert kinds[0] == (1, "lease_expired")
    assert (2, "") in kinds


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_receiver_down_then_back_everything_arrives(workspace: Any, allow_loopback: None) -> None:
    """Deliveries to a receiver that is down are retried; once it is back they all arrive, each once."""
    # given a subscription to a port nobody listens on
    port = _free_port()
    subscription = subscribe(workspace, f"http://127.0.0.1:{port}/hooks", event_types=["custom_event.created"])
    _import(workspace, n=5)
    services.outbox_fan_out()
    now = timezone.now()
    _attempt_at(now)
    assert set(WebhookAttempt.objects.values_list("error_kind", flat=True)) == {"connection"}
    # when it comes back and the retries are due
    with Receiver(port=port) as back:
        _attempt_at(now + timedelta(seconds=6))
        # then
        got = back.wait_for(5)
    assert sorted(json.loads(r.body)["data"]["custom_event"]["external_id"] for r in got) == [
        f"order_{i}" for i in range(5)
    ]
    for request in got:
        verify(subscription.secret, request, at=now + timedelta(seconds=6))
    assert set(WebhookDelivery.objects.values_list("status", flat=True)) == {"delivered"}


def test_a_lost_publish_is_swept_and_delivered(
    workspace: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    """Outbox rows whose fan-out was never published (the broker lost it) are found by the sweep
    and delivered."""
    # given a committed change whose after-commit publish never ran
    subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    _import(workspace, n=2)
    assert WebhookOutbox.objects.count() == 2
    # when the periodic sweep runs
    with django_capture_on_commit_callbacks(execute=True):
        tasks.webhooks_sweep_task.apply()
    # then
    got = receiver.wait_for(2)
    assert len(got) == 2
    for request in got:
        verify(subscription.secret, request)
    assert WebhookOutbox.objects.count() == 0


def test_a_disabled_subscription_holds_its_deliveries_until_enabled(workspace: Any, receiver: Receiver) -> None:
    """Pending deliveries of a disabled subscription are not sent; enabling it sends them."""
    # given
    subscription, delivery = _pending_delivery(workspace, receiver.url)
    services.subscription_set_enabled(subscription=subscription, enabled=False)
    # when
    assert _attempt_at(timezone.now() + timedelta(minutes=1)) == []
    services.subscription_set_enabled(subscription=subscription, enabled=True)
    _attempt_at(timezone.now())
    # then
    assert len(receiver.requests) == 1
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.DELIVERED


def test_replay_sends_the_same_delivery_again(workspace: Any, receiver: Receiver) -> None:
    """Replaying a delivered delivery sends the same id and bytes in a new round."""
    # given
    _subscription, delivery = _pending_delivery(workspace, receiver.url)
    _attempt_at(timezone.now())
    delivery.refresh_from_db()
    # when
    assert services.delivery_replay(delivery=delivery) == 1
    _attempt_at(timezone.now())
    # then
    first, again = receiver.requests
    assert first.body == again.body
    assert first.headers["webhook-id"] == again.headers["webhook-id"]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.max_attempts) == ("delivered", 2, 11)


def test_replay_failed_since_requeues_only_failed_ones_after_the_time(workspace: Any, allow_loopback: None) -> None:
    """replay(subscription, since) queues the failed deliveries created since then, nothing else."""
    # given two failed deliveries (410 would disable: use a final attempt instead) and one delivered
    with Receiver(lambda request: Answer(status=500)) as failing:
        subscription = subscribe(workspace, failing.url, event_types=["custom_event.created"])
        t0 = timezone.now()
        _import(workspace, n=1, start=0)
        services.outbox_fan_out(now=t0 - timedelta(hours=2))
        _import(workspace, n=2, start=10)
        services.outbox_fan_out(now=t0)
        WebhookDelivery.objects.update(max_attempts=1)
        _attempt_at(t0 + timedelta(seconds=1))
    assert WebhookDelivery.objects.filter(status="failed").count() == 3
    # when
    count = services.deliveries_replay_failed(subscription=subscription, since=t0 - timedelta(minutes=1))
    # then
    assert count == 2
    assert WebhookDelivery.objects.filter(status="pending").count() == 2


def test_the_embedded_scheduler_delivers(
    workspace: Any, receiver: Receiver, django_capture_on_commit_callbacks: Any
) -> None:
    """Without Redis, `manage.py run_scheduler` (what `make run` starts as its beat) runs the
    webhooks sweep: a change whose publish was lost still reaches the receiver."""
    from django.core.management import call_command

    # given
    subscription = subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    _import(workspace)
    # when
    with django_capture_on_commit_callbacks(execute=True):
        call_command("run_scheduler", "--once")
    # then
    got = receiver.wait_for(1)
    assert len(got) == 1
    verify(subscription.secret, got[0])


def test_a_run_of_attempts_keeps_its_connection_alive(workspace: Any, receiver: Receiver) -> None:
    """Deliveries sent in one run to the same checked address share one kept-alive connection."""
    # given
    subscribe(workspace, receiver.url, event_types=["custom_event.created"])
    _import(workspace, n=5)
    services.outbox_fan_out()
    # when
    assert services.deliveries_send_due() == 5
    # then
    assert len(receiver.requests) == 5
    assert len({r.peer_port for r in receiver.requests}) == 1


def test_a_connection_the_server_closed_meanwhile_is_replaced(workspace: Any, allow_loopback: None) -> None:
    """A kept connection found closed is not a failed attempt: the request goes on a new one."""
    # given a kept connection to a receiver that then restarts on the same port
    from webhooks import network

    first = Receiver().start()
    port = first.port
    with network.Connections() as connections:
        assert network.post(first.url, body=b"{}", headers={}, connections=connections).ok
        first.stop()
        with Receiver(port=port) as second:
            # when
            response = network.post(second.url, body=b"{}", headers={}, connections=connections)
            # then
            assert response.ok, response.error
            assert len(second.requests) == 1
