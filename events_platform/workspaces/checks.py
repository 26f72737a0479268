"""System checks of the workspaces layer's settings (run by migrate, check and check --deploy)."""

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from .ratelimit import parse_rate


@checks.register(checks.Tags.security)
def api_rate_limit_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    try:
        parse_rate(settings.API_RATE_LIMIT)
    except ImproperlyConfigured as exc:
        return [checks.Error(str(exc), id="workspaces.E001")]
    return []
