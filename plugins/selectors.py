"""Reads on plugin settings (spec §8): tenant defaults, agent overrides and the merged view."""

import re
from functools import cache

from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext

from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import id_pattern
from plugins.models import PluginSetting
from tenants.selectors import tenant_id_if_exists  # noqa: F401  (re-exported for the views)

_ID = re.compile(id_pattern("ps_"))


def plugin_setting_list(*, tenant_id: str, agent_id: str | None = None, merged: bool = True,
                        plugin_name: str | None = None) -> QuerySet[PluginSetting]:
    """Newest first. Without `agent_id`: the tenant defaults. With it: the merged view (each plugin's
    override if the agent has one, else the default; the whole row wins), or only the overrides when
    `merged` is False. An agent outside the tenant matches nothing. One query, computed in the database.
    """
    from agents.models import Agent

    query = PluginSetting.objects.filter(tenant_id=tenant_id)
    if plugin_name is not None:
        query = query.filter(plugin_name=plugin_name)
    if agent_id is None:
        query = query.filter(agent_scope="")
    else:
        query = query.filter(Exists(Agent.objects.filter(pk=agent_id, tenant_id=tenant_id)))
        if merged:
            overridden = PluginSetting.objects.filter(tenant_id=OuterRef("tenant_id"), agent_scope=agent_id,
                                                      plugin_name=OuterRef("plugin_name"))
            query = query.filter(Q(agent_scope=agent_id) | Q(agent_scope="") & ~Exists(overridden))
        else:
            query = query.filter(agent_scope=agent_id)
    return query.order_by("-created_at", "-id")


@cache
def _v1_sql(vendor: str, with_agent: bool) -> str:
    """The v1 list's SELECT, built once per database vendor and shape: the same rows and order as
    `plugin_setting_list(merged=True)`, written by hand (compiling the ORM query cost more client CPU than
    running it on this bot-facing route)."""
    from agents.models import Agent

    qn = connection.ops.quote_name
    table, col = qn(PluginSetting._meta.db_table), lambda name: qn(PluginSetting._meta.get_field(name).column)
    select = (f"SELECT p.{col('plugin_name')}, p.{col('enabled')}, p.{col('config')} FROM {table} p "
              f"WHERE p.{col('tenant')} = %s")
    order = f" ORDER BY p.{col('created_at')} DESC, p.{col('id')} DESC"
    if not with_agent:
        return f"{select} AND p.{col('agent_scope')} = ''{order}"
    return (
        f"{select} AND EXISTS (SELECT 1 FROM {qn(Agent._meta.db_table)} a WHERE a.{qn('id')} = %s "
        f"AND a.{qn('tenant_id')} = %s) "
        f"AND (p.{col('agent_scope')} = %s OR (p.{col('agent_scope')} = '' AND NOT EXISTS ("
        f"SELECT 1 FROM {table} o WHERE o.{col('tenant')} = p.{col('tenant')} AND o.{col('agent_scope')} = %s "
        f"AND o.{col('plugin_name')} = p.{col('plugin_name')}))){order}"
    )


def plugin_setting_v1_list(*, tenant_id: str, agent_id: str | None = None) -> list[dict]:
    """`GET /api/v1/plugins/settings`: `[{plugin_name, enabled, config}]`, the rows of
    `plugin_setting_list(tenant_id=…, agent_id=…, merged=True)` in its order, from one prepared statement
    and without model instances."""
    params = [tenant_id] if agent_id is None else [tenant_id, agent_id, tenant_id, agent_id, agent_id]
    config_field = PluginSetting._meta.get_field("config")
    with connection.cursor() as cursor:
        cursor.execute(_v1_sql(connection.vendor, agent_id is not None), params)
        rows = cursor.fetchall()
    return [{"plugin_name": name, "enabled": bool(enabled),
             "config": config_field.from_db_value(config, None, connection)} for name, enabled, config in rows]


def plugin_setting_get(*, setting_id: str, tenant_id: str | None = None,
                       agent_id: str | None = None) -> PluginSetting:
    """The setting, or PLUGIN_001. With `tenant_id`/`agent_id` (an agent key's scope) only a default of
    that tenant or that agent's override is visible; anything else is the same 404."""
    setting = None
    if isinstance(setting_id, str) and _ID.match(setting_id):
        query = PluginSetting.objects.filter(pk=setting_id)
        if tenant_id is not None:
            query = query.filter(tenant_id=tenant_id).filter(Q(agent_scope="") | Q(agent_scope=agent_id or ""))
        setting = query.first()
    if setting is None:
        raise ApplicationError(ErrorCode.PLUGIN_001, (gettext("Plugin setting '%(setting_id)s' does not exist.")
                                                      % {"setting_id": setting_id})[:200])
    return setting
