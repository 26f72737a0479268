"""DRF authentication by workspace API key (``Authorization: Bearer <key>``)."""

from datetime import timedelta

from django.db import InterfaceError, OperationalError, connection
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from events_platform.prepared import prepared_cursor

from .models import ApiKey, hash_secret

# last_used_at is a hint for humans; writing it at most once a minute keeps ingest cheap.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ApiKeyUser:
    """The principal behind an API key: authenticated, but not a Django user."""

    is_authenticated = True
    is_active = True
    is_staff = False
    is_superuser = False
    is_anonymous = False

    def __init__(self, api_key: ApiKey) -> None:
        self.api_key = api_key
        self.workspace_id = api_key.workspace_id

    def __str__(self) -> str:
        return f"api key {self.api_key.prefix}"


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ApiKeyUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        parts = header.split()
        if len(parts) != 2 or parts[0].lower() != self.keyword.lower():
            raise exceptions.AuthenticationFailed("Authorization header must be 'Bearer <api key>'.")
        api_key = _active_key(hash_secret(parts[1]))
        if api_key is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked API key.")
        now = timezone.now()
        if api_key.last_used_at is None or api_key.last_used_at < now - LAST_USED_RESOLUTION:
            # Guarded in SQL too, so concurrent requests write it once.
            ApiKey.objects.filter(pk=api_key.pk).exclude(last_used_at__gte=now - LAST_USED_RESOLUTION).update(
                last_used_at=now
            )
        return ApiKeyUser(api_key), api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


# Columns (attnames) of what a request reads of its key.
_KEY_FIELDS = ["id", "workspace_id", "prefix", "last_used_at"]


def _active_key(key_hash: str) -> ApiKey | None:
    """The active key with this hash (only the fields a request reads), or None.

    Every API request runs this, so it is one plain statement on the unique ``key_hash``
    index (the ORM compiled the same query again on every request: about a millisecond). It
    reads the database each time, so a revoked key is refused by every process at once.

    It is also the request's first statement, which on a kept connection Django would precede
    with its health check (``CONN_HEALTH_CHECKS``: a ``SELECT 1`` round trip of its own). The
    lookup stands in for that check: when the connection turns out to be dead (the server
    restarted since the last request) it is closed and the lookup sent once more on a new one,
    which is what the check would have led to.
    """
    # Django's own flags for it (not in its type stubs).
    if (
        connection.connection is not None
        and getattr(connection, "health_check_enabled", False)
        and not getattr(connection, "health_check_done", True)
        and not connection.in_atomic_block
    ):
        connection.health_check_done = True  # type: ignore[attr-defined]
        try:
            return _lookup(key_hash)
        except (OperationalError, InterfaceError):
            connection.close()
    return _lookup(key_hash)


def _lookup(key_hash: str) -> ApiKey | None:
    quote = connection.ops.quote_name
    with prepared_cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(quote(name) for name in _KEY_FIELDS)} FROM {quote(ApiKey._meta.db_table)} "
            "WHERE key_hash = %s AND revoked_at IS NULL",
            [key_hash],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    pk, workspace_id, prefix, last_used_at = row
    if connection.vendor == "sqlite":  # datetimes come back as text there
        last_used_at = connection.ops.convert_datetimefield_value(last_used_at, None, connection)  # type: ignore[attr-defined]
    return ApiKey.from_db(connection.alias, _KEY_FIELDS, [pk, workspace_id, prefix, last_used_at])
