"""API-key routes (spec §5) and the key-verification verdict endpoints (spec §6)."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from apikeys import selectors, services, verification
from apikeys.keys import parse_key
from apikeys.metrics import record_verification
from apikeys.serializers import (
    ApiKeyCreateInputSerializer,
    ApiKeyDeletedOutputSerializer,
    ApiKeyFilterSerializer,
    ApiKeyOutputSerializer,
    ApiKeyRotateInputSerializer,
    ApiKeyUpdateInputSerializer,
    CheckPermissionInputSerializer,
    CheckPermissionVerdictOutputSerializer,
    ParseApiKeyInputSerializer,
    ParseVerdictOutputSerializer,
    ValidateApiKeyInputSerializer,
    ValidateVerdictOutputSerializer,
)
from apikeys.throttling import AuthRateThrottle
from core.api import NonAtomicRequestsMixin, ok, paginated
from core.errors import ErrorCode
from core.exceptions import tenant_resolved
from core.openapi import envelope, paginated_envelope, parse_query

NO_STORE = {"Cache-Control": "no-store"}

_CREATE_EXAMPLE = OpenApiExample(
    "Create a key",
    value={"agent_id": "agent_8b2e6f1a9c30", "name": "qq-main", "permissions": ["chat", "config"],
           "rate_limit_per_minute": 60},
    request_only=True,
)


def _key(key, *, raw_key: str | None = None):
    return ApiKeyOutputSerializer(key, context={"raw_key": raw_key}).data


@extend_schema_view(
    list=extend_schema(summary="List API keys", parameters=[ApiKeyFilterSerializer],
                       responses=paginated_envelope(ApiKeyOutputSerializer)),
    retrieve=extend_schema(summary="Get an API key", responses=envelope(ApiKeyOutputSerializer)),
    create=extend_schema(summary="Create an API key (the secret is returned once)",
                         request=ApiKeyCreateInputSerializer, responses=envelope(ApiKeyOutputSerializer),
                         examples=[_CREATE_EXAMPLE]),
    update=extend_schema(summary="Update an API key (partial)", request=ApiKeyUpdateInputSerializer,
                         responses=envelope(ApiKeyOutputSerializer)),
    partial_update=extend_schema(summary="Update an API key (partial)", request=ApiKeyUpdateInputSerializer,
                                 responses=envelope(ApiKeyOutputSerializer)),
    destroy=extend_schema(summary="Delete an API key", responses=envelope(ApiKeyDeletedOutputSerializer)),
    disable=extend_schema(summary="Disable an API key", request=None, responses=envelope(ApiKeyOutputSerializer)),
    enable=extend_schema(summary="Enable an API key", request=None, responses=envelope(ApiKeyOutputSerializer)),
    rotate=extend_schema(summary="Rotate an API key's secret (the new secret is returned once)",
                         request=ApiKeyRotateInputSerializer, responses=envelope(ApiKeyOutputSerializer)),
)
class ApiKeyViewSet(viewsets.GenericViewSet):
    lookup_field = "api_key_id"
    lookup_value_regex = "[^/]+"

    def list(self, request):
        filters = parse_query(request, ApiKeyFilterSerializer)
        return paginated(self, selectors.apikey_list(**filters), ApiKeyOutputSerializer,
                         message="API keys listed", filtered_by_tenant=filters.get("tenant_id"),
                         tenant_if_exists=selectors.tenant_id_if_exists)

    def create(self, request):
        serializer = ApiKeyCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, raw_key = services.apikey_create(**serializer.validated_data)
        return ok(_key(key, raw_key=raw_key), message="API key created", tenant_id=key.tenant_id,
                  headers=NO_STORE)

    def retrieve(self, request, api_key_id=None):
        key = selectors.apikey_get_shown(api_key_id=api_key_id)
        return ok(_key(key), message="API key retrieved", tenant_id=key.tenant_id)

    def update(self, request, api_key_id=None):
        key = selectors.apikey_get(api_key_id=api_key_id)
        serializer = ApiKeyUpdateInputSerializer(data=request.data, partial=True)
        with tenant_resolved(key.tenant_id):
            serializer.is_valid(raise_exception=True)
        key = services.apikey_update(api_key=key, data=serializer.validated_data)
        return ok(_key(key), message="API key updated", tenant_id=key.tenant_id)

    partial_update = update

    def destroy(self, request, api_key_id=None):
        key = selectors.apikey_get(api_key_id=api_key_id)
        tenant_id = key.tenant_id
        result = services.apikey_delete(api_key=key)
        return ok(ApiKeyDeletedOutputSerializer(result).data, message="API key deleted", tenant_id=tenant_id)

    @action(detail=True, methods=["post"])
    def disable(self, request, api_key_id=None):
        key = services.apikey_disable(api_key=selectors.apikey_get(api_key_id=api_key_id))
        return ok(_key(key), message="API key disabled", tenant_id=key.tenant_id)

    @action(detail=True, methods=["post"])
    def enable(self, request, api_key_id=None):
        key = services.apikey_enable(api_key=selectors.apikey_get(api_key_id=api_key_id))
        return ok(_key(key), message="API key enabled", tenant_id=key.tenant_id)

    @action(detail=True, methods=["post"])
    def rotate(self, request, api_key_id=None):
        key = selectors.apikey_get(api_key_id=api_key_id)
        serializer = ApiKeyRotateInputSerializer(data=request.data if request.data else {})
        with tenant_resolved(key.tenant_id):
            serializer.is_valid(raise_exception=True)
        key, raw_key = services.apikey_rotate(api_key=key, **serializer.validated_data)
        return ok(_key(key, raw_key=raw_key), message="API key rotated", tenant_id=key.tenant_id,
                  headers=NO_STORE)


# --- /auth verdict endpoints -----------------------------------------------------------------------

def _verdict(data, *, message: str, code: ErrorCode | None = None, error: str | None = None,
             tenant_id: str | None = None):
    """HTTP 200 whatever the verdict (spec §6): a negative verdict has success=false and its code."""
    response = ok(data, message=message, tenant_id=tenant_id)
    if code is not None:
        response.api_error_code = code.value
        response.api_error = error or code.spec.error
        response.api_message = code.spec.message
    return response


class VerdictView(NonAtomicRequestsMixin, APIView):
    """Open to anyone (credentials ignored), throttled per client IP, outside the request transaction
    (each statement autocommits: one SELECT, and one UPDATE when a use is counted)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [AuthRateThrottle]


