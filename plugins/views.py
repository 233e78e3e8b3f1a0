"""Plugin-settings routes (spec §8): the bare-JSON v1 compatibility routes and the v2 resource."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys.access import authorize_key_scope
from apikeys.permissions import OperatorOrAgentKey
from core.api import ok, paginated
from core.context import request_id_var
from core.exception_handlers import api_exception_handler
from core.exceptions import tenant_resolved, validation_error
from core.openapi import envelope, paginated_envelope, parse_query
from core.permissions import IsOperator, is_agent_key_request
from plugins import selectors, services
from plugins.serializers import (
    PluginSettingDeletedOutputSerializer,
    PluginSettingFilterSerializer,
    PluginSettingOutputSerializer,
    PluginSettingUpdateInputSerializer,
    PluginSettingUpsertInputSerializer,
    PluginSettingUpsertOutputSerializer,
    PluginSettingV1InputSerializer,
    PluginSettingV1ListQuerySerializer,
    PluginSettingV1OutputSerializer,
    PluginSettingV1QuerySerializer,
    PluginV1ErrorSerializer,
)

ReadPermission = OperatorOrAgentKey.with_permission("plugins")


# --- v1: the original's bare JSON -------------------------------------------------------------------

class PluginV1JSONRenderer(JSONRenderer):
    """Bare JSON with the spacing of the original's examples: `{"plugin_name": "x", "enabled": true}`."""

    compact = False
    charset = "utf-8"


def plugin_v1_exception_handler(exc, context):
    """The core handler decides status, code and sentence; v1 answers them without the envelope:
    `{"detail", "error_code", "request_id"}` (+ `errors` for VALIDATION_ERROR), spec §8.1."""
    response = api_exception_handler(exc, context)
    body = {"detail": response.api_error, "error_code": response.api_error_code, "request_id": request_id_var.get()}
    if isinstance(response.data, dict) and "errors" in response.data:
        body["errors"] = response.data["errors"]
    response.data = body
    return response


class PluginSettingsV1View(APIView):
    """`GET`/`POST /api/v1/plugins/settings`: shapes exactly as the original, errors as spec §8.1."""

    renderer_classes = [PluginV1JSONRenderer]

    def get_exception_handler(self):
        return plugin_v1_exception_handler

    def get_permissions(self):
        return [ReadPermission()] if self.request.method in ("GET", "HEAD") else [IsOperator()]

    @extend_schema(
        summary="Plugin settings (compatibility; bare JSON array)",
        parameters=[PluginSettingV1ListQuerySerializer],
        responses={200: PluginSettingV1OutputSerializer(many=True), 400: PluginV1ErrorSerializer,
                   401: PluginV1ErrorSerializer, 403: PluginV1ErrorSerializer},
    )
    def get(self, request):
        query = request.query_params
        tenant_id, agent_id = authorize_key_scope(request, tenant_id=query.get("tenant_id"),
                                                  agent_id=query.get("agent_id"))
        params = parse_query(request, PluginSettingV1ListQuerySerializer)
        tenant_id = params.get("tenant_id", tenant_id)
        agent_id = params.get("agent_id", agent_id)
        if tenant_id is None:
            raise validation_error({"tenant_id": ["This field is required."]})
        # Plain dicts in the shape of PluginSettingV1OutputSerializer (one statement, no model instances).
        return Response(selectors.plugin_setting_v1_list(tenant_id=tenant_id, agent_id=agent_id))

    @extend_schema(
        summary="Create or overwrite a plugin setting (compatibility; bare JSON)",
        parameters=[PluginSettingV1QuerySerializer],
        request=PluginSettingV1InputSerializer,
        responses={200: PluginSettingV1OutputSerializer, 400: PluginV1ErrorSerializer,
                   404: PluginV1ErrorSerializer},
        examples=[OpenApiExample("Enable a plugin", request_only=True, value={
            "plugin_name": "weather_plugin", "enabled": True, "config": {"units": "metric"}})],
    )
    def post(self, request):
        query = PluginSettingV1QuerySerializer(data={k: request.query_params.get(k) for k in ("tenant_id", "agent_id")
                                                     if k in request.query_params})
        body = PluginSettingV1InputSerializer(data=request.data)
        errors = {}
        if not query.is_valid():
            errors.update(query.errors)
        if not isinstance(request.data, dict):
            errors["non_field_errors"] = ["The body must be a JSON object."]
        elif not body.is_valid():
            errors.update(body.errors)
        if errors:
            from core.validation import flatten_errors

            raise validation_error(flatten_errors(errors))
        setting, _ = services.plugin_setting_upsert(**query.validated_data, **body.validated_data)
        return Response(PluginSettingV1OutputSerializer(setting).data)


