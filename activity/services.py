"""Writes on agent activity (heartbeats) and the usage log."""

from datetime import datetime, timedelta
from functools import cache
from typing import Any

from django.db import OperationalError, connection, transaction
from django.utils import timezone

from activity.models import AgentActivity, UsageLog
from core import generations
from core.errors import ErrorCode
from core.exceptions import ApplicationError

DEFAULT_TTL_SECONDS = 300
MAX_TTL_SECONDS = 7 * 24 * 3600

# MySQL/MariaDB error numbers after which a single-statement upsert outside a transaction is retried.
_RETRYABLE_MYSQL_ERRORS = {1213, 1205}  # deadlock found, lock wait timeout
_UPSERT_ATTEMPTS = 3


# --- Heartbeats -----------------------------------------------------------------------------------

def activity_upsert(*, agent, ttl_seconds: int) -> AgentActivity:
    """Mark `agent` alive for `ttl_seconds` from now: one atomic upsert on the unique agent row."""
    now = timezone.now()
    values = {"tenant_id": agent.tenant_id, "last_seen_at": now, "ttl_seconds": ttl_seconds,
              "expires_at": now + timedelta(seconds=ttl_seconds)}
    AgentActivity.objects.bulk_create(
        [AgentActivity(agent_id=agent.pk, **values)],
        update_conflicts=True,
        # MySQL/MariaDB upsert on any unique key (ON DUPLICATE KEY) and refuse `unique_fields`.
        unique_fields=None if connection.vendor == "mysql" else ["agent"],
        update_fields=["last_seen_at", "ttl_seconds", "expires_at"],
    )
    return AgentActivity(agent_id=agent.pk, **values)


@cache
def _heartbeat_sql(vendor: str) -> str:
    """INSERT … SELECT guarded by the tenant/agent checks, upserting on the agent (the primary key)."""
    from agents.models import Agent
    from tenants.models import Tenant

    q = connection.ops.quote_name
    activity, agent, tenant = (q(m._meta.db_table) for m in (AgentActivity, Agent, Tenant))
    columns = ("tenant_id", "last_seen_at", "ttl_seconds", "expires_at", "heartbeat_at")
    insert = (
        f"INSERT INTO {activity} ({q('agent_id')}, {', '.join(q(c) for c in columns)}) "
        f"SELECT a.{q('id')}, a.{q('tenant_id')}, %s, %s, %s, %s FROM {agent} a "
        f"INNER JOIN {tenant} t ON t.{q('id')} = a.{q('tenant_id')} "
        f"WHERE a.{q('id')} = %s AND a.{q('tenant_id')} = %s AND a.{q('status')} = %s AND t.{q('status')} = %s "
    )
    if vendor == "mysql":
        updates = ", ".join(f"{q(c)} = VALUES({q(c)})" for c in columns)
        return insert + f"ON DUPLICATE KEY UPDATE {updates}"
    updates = ", ".join(f"{q(c)} = excluded.{q(c)}" for c in columns)
    return insert + f"ON CONFLICT ({q('agent_id')}) DO UPDATE SET {updates}"


def _refusal(reason: str, status: int, sentence: str, tenant_id: str | None = None) -> ApplicationError:
    return ApplicationError(ErrorCode.ACTIVITY_002, sentence, status=status, data={"reason": reason},
                            tenant_id=tenant_id)


def _heartbeat_refusal(*, tenant_id: str, agent_id: str) -> ApplicationError | None:
    """Why a heartbeat for (tenant_id, agent_id) is refused (spec §7.2), or None if it is not."""
    from agents.models import Agent
    from tenants.models import Tenant

    tenant = Tenant.objects.filter(pk=tenant_id).values("status").first()
    if tenant is None:
        return _refusal("tenant_not_found", 404, "The tenant does not exist.")
    agent = Agent.objects.filter(pk=agent_id).values("tenant_id", "status").first()
    if agent is None:
        return _refusal("agent_not_found", 404, "The agent does not exist.", tenant_id)
    if agent["tenant_id"] != tenant_id:
        return _refusal("agent_tenant_mismatch", 404, "The agent does not belong to this tenant.", tenant_id)
    if tenant["status"] != Tenant.Status.ACTIVE:
        return _refusal("tenant_not_active", 409, "The tenant is not active.", tenant_id)
    if agent["status"] != Agent.Status.ACTIVE:
        return _refusal("agent_not_active", 409, "The agent is not active.", tenant_id)
    return None


