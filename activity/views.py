"""Heartbeat and usage-log routes (spec §7, §9): validate -> service -> serialize."""

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.generics import GenericAPIView
from rest_framework.views import APIView

from activity import selectors, services
from activity.serializers import (
    ActivityFilterSerializer,
    ActivityOutputSerializer,
    GoOfflineOutputSerializer,
    GoOfflineQuerySerializer,
    HeartbeatInputSerializer,
    UsageLogCreateInputSerializer,
    UsageLogFilterSerializer,
    UsageLogOutputSerializer,
    UsageSummaryOutputSerializer,
    UsageSummaryQuerySerializer,
    activity_representation,
    heartbeat_fast_validate,
)
from apikeys.access import authorize_key_scope
from apikeys.permissions import OperatorOrAgentKey
from core.api import NonAtomicRequestsMixin, ok, paginated
from core.exceptions import validation_error
from core.openapi import envelope, paginated_envelope, parse_query
from core.permissions import IsOperator, is_agent_key_request


AnyKeyPermission = OperatorOrAgentKey.with_permission(None)


def _scoped_body(request) -> tuple[dict, str | None, str | None]:
    """The JSON body and the (tenant_id, agent_id) after the key-scope check (403/429 come before 400).

    Only string ids of the unvalidated body take part in the scope check; the body is then required
    to be an object.
    """
    data = request.data
    ids = {}
    if isinstance(data, dict):
        ids = {name: data.get(name) for name in ("tenant_id", "agent_id") if isinstance(data.get(name), str)}
    tenant_id, agent_id = authorize_key_scope(request, **ids)
    if not isinstance(data, dict):
        raise validation_error({"non_field_errors": ["The body must be a JSON object."]})
    return data, tenant_id, agent_id


def _required(**values) -> None:
    missing = {name: ["This field is required."] for name, value in values.items() if value is None}
    if missing:
        raise validation_error(missing)


class AgentActivityView(NonAtomicRequestsMixin, GenericAPIView):
    """PUT = heartbeat, GET = list, DELETE = go offline. Outside the request transaction: the heartbeat
    is one self-contained statement on the hot path of every bot."""

    def get_permissions(self):
        if self.request.method in ("PUT", "DELETE"):
            return [AnyKeyPermission()]
        return [IsOperator()]

    @extend_schema(
        summary="Heartbeat: mark an agent online for ttl_seconds",
        request=HeartbeatInputSerializer,
        responses=envelope(ActivityOutputSerializer),
        examples=[OpenApiExample("Heartbeat", request_only=True, value={
            "tenant_id": "tenant_3f9a1c2b7d4e", "agent_id": "agent_8b2e6f1a9c30", "ttl_seconds": 300})],
    )
    def put(self, request):
        body, tenant_id, agent_id = _scoped_body(request)
        data = heartbeat_fast_validate(body)
        if data is None:
            serializer = HeartbeatInputSerializer(data=body)
            serializer.is_valid(raise_exception=True)
            data = serializer.validated_data
        tenant_id, agent_id = data.get("tenant_id", tenant_id), data.get("agent_id", agent_id)
        _required(tenant_id=tenant_id, agent_id=agent_id)
        activity = services.activity_heartbeat(tenant_id=tenant_id, agent_id=agent_id,
                                               ttl_seconds=data["ttl_seconds"])
        return ok(activity_representation(activity), message="Heartbeat recorded", tenant_id=tenant_id)

    @extend_schema(summary="List agent activity (online agents by default)", parameters=[ActivityFilterSerializer],
                   responses=paginated_envelope(ActivityOutputSerializer))
    def get(self, request):
        filters = parse_query(request, ActivityFilterSerializer)
        return paginated(self, selectors.activity_list(**filters), ActivityOutputSerializer,
                         message="Agent activity listed", filtered_by_tenant=filters.get("tenant_id"),
                         tenant_if_exists=selectors.tenant_id_if_exists)

    @extend_schema(summary="Go offline: delete the agent's activity row", parameters=[GoOfflineQuerySerializer],
                   request=None, responses=envelope(GoOfflineOutputSerializer))
    def delete(self, request):
        query = request.query_params
        tenant_id, agent_id = authorize_key_scope(request, tenant_id=query.get("tenant_id"),
                                                  agent_id=query.get("agent_id"))
        params = parse_query(request, GoOfflineQuerySerializer)
        explicit_tenant = params.get("tenant_id", tenant_id if is_agent_key_request(request) else None)
        agent_id = params.get("agent_id", agent_id)
        _required(agent_id=agent_id)
        result = services.activity_go_offline(agent_id=agent_id, tenant_id=explicit_tenant)
        return ok(GoOfflineOutputSerializer(result).data, message="Agent marked offline",
                  tenant_id=result["tenant_id"])


