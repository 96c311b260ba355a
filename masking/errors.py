"""Domain errors and the one JSON error shape every interface answers with:

    {"type": "error", "error": {"type": "<error type>", "message": "<safe message>"}}

(the Claude API's own shape, so SDK clients show our errors as they show theirs). Messages never
echo the request: they name what is wrong, not the value that was wrong.
"""

import logging
import traceback
from typing import NamedTuple

from django.http import JsonResponse
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from masking.ratelimit import RateLimited
from masking.store import MaskingUnavailable

logger = logging.getLogger(__name__)


class InvalidPayload(Exception):
    """The request body is not what the endpoint accepts (400). The message must not quote it."""


class PayloadTooLarge(Exception):
    """The request body is over the size limit (413)."""

    def __init__(self, limit: int):
        super().__init__(f"The request body is larger than {limit} bytes.")
        self.limit = limit


class HttpError(NamedTuple):
    status: int
    type: str
    message: str


def error_body(error_type: str, message: str) -> dict:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def http_error(exc: BaseException) -> HttpError | None:
    """The HTTP answer to a domain exception, or None when `exc` is not one (the proxy reuses this)."""
    if isinstance(exc, MaskingUnavailable):
        return HttpError(503, "masking_unavailable", f"Masking is unavailable ({exc}); nothing was processed.")
    if isinstance(exc, PayloadTooLarge):
        return HttpError(413, "request_too_large", str(exc))
    if isinstance(exc, InvalidPayload):
        return HttpError(400, "invalid_request_error", str(exc))
    if isinstance(exc, RateLimited):
        return HttpError(429, "rate_limit_error", str(exc))
    return None


def json_error(error: HttpError, headers: dict | None = None) -> JsonResponse:
    return JsonResponse(error_body(error.type, error.message), status=error.status, headers=headers)


_DRF_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    406: "invalid_request_error",
    415: "invalid_request_error",
    429: "rate_limit_error",
}


def _drf_message(exc: drf.APIException) -> str:
    if isinstance(exc, drf.ValidationError):
        detail = exc.detail
        if isinstance(detail, dict):
            return "; ".join(f"{field}: {_first(messages)}" for field, messages in detail.items())
        return _first(detail)
    return str(exc.detail)


def _first(messages) -> str:
    while isinstance(messages, list | dict):
        messages = next(iter(messages.values() if isinstance(messages, dict) else messages), "")
    return str(messages)


def api_exception_handler(exc: Exception, context: dict) -> Response:
    """DRF's EXCEPTION_HANDLER: every API error in the one shape, 500s included."""
    error = http_error(exc)
    if error:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited) else None
        return Response(error_body(error.type, error.message), status=error.status, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = error_body(_DRF_TYPES.get(response.status_code, "api_error"), _drf_message(exc))
        return response
    # An exception's message may quote the data being masked: log where it happened, not what it said.
    logger.error("unhandled %s:\n%s", type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)))
    return Response(error_body("api_error", "Internal error."), status=500)