# --- v2: the enveloped resource ---------------------------------------------------------------------

_UPSERT_EXAMPLE = OpenApiExample("Tenant default", request_only=True, value={
    "tenant_id": "tenant_3f9a1c2b7d4e", "plugin_name": "weather_plugin", "enabled": True,
    "config": {"units": "metric"}})


@extend_schema_view(
    list=extend_schema(summary="List plugin settings (tenant defaults, or an agent's merged view)",
                       parameters=[PluginSettingFilterSerializer],
                       responses=paginated_envelope(PluginSettingOutputSerializer)),
    create=extend_schema(summary="Create or update a plugin setting (upsert)",
                         request=PluginSettingUpsertInputSerializer,
                         responses=envelope(PluginSettingUpsertOutputSerializer), examples=[_UPSERT_EXAMPLE]),
    retrieve=extend_schema(summary="Get a plugin setting", responses=envelope(PluginSettingOutputSerializer)),
    update=extend_schema(summary="Update a plugin setting (partial)", request=PluginSettingUpdateInputSerializer,
                         responses=envelope(PluginSettingOutputSerializer)),
    partial_update=extend_schema(summary="Update a plugin setting (partial)",
                                 request=PluginSettingUpdateInputSerializer,
                                 responses=envelope(PluginSettingOutputSerializer)),
    destroy=extend_schema(summary="Delete a plugin setting", responses=envelope(PluginSettingDeletedOutputSerializer)),
)
class PluginSettingViewSet(viewsets.GenericViewSet):
    lookup_field = "setting_id"
    lookup_value_regex = "[^/]+"

    def get_permissions(self):
        if self.action in ("list", "retrieve"):
            return [ReadPermission()]
        return [IsOperator()]

    def list(self, request):
        query = request.query_params
        tenant_id, agent_id = authorize_key_scope(request, tenant_id=query.get("tenant_id"),
                                                  agent_id=query.get("agent_id"))
        filters = parse_query(request, PluginSettingFilterSerializer)
        tenant_id = filters.pop("tenant_id", tenant_id)
        agent_id = filters.pop("agent_id", agent_id)
        if tenant_id is None:
            raise validation_error({"tenant_id": ["This field is required."]})
        settings = selectors.plugin_setting_list(tenant_id=tenant_id, agent_id=agent_id, **filters)
        return paginated(self, settings, PluginSettingOutputSerializer, message="Plugin settings listed",
                         tenant_id=selectors.tenant_id_if_exists(tenant_id=tenant_id))

    def create(self, request):
        serializer = PluginSettingUpsertInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        setting, created = services.plugin_setting_upsert(**serializer.validated_data)
        data = PluginSettingUpsertOutputSerializer(setting, context={"created": created}).data
        return ok(data, message="Plugin setting created" if created else "Plugin setting updated",
                  tenant_id=setting.tenant_id)

    def retrieve(self, request, setting_id=None):
        scope = {}
        if is_agent_key_request(request):
            tenant_id, agent_id = authorize_key_scope(request)
            scope = {"tenant_id": tenant_id, "agent_id": agent_id}
        setting = selectors.plugin_setting_get(setting_id=setting_id, **scope)
        return ok(PluginSettingOutputSerializer(setting).data, message="Plugin setting retrieved",
                  tenant_id=setting.tenant_id)

    def update(self, request, setting_id=None):
        setting = selectors.plugin_setting_get(setting_id=setting_id)
        serializer = PluginSettingUpdateInputSerializer(data=request.data, partial=True)
        with tenant_resolved(setting.tenant_id):
            serializer.is_valid(raise_exception=True)
        setting = services.plugin_setting_update(setting=setting, data=serializer.validated_data)
        return ok(PluginSettingOutputSerializer(setting).data, message="Plugin setting updated",
                  tenant_id=setting.tenant_id)

    partial_update = update

    def destroy(self, request, setting_id=None):
        setting = selectors.plugin_setting_get(setting_id=setting_id)
        result = services.plugin_setting_delete(setting=setting)
        return ok(PluginSettingDeletedOutputSerializer(result).data, message="Plugin setting deleted",
                  tenant_id=result["tenant_id"])
