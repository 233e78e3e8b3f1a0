"""Test-only routes that use the agent-key interfaces the way other apps' views do."""

from django.urls import re_path
from rest_framework.views import APIView

from agents.models import Agent
from apikeys.access import authorize_key_scope
from apikeys.permissions import AgentKeyRequired, OperatorOrAgentKey
from core.api import ok
from core.errors import ErrorCode
from core.exceptions import ApplicationError, validation_error


class ConfigProbe(APIView):
    """Like GET /agents/{id}/config: key permission `config`, the path agent must be the key's."""

    permission_classes = [OperatorOrAgentKey.with_permission("config")]
    schema = None

    def get(self, request, agent_id):
        tenant_id, agent_id = authorize_key_scope(request, agent_id=agent_id)
        agent = Agent.objects.filter(pk=agent_id).first()
        if agent is None:
            raise ApplicationError(ErrorCode.AGENT_004)
        Agent.objects.filter(pk=agent_id).update(description="touched")  # a write that a failure rolls back
        if request.query_params.get("fail") == "400":
            raise validation_error({"fail": ["Requested failure."]})
        if request.query_params.get("fail") == "409":
            raise ApplicationError(ErrorCode.AGENT_013, tenant_id=agent.tenant_id)
        return ok({"agent_id": agent.id, "auth": type(request.auth).__name__}, tenant_id=agent.tenant_id)


class HeartbeatProbe(APIView):
    """Like PUT /agent-activity: any valid key, `api_key` accepted in the body, ids from the body."""

    permission_classes = [OperatorOrAgentKey.with_permission(None)]
    agent_key_in_body = True
    schema = None

    def put(self, request):
        body = request.data
        tenant_id, agent_id = authorize_key_scope(request, tenant_id=body.get("tenant_id"),
                                                  agent_id=body.get("agent_id"))
        authorize_key_scope(request, tenant_id=tenant_id, agent_id=agent_id)  # a second call counts nothing
        if body.get("ttl_seconds") == 0:
            raise validation_error({"ttl_seconds": ["Must be at least 1."]})
        return ok({"tenant_id": tenant_id, "agent_id": agent_id})


class ChatProbe(APIView):
    permission_classes = [AgentKeyRequired.with_permission("chat")]
    schema = None

    def post(self, request):
        tenant_id, agent_id = authorize_key_scope(request)
        return ok({"agent_id": agent_id})


class OperatorProbe(APIView):
    schema = None

    def get(self, request):
        return ok({"operator": True})


urlpatterns = [
    re_path(r"^api/v2/probe/config/(?P<agent_id>[^/]+)/?$", ConfigProbe.as_view()),
    re_path(r"^api/v2/probe/heartbeat/?$", HeartbeatProbe.as_view()),
    re_path(r"^api/v2/agent-activity/?$", HeartbeatProbe.as_view()),
    re_path(r"^api/v2/probe/chat/?$", ChatProbe.as_view()),
    re_path(r"^api/v2/probe/operator/?$", OperatorProbe.as_view()),
]
