"""Writes on agents and their configuration documents. The API and the admin both go through here.

Every function runs in one transaction: nothing is written unless every check passes (spec §1.15,
agent-config.md §1). Config writes lock the agent row so concurrent merges never lose each other.
"""

import json
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from agents import configdoc
from agents.models import Agent, AgentConfigVersion
from audit.models import AuditAction, AuditTarget
from audit.services import audit_record, changes_between, snapshot
from core import generations
from core.context import current_actor, current_request_id
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.ids import unique_id
from core.models import casefold_name

AGENT_NAME_TAKEN = "An agent named '{name}' already exists in this tenant."
TENANT_MISSING = "Tenant '{tenant_id}' does not exist."
TENANT_INACTIVE = "Tenant '{tenant_id}' is not active; agents can only be created in an active tenant."
CONSTRAINT_NAME = "agent_name_unique_ci_per_tenant"

_UPDATABLE = ("name", "description", "template_id", "status", "tags")


def _differs(old: Any, new: Any) -> bool:
    """Stored value changed? JSON-strict: `1`, `1.0` and `true` differ (Python's `==` equates them)."""
    return old != new or json.dumps(old, sort_keys=True) != json.dumps(new, sort_keys=True)


def _name_taken(tenant_id: str, name: str, *, exclude_id: str | None = None) -> bool:
    query = Agent.objects.filter(tenant_id=tenant_id, name_key=casefold_name(name))
    if exclude_id:
        query = query.exclude(pk=exclude_id)
    return query.exists()


def _name_conflict(agent: Agent) -> ApplicationError:
    return ApplicationError(ErrorCode.AGENT_002, AGENT_NAME_TAKEN.format(name=agent.name), tenant_id=agent.tenant_id)


def _save_unique(agent: Agent, **save_kwargs) -> None:
    """Save, turning a lost race on the (tenant, name_key) constraint into AGENT_002 (never a 500)."""
    try:
        with transaction.atomic():
            agent.save(**save_kwargs)
    except IntegrityError as exc:
        text = str(exc)
        if CONSTRAINT_NAME in text or "name_key" in text or _name_taken(
            agent.tenant_id, agent.name, exclude_id=agent.pk if save_kwargs.get("force_update") else None
        ):
            raise _name_conflict(agent) from None
        raise


def _config_write(stored: dict, request_doc: Any, *, mode: str, on_agent_route: bool,
                  tenant_id: str | None = None) -> dict:
    """Run the document pipeline; error paths are prefixed `config.` on the agent routes."""
    try:
        if on_agent_route:
            return configdoc.prepare_write(stored, request_doc, mode=mode, prefix="config", whole_key="config")
        return configdoc.prepare_write(stored, request_doc, mode=mode)
    except ApplicationError as exc:
        exc.tenant_id = tenant_id
        raise


# What the audit trail records of an agent besides its configuration (whose diff it records by path).
_AUDITED = ("name", "description", "template_id", "status", "tags")
VERSION_MISSING = "Agent '{agent_id}' has no configuration version {number}."


def _audit(action: AuditAction, agent: Agent, before: dict | None, after: dict | None) -> None:
    audit_record(action=action, target_type=AuditTarget.AGENT, target_id=agent.pk, tenant_id=agent.tenant_id,
                 before=before, after=after)


def _record_version(agent: Agent, *, previous: dict | None, source: str,
                    restored_from: int | None = None) -> AgentConfigVersion:
    """Store `agent.config` as the agent's next version and move `agent.config_version` (the caller saves
    the agent with `config_version` in its update fields). The agent row must be locked by the caller (or
    be new), so numbers never collide; the (agent, number) constraint backs that up."""
    number = 1 if previous is None else agent.config_version + 1
    version = AgentConfigVersion(
        agent=agent, number=number, created_at=timezone.now(), actor=current_actor()[:200],
        request_id=current_request_id(), source=source, restored_from=restored_from,
        document=agent.config or {}, changes=changes_between(previous, agent.config or {}),
    )
    version.save(force_insert=True)
    agent.config_version = number
    return version


def dedupe_tags(tags: list[str] | None) -> list[str]:
    """Exact duplicates removed, first occurrence kept (spec §4.2)."""
    return list(dict.fromkeys(tags or []))


