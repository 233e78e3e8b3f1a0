"""Reads on plugin settings (spec §8): tenant defaults, agent overrides and the merged view."""

import re

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