def activity_heartbeat(*, tenant_id: str, agent_id: str, ttl_seconds: int = DEFAULT_TTL_SECONDS) -> AgentActivity:
    """Record a heartbeat (spec §7.2).

    The hot path is ONE statement: an upsert whose SELECT part only yields a row when the agent exists,
    belongs to the tenant, and both are active. Only when nothing was written does a second look find
    the reason (ACTIVITY_002). Outside a transaction a deadlock or lock timeout is retried.
    """
    from agents.models import Agent
    from tenants.models import Tenant

    now = timezone.now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    adapt = connection.ops.adapt_datetimefield_value
    params = [adapt(now), ttl_seconds, adapt(expires_at), adapt(now), agent_id, tenant_id, Agent.Status.ACTIVE,
              Tenant.Status.ACTIVE]
    sql = _heartbeat_sql(connection.vendor)
    for attempt in range(_UPSERT_ATTEMPTS):
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                written = cursor.rowcount
        except OperationalError as exc:
            if (connection.vendor != "mysql" or connection.in_atomic_block
                    or exc.args[0] not in _RETRYABLE_MYSQL_ERRORS or attempt == _UPSERT_ATTEMPTS - 1):
                raise
            continue
        if written:
            break
        refusal = _heartbeat_refusal(tenant_id=tenant_id, agent_id=agent_id)
        if refusal is not None:
            raise refusal
        # The agent or tenant changed between the two statements: try again.
    else:  # pragma: no cover - only after repeated races with status changes
        raise _refusal("agent_not_found", 404, "The agent does not exist.", tenant_id)
    generations.bump((generations.activity(tenant_id),))  # the read cache's activity lists (raw SQL: no signal)
    return AgentActivity(agent_id=agent_id, tenant_id=tenant_id, last_seen_at=now, ttl_seconds=ttl_seconds,
                         expires_at=expires_at, heartbeat_at=now)


def activity_go_offline(*, agent_id: str, tenant_id: str | None = None) -> dict[str, Any]:
    """Delete the agent's activity row (spec §7.4); idempotent."""
    from agents.models import Agent

    agent = Agent.objects.filter(pk=agent_id).values("tenant_id").first()
    if agent is None:
        raise _refusal("agent_not_found", 404, "The agent does not exist.")
    if tenant_id is not None and agent["tenant_id"] != tenant_id:
        raise _refusal("agent_tenant_mismatch", 404, "The agent does not belong to this tenant.")
    now = timezone.now()
    with transaction.atomic():
        row = AgentActivity.objects.select_for_update().filter(agent_id=agent_id).values("expires_at").first()
        if row is not None:
            AgentActivity.objects.filter(agent_id=agent_id).delete()
    return {"tenant_id": agent["tenant_id"], "agent_id": agent_id,
            "was_online": row is not None and row["expires_at"] > now, "offline_at": now}


def activity_purge_expired(*, older_than: timedelta | None = None, now: datetime | None = None) -> int:
    """Delete rows expired at `now` (or expired for longer than `older_than`); returns how many."""
    cutoff = (now or timezone.now()) - (older_than or timedelta(0))
    return AgentActivity.objects.filter(expires_at__lte=cutoff).delete()[0]


def activity_delete_for_agent(*, agent) -> int:
    return AgentActivity.objects.filter(agent_id=agent.pk).delete()[0]


def activity_delete_for_tenant(*, tenant) -> int:
    return AgentActivity.objects.filter(tenant_id=tenant.pk).delete()[0]


# --- Usage log ------------------------------------------------------------------------------------

def usage_log_create(
    *,
    action: str,
    tenant_id: str | None = None,
    agent_id: str | None = None,
    api_key_id: str | None = None,
    user_id: str | None = None,
    details: dict | None = None,
    timestamp: datetime | None = None,
    request_id: str = "",
    verified: bool = False,
) -> UsageLog:
    """Persist a usage-log entry (spec §9.2).

    `verified=True` means the caller (an agent key's verification) already established that the tenant
    and agent exist and belong together: the write is then a single INSERT with no reads.
    """
    if not verified:
        tenant_id, agent_id = _usage_scope(tenant_id=tenant_id, agent_id=agent_id)
    now = timezone.now()
    entry = UsageLog(tenant_id=tenant_id, agent_id=agent_id, api_key_id=api_key_id, user_id=user_id,
                     action=action, details=details, timestamp=timestamp or now, request_id=request_id or "",
                     created_at=now)
    entry.save(force_insert=True)
    return entry


def usage_log_store_pending() -> None:
    """Store the usage-log entries the fast lane queued in Redis (activity.writebehind) before a read of the
    usage log, so the read misses none of them. A no-op without Redis or with nothing queued."""
    from activity import writebehind

    writebehind.flush_before_read()


def _usage_scope(*, tenant_id: str | None, agent_id: str | None) -> tuple[str | None, str | None]:
    from agents.models import Agent
    from tenants.models import Tenant

    if tenant_id is not None and not Tenant.objects.filter(pk=tenant_id).exists():
        raise ApplicationError(ErrorCode.TENANT_003, "The tenant does not exist.")
    if agent_id is not None:
        owner = Agent.objects.filter(pk=agent_id).values_list("tenant_id", flat=True).first()
        if owner is None:
            raise ApplicationError(ErrorCode.AGENT_004, "The agent does not exist.", tenant_id=tenant_id)
        if tenant_id is not None and owner != tenant_id:
            raise ApplicationError(ErrorCode.AGENT_004, "The agent does not belong to this tenant.",
                                   tenant_id=tenant_id)
        tenant_id = owner
    return tenant_id, agent_id
