"""Login throttling: LOGIN_FAILURE_LIMIT failed sign-ins lock an account, or a client address,
for LOGIN_LOCKOUT_MINUTES, on the login page and on admin's, and the right password does not
get in meanwhile (django-axes, events_platform/login_limits.py)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.utils import timezone

PASSWORD = "the-right-password-1"
LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def marketer(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user(username="marketer", password=PASSWORD)


def sign_in(client: Client, url: str, username: str, password: str, *, ip: str = "10.0.0.1") -> Any:
    return client.post(url, {"username": username, "password": password}, REMOTE_ADDR=ip)


def signed_in(client: Client) -> bool:
    return SESSION_KEY in client.session


@pytest.mark.django_db
def test_the_fifth_wrong_password_locks_the_account_and_the_right_one_stays_out(client: Client, marketer: Any) -> None:
    """After 5 wrong passwords the login answers 429 with a page saying for how long, and the
    right password (from another address too) does not sign in."""
    # given
    for attempt in range(4):
        response = sign_in(client, LOGIN, "marketer", f"wrong-{attempt}")
        assert response.status_code == 200  # the form again, with its error

    # when
    fifth = sign_in(client, LOGIN, "marketer", "wrong-4")
    right = sign_in(client, LOGIN, "marketer", PASSWORD, ip="10.9.9.9")

    # then
    assert fifth.status_code == 429
    html = fifth.content.decode()
    assert "Sign-in locked" in html and "after 5 in a row" in html and "locked for 15 minutes" in html
    assert right.status_code == 429
    assert not signed_in(client)


@pytest.mark.django_db
def test_the_lock_ends_after_the_lockout_minutes(client: Client, marketer: Any) -> None:
    """Once LOGIN_LOCKOUT_MINUTES have passed since the failures, the right password signs in."""
    # given a locked account whose failures are 16 minutes old
    for attempt in range(5):
        sign_in(client, LOGIN, "marketer", f"wrong-{attempt}")
    assert sign_in(client, LOGIN, "marketer", PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))

    # when
    response = sign_in(client, LOGIN, "marketer", PASSWORD)

    # then
    assert response.status_code == 302
    assert signed_in(client)


@pytest.mark.django_db
def test_one_address_trying_many_accounts_is_locked(client: Client, django_user_model: Any) -> None:
    """Five failures from one address, each on a different username, lock that address: a sixth
    account's right password from there does not sign in, from elsewhere it does."""
    # given
    django_user_model.objects.create_user(username="victim", password=PASSWORD)
    for index in range(5):
        sign_in(client, LOGIN, f"guess{index}", "wrong", ip="203.0.113.7")

    # when
    from_there = sign_in(client, LOGIN, "victim", PASSWORD, ip="203.0.113.7")
    elsewhere = Client()
    from_elsewhere = sign_in(elsewhere, LOGIN, "victim", PASSWORD, ip="198.51.100.1")

    # then
    assert from_there.status_code == 429
    assert not signed_in(client)
    assert from_elsewhere.status_code == 302
    assert signed_in(elsewhere)


@pytest.mark.django_db
def test_admin_login_is_locked_the_same_way(client: Client, admin_user: Any) -> None:
    """Admin's login counts failures too: after 5, the admin's right password gets the lockout."""
    # given
    admin_user.set_password(PASSWORD)
    admin_user.save()
    for attempt in range(5):
        sign_in(client, ADMIN_LOGIN, admin_user.username, f"wrong-{attempt}")

    # when
    response = sign_in(client, ADMIN_LOGIN, admin_user.username, PASSWORD, ip="10.9.9.9")

    # then
    assert response.status_code == 429
    assert "Sign-in locked" in response.content.decode()
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302  # still sent to the login page


@pytest.mark.django_db
def test_behind_a_trusted_proxy_the_forwarded_client_address_is_counted(
    client: Client, marketer: Any, settings: Any
) -> None:
    """With TRUSTED_PROXY_COUNT=1 the address the proxy saw is the one locked, not the proxy's
    own (which every client shares) nor what the client wrote in X-Forwarded-For."""
    # given
    settings.TRUSTED_PROXY_COUNT = 1
    for index in range(5):
        client.post(
            LOGIN,
            {"username": f"guess{index}", "password": "wrong"},
            REMOTE_ADDR="10.0.0.2",
            HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7",
        )

    # when the same client tries again, and another client comes through the same proxy
    again = client.post(
        LOGIN,
        {"username": "marketer", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="203.0.113.7",
    )
    other = Client()
    neighbour = other.post(
        LOGIN,
        {"username": "marketer", "password": PASSWORD},
        REMOTE_ADDR="10.0.0.2",
        HTTP_X_FORWARDED_FOR="198.51.100.1",
    )

    # then
    assert again.status_code == 429
    assert neighbour.status_code == 302
    assert signed_in(other)
