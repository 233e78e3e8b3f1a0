"""Known fleet data for the console tests (dashboard figures are asserted against it)."""

from datetime import timedelta

from django.utils import timezone

from metering.services import Increment, counters_add


def seed_fleet(settings, tmp_path) -> dict:
    """Two tenants; agents online, offline and never seen; keys active, disabled, expiring; counters."""
    from activity.services import activity_heartbeat
    from activity.models import AgentActivity
    from agents import services as agent_services
    from apikeys.tests.factories import ApiKeyFactory
    from tenants.tests.factories import TenantFactory

    settings.MAIMBOT_MODEL_CONFIG_PATH = str(tmp_path / "absent.toml")  # built-in catalogue: GPT-4o 5/15
    now = timezone.now()
    acme = TenantFactory(tenant_name="Acme 机器人")
    beta = TenantFactory(tenant_name="Beta Labs")
    # Created through the service: creation writes a 12-hour activity row, yet no bot ever connected.
    never = agent_services.agent_create(tenant_id=acme.id, name="新助手", description=None, template_id=None,
                                        config={}, tags=[])
    online = agent_services.agent_create(tenant_id=acme.id, name="客服机器人", description=None, template_id=None,
                                         config={}, tags=[])
    offline = agent_services.agent_create(tenant_id=beta.id, name="Night bot", description=None, template_id=None,
                                          config={}, tags=[])
    activity_heartbeat(tenant_id=acme.id, agent_id=online.id, ttl_seconds=300)
    activity_heartbeat(tenant_id=beta.id, agent_id=offline.id, ttl_seconds=300)
    AgentActivity.objects.filter(agent_id=offline.id).update(expires_at=now - timedelta(minutes=1))

    ApiKeyFactory(agent=online, name="active key")
    ApiKeyFactory(agent=online, name="expiring key", expires_at=now + timedelta(days=3))
    ApiKeyFactory(agent=offline, name="disabled key", disabled_at=now - timedelta(days=1))

    hour = now - timedelta(hours=1)
    day = now - timedelta(days=3)
    counters_add(increments=[
        Increment(metric="validation.accepted", value=120, at=hour, tenant_id=acme.id, agent_id=online.id),
        Increment(metric="validation.accepted", value=30, at=day, tenant_id=beta.id, agent_id=offline.id),
        Increment(metric="validation.refused", value=7, at=hour, tenant_id=acme.id, dimension="AUTH_003"),
        Increment(metric="validation.refused", value=2, at=day, tenant_id=beta.id, dimension="AUTH_004"),
        Increment(metric="chat.requests", value=15, at=hour, tenant_id=acme.id, agent_id=online.id,
                  dimension="chat"),
        Increment(metric="chat.requests", value=5, at=day, tenant_id=beta.id, agent_id=offline.id,
                  dimension="openai"),
        Increment(metric="chat.tokens_in", value=400_000, at=hour, tenant_id=acme.id, agent_id=online.id,
                  dimension="GPT-4o"),
        Increment(metric="chat.tokens_out", value=100_000, at=hour, tenant_id=acme.id, agent_id=online.id,
                  dimension="GPT-4o"),
        Increment(metric="chat.upstream_errors", value=3, at=day, tenant_id=beta.id, agent_id=offline.id,
                  dimension="CHAT_003"),
    ])
    return {"acme": acme, "beta": beta, "never": never, "online": online, "offline": offline}
