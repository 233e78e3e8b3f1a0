"""Invalidation of the Redis key-state cache (spec §1.15 "Revocation is immediate").

Every write that can change a verification's outcome bumps the tenant's generation after its transaction
commits (`apikeys.keycache.bump_tenant`): any save or delete of an API key (disable, enable, rotate with or
without grace, `expires_at`, permissions, limit, delete), a tenant's or an agent's status change, and the
deletion of a tenant or an agent, cascades included (Django sends `post_delete` for every cascaded row
when a receiver is connected). Signals rather than calls in each service: the admin, the API, management
commands and cascades all go through the model layer, and the cache must not depend on every writer
remembering it. Without Redis every receiver is a no-op.
"""

from django.db.models.signals import post_delete, post_save

from apikeys import keycache


def _status_may_change(update_fields) -> bool:
    return update_fields is None or "status" in update_fields


def _tenant_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and _status_may_change(update_fields):
        keycache.bump_tenant(instance.pk)


def _agent_saved(sender, instance, created, update_fields=None, **kwargs):
    if not created and _status_may_change(update_fields):
        keycache.bump_tenant(instance.tenant_id)


def _key_saved(sender, instance, created, **kwargs):
    if not created:
        keycache.bump_tenant(instance.tenant_id)


def _tenant_deleted(sender, instance, **kwargs):
    keycache.bump_tenant(instance.pk)


def _owned_deleted(sender, instance, **kwargs):
    keycache.bump_tenant(instance.tenant_id)


def connect() -> None:
    """Called from `ApikeysConfig.ready`. Always connected (the receivers check whether the cache is
    Redis when they run, so a settings change in tests is honoured)."""
    from agents.models import Agent
    from apikeys.models import ApiKey
    from tenants.models import Tenant

    post_save.connect(_tenant_saved, sender=Tenant, dispatch_uid="apikeys.keycache.tenant_saved")
    post_save.connect(_agent_saved, sender=Agent, dispatch_uid="apikeys.keycache.agent_saved")
    post_save.connect(_key_saved, sender=ApiKey, dispatch_uid="apikeys.keycache.key_saved")
    post_delete.connect(_tenant_deleted, sender=Tenant, dispatch_uid="apikeys.keycache.tenant_deleted")
    post_delete.connect(_owned_deleted, sender=Agent, dispatch_uid="apikeys.keycache.agent_deleted")
    post_delete.connect(_owned_deleted, sender=ApiKey, dispatch_uid="apikeys.keycache.key_deleted")
