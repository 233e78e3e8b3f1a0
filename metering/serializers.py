"""Serializers of the usage summary route (`GET /api/v2/usage/summary`)."""

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from core.fields import ObjectIdFilterField, StrictDateTimeField
from metering.selectors import DAY, GRANULARITIES


class UsageCounterSummaryQuerySerializer(serializers.Serializer):
    tenant_id = ObjectIdFilterField(help_text=_("Only this tenant's usage."))
    agent_id = ObjectIdFilterField(help_text=_("Only this agent's usage."))
    since = StrictDateTimeField(required=False, help_text=_(
        "Start (ISO 8601, UTC when naive), rounded down to its hour or day. Default: until − 48 hours "
        "(hour) or until − 30 days (day)."))
    until = StrictDateTimeField(required=False, help_text=_(
        "End (ISO 8601), rounded up to the next whole hour or day. Default: now."))
    granularity = serializers.ChoiceField(choices=GRANULARITIES, default=DAY, required=False,
                                          help_text=_("One entry per UTC hour or per UTC day."))


class UsageFiguresOutputSerializer(serializers.Serializer):
    validation_accepted = serializers.IntegerField(help_text="Key verifications answered valid.")
    validation_refused = serializers.IntegerField(help_text="Key verifications refused (any AUTH code).")
    chat_requests = serializers.IntegerField(help_text="Chat calls answered, every route.")
    tokens_in = serializers.IntegerField(help_text="Prompt tokens.")
    tokens_out = serializers.IntegerField(help_text="Completion tokens.")
    upstream_errors = serializers.IntegerField(help_text="Chat calls the upstream model failed.")
    estimated_cost = serializers.FloatField(help_text="Tokens priced with the catalogue's price_in/price_out "
                                                      "(per million tokens).")


class UsageCounterTotalsOutputSerializer(UsageFiguresOutputSerializer):
    unpriced_tokens = serializers.IntegerField(help_text="Tokens of models the catalogue does not price.")


class UsageCounterPeriodOutputSerializer(UsageFiguresOutputSerializer):
    start = serializers.DateTimeField(help_text="Start of the UTC hour or day.")


class UsageCounterBreakdownsOutputSerializer(serializers.Serializer):
    validation_refused_by_code = serializers.DictField(child=serializers.IntegerField())
    chat_requests_by_route = serializers.DictField(child=serializers.IntegerField(),
                                                   help_text="chat, batch_item, openai")
    tokens_in_by_model = serializers.DictField(child=serializers.IntegerField())
    tokens_out_by_model = serializers.DictField(child=serializers.IntegerField())
    upstream_errors_by_code = serializers.DictField(child=serializers.IntegerField())


class UsageTopTenantOutputSerializer(serializers.Serializer):
    tenant_id = serializers.CharField()
    validations = serializers.IntegerField()
    chat_requests = serializers.IntegerField()
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    estimated_cost = serializers.FloatField()


class UsageTopAgentOutputSerializer(UsageTopTenantOutputSerializer):
    agent_id = serializers.CharField()


class UsageCounterSummaryOutputSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    granularity = serializers.ChoiceField(choices=GRANULARITIES)
    tenant_id = serializers.CharField(allow_null=True)
    agent_id = serializers.CharField(allow_null=True)
    totals = UsageCounterTotalsOutputSerializer()
    series = UsageCounterPeriodOutputSerializer(many=True)
    breakdowns = UsageCounterBreakdownsOutputSerializer()
    top_tenants = UsageTopTenantOutputSerializer(many=True)
    top_agents = UsageTopAgentOutputSerializer(many=True)
