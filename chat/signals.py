"""Invalidation of the chat express's agents (`chat.express`, `chat.agentcache.stamped_agent`).

The express keeps each agent it answered for in the process, stamped with the agent's generation
(`core.generations.agent`) read in the request's one Redis round trip BEFORE the agent was read from the
database. Every save or deletion of an agent bumps that generation after its transaction commits (the
admin, the services, management commands, cascades from a tenant's deletion: the model layer, as
`readcache.signals`); the one writer that bypasses the signals, the re-encryption of provider keys
(`agents.services.agent_reencrypt_provider_keys`, an `update()`), bumps it by name. A write that commits
after the express read the agent therefore bumps after the stamp was read, and the next request reads
the agent again. Without Redis (no express) the bump is a no-op.
"""

from django.db.models.signals import post_delete, post_save

from core import generations


def _agent(sender, instance, **kwargs):
    generations.bump((generations.agent(instance.pk),))


def connect() -> None:
    """Called from `ChatConfig.ready`."""
    from agents.models import Agent

    post_save.connect(_agent, sender=Agent, dispatch_uid="chat.express.agent_saved")
    post_delete.connect(_agent, sender=Agent, dispatch_uid="chat.express.agent_deleted")
