"""`GET /api/v2/usage/summary`: the usage counters summed per hour or day (operators only)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.views import APIView

from core.api import ok
from core.exceptions import validation_error
from core.openapi import envelope, parse_query
from metering import selectors
from metering.serializers import UsageCounterSummaryOutputSerializer, UsageCounterSummaryQuerySerializer

_EXAMPLE = {
    "since": "2026-11-27T16:00:00.000000Z", "until": "2026-11-29T16:00:00.000000Z", "granularity": "hour",
    "tenant_id": None, "agent_id": None,
    "totals": {"validation_accepted": 1200, "validation_refused": 14, "chat_requests": 310, "tokens_in": 51200,
               "tokens_out": 20480, "upstream_errors": 2, "estimated_cost": 0.5632, "unpriced_tokens": 0},
    "series": [{"start": "2026-11-27T16:00:00.000000Z", "validation_accepted": 25, "validation_refused": 0,
                "chat_requests": 6, "tokens_in": 1000, "tokens_out": 400, "upstream_errors": 0,
                "estimated_cost": 0.011}],
    "breakdowns": {"validation_refused_by_code": {"AUTH_003": 10, "AUTH_004": 4},
                   "chat_requests_by_route": {"chat": 200, "openai": 100, "batch_item": 10},
                   "tokens_in_by_model": {"GPT-4o": 51200}, "tokens_out_by_model": {"GPT-4o": 20480},
                   "upstream_errors_by_code": {"CHAT_002": 2}},
    "top_tenants": [{"tenant_id": "tenant_3f9a1c2b7d4e", "validations": 1214, "chat_requests": 310,
                     "tokens_in": 51200, "tokens_out": 20480, "estimated_cost": 0.5632}],
    "top_agents": [{"agent_id": "agent_8b2e6f1a9c30", "tenant_id": "tenant_3f9a1c2b7d4e", "validations": 1214,
                    "chat_requests": 310, "tokens_in": 51200, "tokens_out": 20480, "estimated_cost": 0.5632}],
}


class UsageCounterSummaryView(APIView):
    @extend_schema(
        summary="Usage of the fleet per hour or day (validations, chat, tokens, cost)",
        description=(
            "Sums of the usage counters kept as traffic flows (key verifications, chat on every route, "
            "tokens per model, upstream errors), over `[since, until)` in whole UTC hours or days; every "
            "period is listed, zeros included. `estimated_cost` prices tokens with the system catalogue's "
            "`price_in`/`price_out` (per million tokens); tokens of models it does not price are counted in "
            "`totals.unpriced_tokens`. At most 744 hours or 366 days. Operators only."
        ),
        parameters=[UsageCounterSummaryQuerySerializer],
        responses=envelope(UsageCounterSummaryOutputSerializer),
        examples=[OpenApiExample("Last 48 hours", value=_EXAMPLE, response_only=True)],
    )
    def get(self, request):
        query = parse_query(request, UsageCounterSummaryQuerySerializer)
        granularity = query.get("granularity") or selectors.DAY
        if query.get("since") and query.get("until") and query["since"] >= query["until"]:
            raise validation_error({"until": [str(_("The range is empty: since must be before until."))]})
        path = "until" if query.get("until") else "since"
        try:
            since, until = selectors.default_range(granularity=granularity, now=timezone.now(),
                                                   since=query.get("since"), until=query.get("until"))
        except OverflowError:  # aligning a date near year 1 or 9999 leaves the calendar
            since = None
        if since is None or since.year < 1000:  # dates are written with four-digit years (spec §1.9)
            raise validation_error({path: [str(_("The range must stay within the years 1000 to 9998."))]})
        periods = selectors.period_count(since=since, until=until, granularity=granularity)
        if periods <= 0:
            raise validation_error({path: [str(_("The range is empty: since must be before until."))]})
        if periods > selectors.MAX_PERIODS[granularity]:
            raise validation_error({path: [str(_("The range must not be longer than %(count)d periods.")
                                               % {"count": selectors.MAX_PERIODS[granularity]})]})
        tenant_id, agent_id = query.get("tenant_id") or None, query.get("agent_id") or None
        summary = selectors.usage_summary(since=since, until=until, granularity=granularity,
                                          tenant_id=tenant_id, agent_id=agent_id)
        return ok(UsageCounterSummaryOutputSerializer(summary).data, message=_("Usage summarised"),
                  tenant_id=selectors.existing_tenant_id(tenant_id))