class ParseApiKeyView(VerdictView):
    @extend_schema(summary="Parse an API key (no database access)", request=ParseApiKeyInputSerializer,
                   responses=envelope(ParseVerdictOutputSerializer), tags=["auth"])
    def post(self, request):
        serializer = ParseApiKeyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        parsed = parse_key(serializer.validated_data["api_key"])
        if parsed is None:
            data = {"format_valid": False, "format": None, "tenant_id": None, "agent_id": None,
                    "random_hash": None, "version": None}
            return _verdict(data, message="Invalid API key format", code=ErrorCode.AUTH_001,
                            error=ErrorCode.AUTH_001.spec.error)
        return _verdict(parsed.as_dict(), message="API key parsed")


def _validate_params_fast(data) -> dict | None:
    """The validated body of a well-formed validate request without building a DRF serializer (hot path).

    Returns None for anything else, which then goes through `ValidateApiKeyInputSerializer` (same rules;
    it produces the 400 with its field errors).
    """
    if not isinstance(data, dict):
        return None
    api_key = data.get("api_key")
    permission = data.get("required_permission")
    check = data.get("check_rate_limit", True)
    if not isinstance(api_key, str) or not (permission is None or isinstance(permission, str)) \
            or not (check is None or isinstance(check, bool)):
        return None
    if permission is not None:
        permission = permission.strip()
    return {"api_key": api_key, "required_permission": permission, "check_rate_limit": check}


class ValidateApiKeyView(VerdictView):
    @extend_schema(summary="Validate an API key (verdict, HTTP 200)", request=ValidateApiKeyInputSerializer,
                   responses=envelope(ValidateVerdictOutputSerializer), tags=["auth"])
    def post(self, request):
        params = _validate_params_fast(request.data)
        if params is None:  # not the common well-formed body: the serializer reports the errors
            serializer = ValidateApiKeyInputSerializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            params = serializer.validated_data
        check_rate_limit = params.get("check_rate_limit") is not False
        result = verification.verify_key(params["api_key"], required_permission=params.get("required_permission"))
        if result.valid and check_rate_limit:
            verification.consume_and_count(result)
        verification.peek_rate(result)
        verification.fill_usage(result)
        record_verification(result.code.value if result.code else "valid", "validate")
        verification.record_refusal(result)
        tenant_id = result.tenant_id if result.code not in (ErrorCode.AUTH_001, ErrorCode.AUTH_005) else None
        return _verdict(verification.validate_data(result), message="API key is valid", code=result.code,
                        error=verification.verdict_sentence(result), tenant_id=tenant_id)


class CheckPermissionView(VerdictView):
    @extend_schema(summary="Check one permission of an API key (verdict, HTTP 200)",
                   request=CheckPermissionInputSerializer,
                   responses=envelope(CheckPermissionVerdictOutputSerializer), tags=["auth"])
    def post(self, request):
        serializer = CheckPermissionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        permission = serializer.validated_data["permission"]
        result = verification.verify_key(serializer.validated_data["api_key"], required_permission=permission)
        record_verification(result.code.value if result.code else "valid", "check_permission")
        verification.record_refusal(result)
        tenant_id = result.tenant_id if result.code not in (ErrorCode.AUTH_001, ErrorCode.AUTH_005) else None
        return _verdict(verification.check_permission_data(result, permission), message="Permission granted",
                        code=result.code, error=verification.verdict_sentence(result), tenant_id=tenant_id)
