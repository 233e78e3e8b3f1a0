"""`GET /api/v2/audit-events` (operator only)."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import generics

from audit import selectors
from audit.serializers import AuditEventFilterSerializer, AuditEventOutputSerializer
from core.api import paginated
from core.openapi import paginated_envelope, parse_query
from core.permissions import IsOperator

_EXAMPLE = OpenApiExample(
    "Who changed this bot's persona",
    value={"id": 4182, "occurred_at": "2026-11-29T16:02:11.524310Z", "actor": "operator:alice",
           "action": "agent.config.update", "target_type": "agent", "target_id": "agent_8b2e6f1a9c30",
           "tenant_id": "tenant_3f9a1c2b7d4e", "request_id": "6f1c2d9e-8a4b-4c3d-9e2f-1a2b3c4d5e6f",
           "changes": {"persona": ["A terse helper.", "A cheerful helper who answers briefly."]}},
    response_only=True,
)


class AuditEventListView(generics.GenericAPIView):
    permission_classes = [IsOperator]

    @extend_schema(
        summary="List audit events (newest first)",
        description="Every write of tenants, agents and their configuration, API keys, plugin settings, chat "
                    "conversations and operator tokens, through the API, the admin or a management command, "
                    "with its actor, request id and the changed fields (secrets masked). Filters are exact "
                    "and combine; `since` is inclusive, `until` exclusive. Operator only.",
        parameters=[AuditEventFilterSerializer],
        responses=paginated_envelope(AuditEventOutputSerializer),
        examples=[_EXAMPLE],
        tags=["audit"],
    )
    def get(self, request):
        filters = parse_query(request, AuditEventFilterSerializer)
        return paginated(self, selectors.audit_event_list(**filters), AuditEventOutputSerializer,
                         message=_("Audit events listed"),
                         tenant_id=selectors.existing_tenant_id(filters.get("tenant_id")))
