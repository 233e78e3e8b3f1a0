"""Agent routes (spec §4): validate -> service -> serialize."""

from django.http import HttpResponseNotModified
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import generics, viewsets
from rest_framework.views import APIView

from agents import configdoc, selectors, services
from agents.serializers import (
    AgentConfigBodyInputSerializer,
    AgentConfigDocumentSerializer,
    AgentConfigReadQuerySerializer,
    AgentConfigResponseSerializer,
    AgentConfigRollbackInputSerializer,
    AgentConfigVersionDetailOutputSerializer,
    AgentConfigVersionOutputSerializer,
    AgentConfigWriteQuerySerializer,
    AgentCreateInputSerializer,
    AgentDeletedOutputSerializer,
    AgentFilterSerializer,
    AgentOutputSerializer,
    AgentUpdateInputSerializer,
)
from apikeys.access import authorize_key_scope
from apikeys.permissions import OperatorOrAgentKey
from core.api import ok, paginated
from core.exceptions import tenant_resolved
from core.openapi import envelope, paginated_envelope, parse_query
from core.permissions import IsOperator

_CREATE_EXAMPLE = OpenApiExample(
    "Create an agent",
    value={
        "tenant_id": "tenant_3f9a1c2b7d4e",
        "name": "helper",
        "description": "Customer support bot",
        "tags": ["support", "qq"],
        "config": {
            "persona": "A cheerful helper who answers briefly.",
            "bot_overrides": {"nickname": "Mai", "platform": "qq"},
            "config_overrides": {"chat": {"max_context_size": 24}},
        },
    },
    request_only=True,
)
_PATCH_CONFIG_EXAMPLE = OpenApiExample(
    "Change one field, remove a section",
    value={"config_overrides": {"chat": {"talk_value": 0.5}, "emoji": None}},
    request_only=True,
)


def _agent_representation(agent_id: str, request) -> dict:
    """The agent as answered, re-read with its liveness (one query)."""
    return AgentOutputSerializer(selectors.agent_get(agent_id=agent_id), context={"request": request}).data


@extend_schema_view(
    list=extend_schema(summary="List agents", parameters=[AgentFilterSerializer],
                       responses=paginated_envelope(AgentOutputSerializer)),
    retrieve=extend_schema(summary="Get an agent", responses=envelope(AgentOutputSerializer)),
    create=extend_schema(summary="Create an agent (online for 12 hours)", request=AgentCreateInputSerializer,
                         responses=envelope(AgentOutputSerializer), examples=[_CREATE_EXAMPLE]),
    update=extend_schema(summary="Update an agent (partial; config deep-merged)", request=AgentUpdateInputSerializer,
                         responses=envelope(AgentOutputSerializer)),
    partial_update=extend_schema(summary="Update an agent (partial; config deep-merged)",
                                 request=AgentUpdateInputSerializer, responses=envelope(AgentOutputSerializer)),
    destroy=extend_schema(summary="Delete an agent and everything it owns",
                          responses=envelope(AgentDeletedOutputSerializer)),
)
class AgentViewSet(viewsets.GenericViewSet):
    lookup_field = "agent_id"
    lookup_value_regex = "[^/]+"

    def list(self, request):
        filters = parse_query(request, AgentFilterSerializer)
        queryset = selectors.agent_list(**filters)
        return paginated(self, queryset, AgentOutputSerializer, message="Agents listed",
                         tenant_id=filters.get("tenant_id"))

    def create(self, request):
        serializer = AgentCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent = services.agent_create(**serializer.validated_data)
        return ok(_agent_representation(agent.pk, request), message="Agent created", tenant_id=agent.tenant_id)

    def retrieve(self, request, agent_id=None):
        agent = selectors.agent_get(agent_id=agent_id)
        return ok(AgentOutputSerializer(agent, context={"request": request}).data, message="Agent retrieved",
                  tenant_id=agent.tenant_id)

    def update(self, request, agent_id=None):
        agent = selectors.agent_get(agent_id=agent_id)
        serializer = AgentUpdateInputSerializer(data=request.data, partial=True)
        with tenant_resolved(agent.tenant_id):
            serializer.is_valid(raise_exception=True)
        agent = services.agent_update(agent=agent, data=serializer.validated_data)
        return ok(_agent_representation(agent.pk, request), message="Agent updated", tenant_id=agent.tenant_id)

    partial_update = update

    def destroy(self, request, agent_id=None):
        agent = selectors.agent_get(agent_id=agent_id)
        result = services.agent_delete(agent=agent)
        return ok(AgentDeletedOutputSerializer(result).data, message="Agent deleted", tenant_id=agent.tenant_id)


