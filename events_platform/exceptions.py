"""One error format for the whole API: ``{"error": "<message>", "details": {"<field>": [...]}}``.

Field paths are flattened the way a client reads its own payload: ``events[3].goal_value``,
``tree.branch.leaves[1].leaf.custom_events_goal.value_2``. Notifuse clients read ``error``.
"""

import logging
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler

from events_platform import conflicts

logger = logging.getLogger(__name__)

NON_FIELD_KEYS = {"non_field_errors", "__all__"}


def flatten_errors(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn DRF's nested error structure into {"dotted.path[0].field": [messages]}."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, int) or (isinstance(key, str) and key.isdigit()):
                path = f"{prefix}[{key}]"
            elif key in NON_FIELD_KEYS:
                path = prefix or "non_field_errors"
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            for sub_path, messages in flatten_errors(value, path).items():
                out.setdefault(sub_path, []).extend(messages)
    elif isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            out[prefix or "non_field_errors"] = [str(item) for item in data]
        else:
            for index, item in enumerate(data):
                if item:
                    out.update(flatten_errors(item, f"{prefix}[{index}]"))
    else:
        out[prefix or "non_field_errors"] = [str(data)]
    return out


def summarize(details: dict[str, list[str]]) -> str:
    parts = [
        f"{path}: {messages[0]}" if path != "non_field_errors" else messages[0] for path, messages in details.items()
    ]
    summary = "; ".join(parts[:5])
    if len(parts) > 5:
        summary += f"; and {len(parts) - 5} more"
    return f"Invalid request: {summary}" if summary else "Invalid request"


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if conflicts.is_write_conflict(exc):
        logger.warning("write conflict answered 409: %s", exc)
        return Response(
            {"error": conflicts.MESSAGE, "details": {}},
            status=status.HTTP_409_CONFLICT,
            headers={"Retry-After": str(conflicts.RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(detail=as_serializer_error(exc))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        details = flatten_errors(response.data)
        response.data = {"error": summarize(details), "details": details}
    else:
        detail = response.data.get("detail", "") if isinstance(response.data, dict) else response.data
        response.data = {"error": str(detail), "details": {}}
    return response


@csrf_exempt  # whatever the method: a POST to a path that does not exist is a 404, not a CSRF 403
def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """JSON 404 for unknown /api/ paths, for any method (clients parse JSON, not an HTML page)."""
    return JsonResponse(
        {"error": f"No API endpoint at {request.path}. See /api/docs/.", "details": {}},
        status=status.HTTP_404_NOT_FOUND,
    )