@transaction.atomic
def agent_create(
    *,
    tenant_id: str,
    name: str,
    description: str | None = None,
    template_id: str | None = None,
    config: Any = None,
    tags: list[str] | None = None,
) -> Agent:
    """Create an active agent and mark it online for MAIMCONFIG_NEW_AGENT_TTL_SECONDS (spec §4.2).

    Order: config (AGENT_012, AGENT_011) -> tenant exists (AGENT_001) and is active (TENANT_008) -> name
    free (AGENT_002) -> insert -> activity row.
    """
    from activity.services import activity_upsert
    from tenants.models import Tenant

    document = _config_write({}, {} if config is None else config, mode="replace", on_agent_route=True)
    tenant = Tenant.objects.filter(pk=tenant_id).first() if isinstance(tenant_id, str) else None
    if tenant is None:
        raise ApplicationError(ErrorCode.AGENT_001, TENANT_MISSING.format(tenant_id=str(tenant_id)[:100]))
    if not tenant.is_active:
        raise ApplicationError(ErrorCode.TENANT_008, TENANT_INACTIVE.format(tenant_id=tenant.pk),
                               tenant_id=tenant.pk)
    agent = Agent(
        id=unique_id(Agent, "agent_"),
        tenant=tenant,
        name=name,
        name_key=casefold_name(name),
        description=description,
        template_id=template_id,
        config=document,
        tags=dedupe_tags(tags),
        status=Agent.Status.ACTIVE,
    )
    if _name_taken(tenant.pk, name):
        raise _name_conflict(agent)
    agent.full_clean(exclude=["id", "name_key", "tenant", "config", "tags"], validate_unique=False,
                     validate_constraints=False)
    agent.config_version = 1
    _save_unique(agent, force_insert=True)
    _record_version(agent, previous=None, source=AgentConfigVersion.Source.CREATE)
    _audit(AuditAction.AGENT_CREATE, agent, None, {**snapshot(agent, _AUDITED), "config": agent.config})
    activity_upsert(agent=agent, ttl_seconds=settings.MAIMCONFIG_NEW_AGENT_TTL_SECONDS)
    return agent


def _locked(agent: Agent) -> Agent:
    return Agent.objects.select_for_update().get(pk=agent.pk)


@transaction.atomic
def agent_update(*, agent: Agent, data: dict[str, Any]) -> Agent:
    """Partial update (spec §4.5). `config` is deep-merged into the stored document (`None` resets it
    to `{}`); `tags` `None` means `[]`. Order: AGENT_012 -> AGENT_011 -> AGENT_002. A status change
    away from `active` deletes the activity row (the agent goes offline)."""
    agent = _locked(agent)
    values = {key: data[key] for key in _UPDATABLE if key in data}
    if "tags" in values:
        values["tags"] = dedupe_tags(values["tags"])
    if "config" in data:
        if data["config"] is None:
            values["config"] = {}
        else:
            values["config"] = _config_write(agent.config or {}, data["config"], mode="merge", on_agent_route=True,
                                             tenant_id=agent.tenant_id)
    changed = [field for field, value in values.items() if _differs(getattr(agent, field), value)]
    if not changed:
        return agent
    before = {**snapshot(agent, _AUDITED), "config": agent.config or {}, "config_version": agent.config_version}
    was_active = agent.is_active
    for field in changed:
        setattr(agent, field, values[field])
    if "name" in changed:
        if _name_taken(agent.tenant_id, agent.name, exclude_id=agent.pk):
            raise _name_conflict(agent)
        agent.name_key = casefold_name(agent.name)
        changed.append("name_key")
    agent.full_clean(exclude=["id", "name_key", "tenant", "config", "tags"], validate_unique=False,
                     validate_constraints=False)
    agent.updated_at = timezone.now()
    if "config" in changed:
        _record_version(agent, previous=before["config"], source=AgentConfigVersion.Source.UPDATE)
        changed.append("config_version")
    _save_unique(agent, force_update=True, update_fields=[*changed, "updated_at"])
    only_config = set(changed) <= {"config", "config_version"}
    _audit(AuditAction.AGENT_CONFIG_UPDATE if only_config else AuditAction.AGENT_UPDATE, agent, before,
           {**snapshot(agent, _AUDITED), "config": agent.config or {}, "config_version": agent.config_version})
    if was_active and not agent.is_active:
        from activity.services import activity_delete_for_agent

        activity_delete_for_agent(agent=agent)
    return agent


@transaction.atomic
def agent_config_write(*, agent: Agent, document: Any, mode: str = "merge") -> Agent:
    """`PUT`/`PATCH /agents/{id}/config` (spec §4.7): merge (default) or replace, validate, store.
    `updated_at` moves only when the stored document changed."""
    agent = _locked(agent)
    stored = agent.config or {}
    new_document = _config_write(stored, document, mode=mode, on_agent_route=False, tenant_id=agent.tenant_id)
    if _differs(stored, new_document):
        _store_config(agent, new_document, source=AgentConfigVersion.Source.UPDATE,
                      action=AuditAction.AGENT_CONFIG_UPDATE)
    return agent


