"""REST API: POST /api/v1/mask and /api/v1/unmask.

Plain (sync) DRF views: each is one Redis round trip on the sync client, so a thread is held for
well under a millisecond of Redis time; the async path matters on the proxy, not here. Bodies
are read and parsed here (not by DRF's parsers) to enforce the size limit before anything else.
"""

import json
import re
import uuid

from django.conf import settings
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from masking import masker, ratelimit, unmasker
from masking.auth import ApiKeyAuthentication, IsOperatorOrApiClient
from masking.errors import InvalidPayload, PayloadTooLarge
from masking.models import DEFAULT_TENANT, ApiClient, Tenant
from masking.serializers import ErrorSerializer, MaskResponseSerializer, TextOrJsonSerializer, UnmaskResponseSerializer

REQUEST_ID_RE = re.compile(r"[A-Za-z0-9._:-]{1,100}")
SURROGATE_ESCAPE_RE = re.compile(rb"\\u[dD][89a-fA-F]")


def request_tenant(request) -> Tenant | str:
    """A program works in its client's tenant; an operator in the default one."""
    return request.auth.tenant if isinstance(request.auth, ApiClient) else DEFAULT_TENANT


def request_id_of(request) -> str:
    given = request.headers.get("x-request-id", "")
    return given if REQUEST_ID_RE.fullmatch(given) else uuid.uuid4().hex


def body_limit(tenant: Tenant | str) -> int:
    return (isinstance(tenant, Tenant) and tenant.max_body_bytes) or settings.MASKING_MAX_BODY_BYTES


def read_json_body(request, limit: int):
    """The parsed JSON body; 413 on the declared or the actual size, 400 on bad UTF-8 or JSON."""
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isdigit():
        raise InvalidPayload("Invalid Content-Length header.")
    if int(declared) > limit:
        raise PayloadTooLarge(limit)
    raw = request.read(limit + 1)
    if len(raw) > limit:
        raise PayloadTooLarge(limit)
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidPayload("The request body is not valid UTF-8.") from None
    except RecursionError:
        raise InvalidPayload("The JSON body is nested too deeply.") from None
    except ValueError:
        raise InvalidPayload("The request body is not valid JSON.") from None
    if SURROGATE_ESCAPE_RE.search(raw):
        _refuse_lone_surrogates(data)
    return data


def _refuse_lone_surrogates(data) -> None:
    # JSON may escape half of a surrogate pair ("\ud800"): that is no text, and no answer could encode it.
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidPayload("The JSON body contains an unpaired surrogate escape.") from None


class _MaskingView(APIView):
    authentication_classes = [ApiKeyAuthentication, SessionAuthentication]
    permission_classes = [IsOperatorOrApiClient]
    parser_classes = [JSONParser]  # for the schema only: bodies are read by read_json_body
    renderer_classes = [JSONRenderer]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication and permissions first
        if isinstance(request.auth, ApiClient):
            ratelimit.check(request.auth.tenant)

    def validated(self, request, tenant) -> dict:
        serializer = TextOrJsonSerializer(data=read_json_body(request, body_limit(tenant)))
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if hasattr(request, "request_id"):
            response["x-request-id"] = request.request_id
        return response


_ERRORS = {status: ErrorSerializer for status in (400, 401, 403, 413, 429, 503)}


def _entity(entity: masker.Entity, path=None) -> dict:
    data = {"token": entity.token, "kind": entity.kind, "start": entity.start, "end": entity.end}
    if path is not None:
        data["path"] = list(path)
    return data


class MaskView(_MaskingView):
    @extend_schema(
        operation_id="mask",
        summary="Replace AWS identifiers with tokens",
        request=TextOrJsonSerializer,
        responses={200: MaskResponseSerializer, **_ERRORS},
        examples=[OpenApiExample("text", value={"text": "i-0123456789abcdef0 is down"}, request_only=True)],
    )
    def post(self, request):
        tenant = request_tenant(request)
        request.request_id = request_id_of(request)
        data = self.validated(request, tenant)
        if "text" in data:
            result = masker.mask_texts([data["text"]], tenant, "api", request.request_id)
            return Response({"text": result.texts[0], "entities": [_entity(e) for e in result.entities[0]]})
        document, result, paths = masker.mask_json(data["json"], tenant, "api", request.request_id)
        entities = [_entity(e, path) for path, found in zip(paths, result.entities, strict=True) for e in found]
        return Response({"json": document, "entities": entities})


class UnmaskView(_MaskingView):
    @extend_schema(
        operation_id="unmask",
        summary="Restore the originals of tokens",
        request=TextOrJsonSerializer,
        responses={200: UnmaskResponseSerializer, **_ERRORS},
        examples=[OpenApiExample("text", value={"text": "AWS_EC2_001 is down"}, request_only=True)],
    )
    def post(self, request):
        tenant = request_tenant(request)
        request.request_id = request_id_of(request)
        data = self.validated(request, tenant)
        if "text" in data:
            result = unmasker.unmask_texts([data["text"]], tenant, "api", request.request_id)
            return Response({"text": result.texts[0], "unresolved": result.unresolved})
        document, result = unmasker.unmask_json(data["json"], tenant, "api", request.request_id)
        return Response({"json": document, "unresolved": result.unresolved})