def _config_payload(document: dict, *, effective: bool = False, version: int | None = None) -> dict:
    """`data` of the config routes: the (masked) document plus its `warnings` (spec §4.7) and, beside them,
    the number of the version it is (`config_version`, issue 17; ignored when sent back in a write)."""
    warnings = configdoc.document_warnings(document)
    shown = configdoc.effective_document(document) if effective else document
    payload = {**configdoc.mask_document(shown), "warnings": warnings}
    if version is not None:
        payload["config_version"] = version
    return payload


def config_etag(version: int, *, effective: bool) -> str:
    """The strong ETag of a config representation: the version number; the effective view is another
    representation of the same version, so it gets its own tag."""
    return f'"{version}-effective"' if effective else f'"{version}"'


def _etag_matches(header: str | None, etag: str) -> bool:
    """RFC 9110 If-None-Match: `*`, or a list of (possibly weak) tags compared weakly."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


_IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match", str, OpenApiParameter.HEADER, required=False,
    description='The ETag of a previous answer (`"<config_version>"`): when the configuration is still that '
                "version the answer is 304 Not Modified without a body. A 304 of an agent key still counts a "
                "use and takes one unit of its per-minute limit, as every request past the key checks does.",
)


class AgentConfigView(APIView):
    """`/api/v2/agents/{agent_id}/config`: read (operator or the agent's own key with `config`), write
    (operator)."""

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [OperatorOrAgentKey.with_permission("config")()]
        return [IsOperator()]

    @extend_schema(
        summary="Read an agent's configuration document",
        description="Sends `ETag: \"<config_version>\"` (`\"<config_version>-effective\"` with "
                    "`?effective=true`); a matching `If-None-Match` answers 304 without a body, so a bot can "
                    "poll its configuration for the cost of a header.",
        parameters=[AgentConfigReadQuerySerializer, _IF_NONE_MATCH],
        responses={200: envelope(AgentConfigResponseSerializer),
                   304: OpenApiResponse(description="Not modified: the configuration is still that version.")})
    def get(self, request, agent_id):
        tenant_id, agent_id = authorize_key_scope(request, agent_id=agent_id)
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            query = parse_query(request, AgentConfigReadQuerySerializer)
        etag = config_etag(agent.config_version, effective=query["effective"])
        if _etag_matches(request.headers.get("If-None-Match"), etag):
            response = HttpResponseNotModified()
            response["ETag"] = etag
            return response
        return ok(_config_payload(agent.config or {}, effective=query["effective"], version=agent.config_version),
                  message="Agent configuration retrieved", tenant_id=agent.tenant_id, headers={"ETag": etag})

    @extend_schema(summary="Write an agent's configuration document (deep merge, or ?mode=replace)",
                   parameters=[AgentConfigWriteQuerySerializer], request=AgentConfigDocumentSerializer,
                   responses=envelope(AgentConfigResponseSerializer), examples=[_PATCH_CONFIG_EXAMPLE])
    def put(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            query = parse_query(request, AgentConfigWriteQuerySerializer)
            body = AgentConfigBodyInputSerializer(data=request.data)
            body.is_valid(raise_exception=True)
        agent = services.agent_config_write(agent=agent, document=body.validated_data, mode=query["mode"])
        return ok(_config_payload(agent.config or {}, version=agent.config_version),
                  message="Agent configuration updated", tenant_id=agent.tenant_id,
                  headers={"ETag": config_etag(agent.config_version, effective=False)})

    @extend_schema(summary="Write an agent's configuration document (deep merge, or ?mode=replace)",
                   parameters=[AgentConfigWriteQuerySerializer], request=AgentConfigDocumentSerializer,
                   responses=envelope(AgentConfigResponseSerializer), examples=[_PATCH_CONFIG_EXAMPLE])
    def patch(self, request, agent_id):
        return self.put(request, agent_id)


class AgentConfigVersionListView(generics.GenericAPIView):
    """`GET /api/v2/agents/{agent_id}/config/versions` (operator)."""

    permission_classes = [IsOperator]

    @extend_schema(operation_id="agents_config_versions_list",
                   summary="List an agent's configuration versions (newest first, without documents)",
                   description="Version 1 is the agent's creation; every change of its configuration document "
                               "(config routes, agent update with `config`, the admin, a rollback) adds one.",
                   responses=paginated_envelope(AgentConfigVersionOutputSerializer), tags=["agents"])
    def get(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            return paginated(self, selectors.config_version_list(agent=agent), AgentConfigVersionOutputSerializer,
                             message=_("Configuration versions listed"), tenant_id=agent.tenant_id)


class AgentConfigVersionDetailView(APIView):
    """`GET /api/v2/agents/{agent_id}/config/versions/{number}` (operator)."""

    permission_classes = [IsOperator]

    @extend_schema(operation_id="agents_config_version_retrieve",
                   summary="Read one configuration version: its document (keys masked) and its diff",
                   description="Unknown version: 404 AGENT_014. `?effective=true` shows the document over the "
                               "documented defaults, as for the current configuration.",
                   parameters=[AgentConfigReadQuerySerializer],
                   responses=envelope(AgentConfigVersionDetailOutputSerializer), tags=["agents"])
    def get(self, request, agent_id, number):
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            query = parse_query(request, AgentConfigReadQuerySerializer)
        version = services.config_version_get(agent=agent, number=int(number))
        data = {
            "agent_id": agent.pk, "version": version.number, "created_at": version.created_at,
            "actor": version.actor, "request_id": version.request_id, "source": version.source,
            "restored_from": version.restored_from, "is_current": version.number == agent.config_version,
            "document": _config_payload(version.document or {}, effective=query["effective"]),
            "changes": version.changes,
        }
        return ok(AgentConfigVersionDetailOutputSerializer(data).data, message=_("Configuration version retrieved"),
                  tenant_id=agent.tenant_id)


class AgentConfigRollbackView(APIView):
    """`POST /api/v2/agents/{agent_id}/config/rollback` (operator)."""

    permission_classes = [IsOperator]

    @extend_schema(
        summary="Roll the configuration back to an earlier version (as a new version)",
        description="The document of `version` becomes current again as version n+1, after the same checks as "
                    "any write against today's schema and system catalogue (AGENT_012, AGENT_011: then nothing "
                    "changes). Provider keys come back as that version stored them. Unknown version: 404 "
                    "AGENT_014. Rolling back to a document equal to the current one changes nothing.",
        request=AgentConfigRollbackInputSerializer, responses=envelope(AgentConfigResponseSerializer),
        examples=[OpenApiExample("Put version 3 back", value={"version": 3}, request_only=True)], tags=["agents"])
    def post(self, request, agent_id):
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            body = AgentConfigRollbackInputSerializer(data=request.data)
            body.is_valid(raise_exception=True)
        agent = services.agent_config_rollback(agent=agent, version=body.validated_data["version"])
        return ok(_config_payload(agent.config or {}, version=agent.config_version),
                  message=_("Agent configuration rolled back"), tenant_id=agent.tenant_id,
                  headers={"ETag": config_etag(agent.config_version, effective=False)})
