"""Agent routes (spec §4): validate -> service -> serialize."""

from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.views import APIView

from agents import configdoc, selectors, services
from agents.serializers import (
    AgentConfigBodyInputSerializer,
    AgentConfigDocumentSerializer,
    AgentConfigReadQuerySerializer,
    AgentConfigResponseSerializer,
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


def _config_payload(document: dict, *, effective: bool = False) -> dict:
    """`data` of the config routes: the (masked) document plus its `warnings` (spec §4.7)."""
    warnings = configdoc.document_warnings(document)
    shown = configdoc.effective_document(document) if effective else document
    return {**configdoc.mask_document(shown), "warnings": warnings}


class AgentConfigView(APIView):
    """`/api/v2/agents/{agent_id}/config`: read (operator or the agent's own key with `config`), write
    (operator)."""

    def get_permissions(self):
        if self.request.method in ("GET", "HEAD", "OPTIONS"):
            return [OperatorOrAgentKey.with_permission("config")()]
        return [IsOperator()]

    @extend_schema(summary="Read an agent's configuration document", parameters=[AgentConfigReadQuerySerializer],
                   responses=envelope(AgentConfigResponseSerializer))
    def get(self, request, agent_id):
        tenant_id, agent_id = authorize_key_scope(request, agent_id=agent_id)
        agent = selectors.agent_get(agent_id=agent_id)
        with tenant_resolved(agent.tenant_id):
            query = parse_query(request, AgentConfigReadQuerySerializer)
        return ok(_config_payload(agent.config or {}, effective=query["effective"]),
                  message="Agent configuration retrieved", tenant_id=agent.tenant_id)

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
        return ok(_config_payload(agent.config or {}), message="Agent configuration updated",
                  tenant_id=agent.tenant_id)

    @extend_schema(summary="Write an agent's configuration document (deep merge, or ?mode=replace)",
                   parameters=[AgentConfigWriteQuerySerializer], request=AgentConfigDocumentSerializer,
                   responses=envelope(AgentConfigResponseSerializer), examples=[_PATCH_CONFIG_EXAMPLE])
    def patch(self, request, agent_id):
        return self.put(request, agent_id)
