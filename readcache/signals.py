"""Invalidation of the read cache through the model layer (like `apikeys.signals`): every save or delete
that changes what a cached route shows bumps the generations naming it, after its transaction commits
(`core.generations.bump`). The admin, the services, management commands and cascades (Django sends
`post_delete` for every cascaded row when a receiver is connected) all pass here.

Writes that bypass the signals bump by name where they happen: a plugin setting's deletion
(`plugins.services.plugin_setting_delete`, which the admin uses too; an agent's deletion here), the heartbeat's upsert
(`activity.services.activity_heartbeat`, both lanes), the use-count scripts (`apikeys.usage`,
`apikeys.fastlane`). The write-behind flush of use counts changes nothing shown (stored + pending is
constant, `apikeys.usage`), and a Redis outage bumps the global generation every entry depends on.

Operators: any change of an operator token (creation, rotation, deletion; the once-a-minute
`last_used_at` touch is a `QuerySet.update` and sends nothing, the entries' valid-until covers it), of a
user (but a login's `last_login`) or of users' groups and permissions bumps `rc:ops`, which every entry
depends on: a deleted token, a deactivated or de-staffed user is refused on the next request.
"""

from django.db.models.signals import m2m_changed, post_delete, post_save

from core import generations


def _tenant(sender, instance, **kwargs):
    generations.bump(generations.of_tenant(instance.pk))


def _key(sender, instance, **kwargs):
    generations.bump((generations.key(instance.pk), generations.keys(instance.tenant_id)))


def _activity(sender, instance, **kwargs):
    generations.bump((generations.activity(instance.tenant_id),))


def _plugin(sender, instance, **kwargs):
    generations.bump((generations.plugins(instance.tenant_id),))


def _agent_deleted(sender, instance, **kwargs):
    # Its plugin overrides go with it, deleted by the cascade in one statement (PluginSetting has no
    # delete receiver: with one, Django nulls `agent` before deleting, which the row's check constraint
    # refuses on MariaDB); its activity row and keys send their own signals.
    generations.bump((generations.plugins(instance.tenant_id),))


def _operators(sender, **kwargs):
    generations.bump((generations.OPERATORS,))


def _user_saved(sender, instance, update_fields=None, **kwargs):
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    _operators(sender)


def _m2m(sender, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear"):
        _operators(sender)


def connect() -> None:
    """Called from `ReadcacheConfig.ready` (receivers are no-ops without Redis: `core.generations`)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from activity.models import AgentActivity
    from agents.models import Agent
    from apikeys.models import ApiKey
    from core.models import OperatorToken
    from plugins.models import PluginSetting
    from tenants.models import Tenant

    user = get_user_model()
    for signal in (post_save, post_delete):
        name = "save" if signal is post_save else "delete"
        signal.connect(_tenant, sender=Tenant, dispatch_uid=f"readcache.tenant.{name}")
        signal.connect(_key, sender=ApiKey, dispatch_uid=f"readcache.key.{name}")
        signal.connect(_activity, sender=AgentActivity, dispatch_uid=f"readcache.activity.{name}")
        signal.connect(_operators, sender=OperatorToken, dispatch_uid=f"readcache.token.{name}")
        signal.connect(_operators, sender=Group, dispatch_uid=f"readcache.group.{name}")
    post_save.connect(_plugin, sender=PluginSetting, dispatch_uid="readcache.plugin.save")
    post_delete.connect(_agent_deleted, sender=Agent, dispatch_uid="readcache.agent.delete")
    post_save.connect(_user_saved, sender=user, dispatch_uid="readcache.user.save")
    post_delete.connect(_operators, sender=user, dispatch_uid="readcache.user.delete")
    for through in (user.groups.through, user.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_m2m, sender=through, dispatch_uid=f"readcache.m2m.{through._meta.label}")
