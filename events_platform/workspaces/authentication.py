"""DRF authentication by workspace API key (``Authorization: Bearer <key>``)."""

from datetime import timedelta

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

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
        api_key = (
            ApiKey.objects.active()
            .filter(key_hash=hash_secret(parts[1]))
            .only("id", "workspace_id", "prefix", "last_used_at")
            .first()
        )
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
