"""Writes on plugin settings (spec §8). Every write of the API and the admin goes through here."""

import re
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from audit.models import AuditAction, AuditTarget
from audit.services import audit_record, snapshot
from core import generations
from core.errors import ErrorCode
from core.exceptions import ApplicationError, validation_error
from core.ids import unique_id
from core.validation import json_differs
from plugins.models import PLUGIN_NAME_MESSAGE, PLUGIN_NAME_PATTERN, PluginSetting

ID_PREFIX = "ps_"
_AUDITED = ("plugin_name", "agent_id", "enabled", "config")


def _audit(action: AuditAction, setting: PluginSetting, before: dict | None, after: dict | None) -> None:
    audit_record(action=action, target_type=AuditTarget.PLUGIN_SETTING, target_id=setting.pk,
                 tenant_id=setting.tenant_id, before=before, after=after)
_NAME = re.compile(PLUGIN_NAME_PATTERN)


def _lock_scope(*, tenant_id: str, agent_id: str | None):
    """The tenant, locked (SELECT … FOR UPDATE), and the agent: 404 TENANT_003 / AGENT_004.

    Locking the tenant row serializes concurrent upserts of one tenant, so the read-then-write below
    never races (no duplicate-key error, no lock upgrade deadlock on MariaDB).
    """
    from agents.models import Agent
    from tenants.models import Tenant

    tenant = Tenant.objects.select_for_update().filter(pk=tenant_id).first()
    if tenant is None:
        raise ApplicationError(ErrorCode.TENANT_003, (gettext("Tenant '%(tenant_id)s' does not exist.")
                                                      % {"tenant_id": tenant_id})[:200])
    agent = None
    if agent_id is not None:
        agent = Agent.objects.filter(pk=agent_id, tenant_id=tenant.pk).first()
        if agent is None:
            raise ApplicationError(ErrorCode.AGENT_004, (gettext("Agent '%(agent_id)s' does not exist in this tenant.")
                                                         % {"agent_id": agent_id})[:200],
                                   tenant_id=tenant.pk)
    return tenant, agent


def _check_values(*, plugin_name: str | None = None, config: Any = None) -> None:
    errors = {}
    if plugin_name is not None and not (isinstance(plugin_name, str) and _NAME.match(plugin_name)):
        errors["plugin_name"] = [str(PLUGIN_NAME_MESSAGE)]
    if config is not None and not isinstance(config, dict):
        errors["config"] = ["Must be a JSON object."]
    if errors:
        raise validation_error(errors)


def _apply(setting: PluginSetting, *, enabled: bool | None, config: dict | None) -> bool:
    before = snapshot(setting, _AUDITED)
    changed = []
    if enabled is not None and setting.enabled != enabled:
        setting.enabled = enabled
        changed.append("enabled")
    if config is not None and json_differs(setting.config, config):  # JSON-strict: 1, 1.0 and true differ
        setting.config = config
        changed.append("config")
    if changed:
        setting.updated_at = timezone.now()
        setting.save(update_fields=[*changed, "updated_at"])
        _audit(AuditAction.PLUGIN_SETTING_UPDATE, setting, before, snapshot(setting, _AUDITED))
    return bool(changed)


@transaction.atomic
def plugin_setting_upsert(
    *,
    tenant_id: str,
    plugin_name: str,
    agent_id: str | None = None,
    enabled: bool | None = None,
    config: dict | None = None,
) -> tuple[PluginSetting, bool]:
    """Create or update the setting of `(tenant, agent or default, plugin_name)`; returns `(setting, created)`.

    Create: `enabled` defaults to False and `config` to `{}`. Update: absent values stay unchanged,
    `config` is replaced wholesale. Atomic: concurrent upserts of one triple leave exactly one row.
    """
    _check_values(plugin_name=plugin_name, config=config)
    tenant, agent = _lock_scope(tenant_id=tenant_id, agent_id=agent_id)
    scope = agent.pk if agent else ""
    lookup = {"tenant_id": tenant.pk, "agent_scope": scope, "plugin_name": plugin_name}
    existing = PluginSetting.objects.select_for_update().filter(**lookup).first()
    if existing is None:
        now = timezone.now()
        setting = PluginSetting(id=unique_id(PluginSetting, ID_PREFIX), agent=agent, tenant=tenant,
                                agent_scope=scope, plugin_name=plugin_name, enabled=bool(enabled),
                                config=config if config is not None else {}, created_at=now, updated_at=now)
        try:
            with transaction.atomic():
                setting.save(force_insert=True)
            _audit(AuditAction.PLUGIN_SETTING_CREATE, setting, None, snapshot(setting, _AUDITED))
            return setting, True
        except IntegrityError:
            # Only reachable when a writer bypassed the tenant lock; the row exists now.
            existing = PluginSetting.objects.select_for_update().filter(**lookup).first()
            if existing is None:
                raise
    existing.tenant, existing.agent = tenant, agent
    _apply(existing, enabled=enabled, config=config)
    return existing, False


@transaction.atomic
def plugin_setting_update(*, setting: PluginSetting, data: dict[str, Any]) -> PluginSetting:
    """Partial update (spec §8.2): `enabled` and/or `config` (replaced); the identity never changes."""
    _check_values(config=data.get("config"))
    _apply(setting, enabled=data.get("enabled"), config=data.get("config"))
    return setting


@transaction.atomic
def plugin_setting_delete(*, setting: PluginSetting) -> dict[str, Any]:
    """Delete one row. A tenant default's deletion leaves the agents' overrides untouched."""
    result = {"id": setting.pk, "tenant_id": setting.tenant_id, "deleted_at": timezone.now()}
    if PluginSetting.objects.filter(pk=setting.pk).delete()[0]:
        _audit(AuditAction.PLUGIN_SETTING_DELETE, setting, snapshot(setting, _AUDITED), None)
        # The read cache (a post_delete receiver would cost agent deletions their fast cascade delete).
        generations.bump((generations.plugins(setting.tenant_id),))
    return result