class UsageLogCreateMixin:
    def create_entry(self, request):
        body, tenant_id, agent_id = _scoped_body(request)
        serializer = UsageLogCreateInputSerializer(data=body)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("api_key", None)
        if is_agent_key_request(request):
            data.update(tenant_id=tenant_id, agent_id=agent_id, api_key_id=request.auth.api_key_id, verified=True)
        entry = services.usage_log_create(request_id=getattr(request, "request_id", ""), **data)
        return ok(UsageLogOutputSerializer(entry).data, message="Usage logged", tenant_id=entry.tenant_id)


_USAGE_EXAMPLE = OpenApiExample("Log an event", request_only=True, value={
    "tenant_id": "tenant_3f9a1c2b7d4e", "agent_id": "agent_8b2e6f1a9c30", "action": "message_sent",
    "details": {"chars": 42}, "timestamp": "2026-11-24T21:48:01Z"})


class UsageLogView(UsageLogCreateMixin, GenericAPIView):
    """GET = list (operator), POST = write an entry (operator or agent key)."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [AnyKeyPermission()]
        return [IsOperator()]

    @extend_schema(summary="List usage-log entries", parameters=[UsageLogFilterSerializer],
                   responses=paginated_envelope(UsageLogOutputSerializer))
    def get(self, request):
        filters = parse_query(request, UsageLogFilterSerializer)
        services.usage_log_store_pending()  # entries the fast lane accepted and not yet written behind
        tenant_id = filters.get("tenant_id")
        return paginated(self, selectors.usage_log_list(**filters), UsageLogOutputSerializer,
                         message="Usage log listed",
                         tenant_id=selectors.tenant_id_if_exists(tenant_id=tenant_id))

    @extend_schema(summary="Write a usage-log entry", request=UsageLogCreateInputSerializer,
                   responses=envelope(UsageLogOutputSerializer), examples=[_USAGE_EXAMPLE])
    def post(self, request):
        return self.create_entry(request)


class UsageLogV1View(UsageLogCreateMixin, APIView):
    """The original's `POST /api/v1/usage/log`, now persisted (same behaviour as the v2 POST)."""

    permission_classes = [AnyKeyPermission]

    @extend_schema(summary="Write a usage-log entry (compatibility route)", request=UsageLogCreateInputSerializer,
                   responses=envelope(UsageLogOutputSerializer), examples=[_USAGE_EXAMPLE],
                   operation_id="usage_log_v1_create")
    def post(self, request):
        return self.create_entry(request)


class UsageSummaryView(APIView):
    @extend_schema(summary="Usage counts per action and per UTC day", parameters=[UsageSummaryQuerySerializer],
                   responses=envelope(UsageSummaryOutputSerializer))
    def get(self, request):
        query = parse_query(request, UsageSummaryQuerySerializer)
        since, until = selectors.usage_summary_range(since=query.get("since"), until=query.get("until"))
        services.usage_log_store_pending()  # entries the fast lane accepted and not yet written behind
        tenant_id = query.get("tenant_id")
        summary = selectors.usage_log_summary(tenant_id=tenant_id, agent_id=query.get("agent_id"),
                                              since=since, until=until)
        return ok(UsageSummaryOutputSerializer(summary).data, message="Usage summarised",
                  tenant_id=selectors.tenant_id_if_exists(tenant_id=tenant_id))