def _store_config(agent: Agent, document: dict, *, source: str, action: AuditAction,
                  restored_from: int | None = None) -> AgentConfigVersion:
    """Write a changed document on the locked agent: the row, the next version, one audit event."""
    previous = agent.config or {}
    agent.config = document
    agent.updated_at = timezone.now()
    version = _record_version(agent, previous=previous, source=source, restored_from=restored_from)
    agent.save(update_fields=["config", "config_version", "updated_at"])
    changes = dict(version.changes)
    changes["config_version"] = [version.number - 1, version.number]
    if restored_from is not None:
        changes["restored_from"] = [None, restored_from]
    audit_record(action=action, target_type=AuditTarget.AGENT, target_id=agent.pk, tenant_id=agent.tenant_id,
                 changes={f"config.{path}" if path not in ("config_version", "restored_from") else path: pair
                          for path, pair in changes.items()})
    return version


def config_version_get(*, agent: Agent, number: Any) -> AgentConfigVersion:
    """Version `number` of the agent, or 404 AGENT_014."""
    version = None
    if isinstance(number, int) and not isinstance(number, bool) and 1 <= number <= 2**31 - 1:
        version = AgentConfigVersion.objects.filter(agent_id=agent.pk, number=number).first()
    if version is None:
        raise ApplicationError(ErrorCode.AGENT_014, VERSION_MISSING.format(agent_id=agent.pk, number=number),
                               tenant_id=agent.tenant_id)
    return version


@transaction.atomic
def agent_config_rollback(*, agent: Agent, version: int) -> Agent:
    """Make the document of version `version` current again, as version n+1 (issue 17).

    Same checks as any write, against today's schema and system catalogue: AGENT_012 if the document is
    no longer valid, AGENT_011 if a provider it defines or uses is now a system provider; then nothing
    changes. Provider keys come back exactly as they were stored in that version (still encrypted; a key
    rotated since then is the old key again). Rolling back to a document equal to the current one
    changes nothing and creates no version.
    """
    agent = _locked(agent)
    target = config_version_get(agent=agent, number=version)
    doc = configdoc.load_stored(target.document)
    try:
        configdoc.validate_document(doc)
        configdoc.check_system_providers(doc)
    except ApplicationError as exc:
        exc.tenant_id = agent.tenant_id
        raise
    new_document = configdoc.to_storage(doc, previous=agent.config or {})
    if _differs(agent.config or {}, new_document):
        _store_config(agent, new_document, source=AgentConfigVersion.Source.ROLLBACK,
                      action=AuditAction.AGENT_CONFIG_ROLLBACK, restored_from=target.number)
    return agent


@transaction.atomic
def agent_delete(*, agent: Agent) -> dict[str, Any]:
    """Hard delete; the database cascades to keys, activity, plugin settings and chat (spec §4.6)."""
    agent_id = agent.pk
    before = snapshot(agent, _AUDITED)
    if Agent.objects.filter(pk=agent_id).delete()[0]:
        _audit(AuditAction.AGENT_DELETE, agent, before, None)
    return {"id": agent_id, "agent_id": agent_id, "deleted_at": timezone.now()}


def agent_reencrypt_provider_keys(*, agent_id: str, dry_run: bool = False) -> tuple[int, list[str]]:
    """Rewrite the agent's stored provider keys under the current secrets key (after a key change,
    agent-config.md §8). Returns `(re-encrypted count, names of providers whose key no configured key
    decrypts)`; those are left untouched. The row is locked; `updated_at` does not move, since the
    document means the same. With `dry_run` nothing is written."""
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent_id)
        document, rotated, failed = configdoc.reencrypt_document(agent.config or {})
        if rotated and not dry_run:
            Agent.objects.filter(pk=agent.pk).update(config=document)
            generations.bump((generations.agent(agent.pk),))  # an update() sends no post_save
        if not dry_run:
            # The stored versions too, so a rollback after the old key is retired still decrypts. Keys
            # no configured key decrypts stay as they are (the agent's own are reported above).
            for version in AgentConfigVersion.objects.filter(agent_id=agent.pk).only("pk", "document"):
                version_doc, version_rotated, _failed = configdoc.reencrypt_document(version.document or {})
                if version_rotated:
                    AgentConfigVersion.objects.filter(pk=version.pk).update(document=version_doc)
    return rotated, failed
