"""Reads of the chat app: history for the prompt, conversation pages, and the chat-agents list."""

from django.db import connection
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from agents.models import Agent
from chat import agentcache
from chat.models import ChatConversation, ChatMessage
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.selectors import prepared_read
from tenants.models import Tenant
from tenants.selectors import tenant_id_if_exists  # noqa: F401  (re-exported for the views)


def key_agent(*, agent_id: str) -> Agent:
    """The verified key's agent (it exists: key verification just read it), read with one prepared SELECT
    of its columns (`core.selectors.prepared_read`: no query compilation). Its stored configuration is
    decoded once per process and text (`chat.agentcache`): `agent.config` is then shared and must not be
    modified, and `agent.chat_config_entry` carries what chat derives from it."""
    read = prepared_read(Agent)
    values = read.row(agent_id)
    if values is None:
        raise Agent.DoesNotExist("Agent matching query does not exist.")
    config = read.names.index("config")
    entry = agentcache.entry(agent_id, values[config], lambda raw: read.convert(config, raw))
    values[config] = entry.config if entry is not None else None
    agent = read.instance(values, converted=frozenset({config}))
    agent.chat_config_entry = entry
    return agent


def conversation_find(*, agent_id: str, conversation_id: str) -> ChatConversation | None:
    return ChatConversation.objects.filter(agent_id=agent_id, conversation_id=conversation_id).first()


def conversation_get(*, agent_id: str, conversation_id: str) -> ChatConversation:
    """The agent's conversation for the history route (spec §10.6): AGENT_004 for an unknown agent,
    CHAT_001 (envelope tenant = the agent's) for a malformed or unknown conversation id."""
    from chat.serializers import CONVERSATION_ID_RE

    agent = Agent.objects.filter(pk=agent_id).only("id", "tenant_id").first()
    if agent is None:
        raise ApplicationError(ErrorCode.AGENT_004, "The agent does not exist.")
    conversation = None
    if CONVERSATION_ID_RE.match(conversation_id):
        conversation = conversation_find(agent_id=agent.id, conversation_id=conversation_id)
    if conversation is None:
        raise ApplicationError(ErrorCode.CHAT_001, tenant_id=agent.tenant_id)
    return conversation


def conversation_recent_turns(*, agent_id: str, conversation_id: str, turns: int) -> list[tuple[str, str]]:
    """The last `turns` completed turns, oldest first, as (user message, reply) pairs: one query."""
    replies = (
        ChatMessage.objects.filter(conversation__agent_id=agent_id, conversation__conversation_id=conversation_id,
                                   role=ChatMessage.Role.ASSISTANT)
        .select_related("reply_to")
        .only("content", "created_at", "id", "reply_to__content")
        .order_by("-created_at", "-id")[:turns]
    )
    return [(reply.reply_to.content, reply.content) for reply in reversed(list(replies))]


def conversation_messages(*, conversation: ChatConversation) -> QuerySet[ChatMessage]:
    """The conversation's messages, newest first (spec §10.6). A reply is always stored with a later
    `created_at` than the message it answers, so a turn reads in order."""
    return (ChatMessage.objects.filter(conversation=conversation).select_related("conversation")
            .order_by("-created_at", "-id"))


def chat_agent_list(*, tenant_id: str | None = None, agent_id: str | None = None,
                    online: bool | None = None) -> QuerySet[Agent]:
    """Active agents of active tenants, newest first (spec §10.5), with their activity row."""
    query = (Agent.objects.filter(status=Agent.Status.ACTIVE, tenant__status=Tenant.Status.ACTIVE)
             .select_related("activity"))
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if agent_id is not None:
        query = query.filter(pk=agent_id)
    if online is not None:
        from activity.models import AgentActivity

        live = Exists(AgentActivity.objects.filter(agent_id=OuterRef("pk"), expires_at__gt=timezone.now()))
        query = query.filter(live) if online else query.exclude(live)
    return query.order_by("-created_at", "-id")


# --- Prepared inserts of a turn's rows (the chat lane's hot path) ------------------------------------------

class _Insert:
    """`INSERT INTO <model> (<columns>) VALUES (…)[, (…)]` for new instances of `model`, with the values
    Django's insert compiler would send (`field.pre_save(obj, add=True)`, then `get_db_prep_save`), built
    once per database vendor: no query compilation per row. An auto primary key is read back after a
    single-row insert."""

    def __init__(self, model, conn):
        meta = model._meta
        self.model = model
        self.auto = meta.auto_field
        self.fields = [f for f in meta.local_concrete_fields if f is not self.auto]
        qn = conn.ops.quote_name
        self.table = meta.db_table
        self.head = f"INSERT INTO {qn(self.table)} ({', '.join(qn(f.column) for f in self.fields)}) VALUES "
        self.row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"

    def __call__(self, objs: list) -> None:
        params: list = []
        for obj in objs:
            params.extend(f.get_db_prep_save(f.pre_save(obj, True), connection) for f in self.fields)
        with connection.cursor() as cursor:
            cursor.execute(self.head + ", ".join([self.row] * len(objs)), params)
            if self.auto is not None and len(objs) == 1:
                objs[0].pk = connection.ops.last_insert_id(cursor, self.table, self.auto.column)
        for obj in objs:
            obj._state.adding = False
            obj._state.db = connection.alias


_inserts: dict[tuple[str, str], _Insert] = {}


def insert(objs: list) -> None:
    """Insert `objs` (new instances of one model, primary keys set unless auto) in one statement."""
    model = type(objs[0])
    key = (connection.vendor, model._meta.label)
    inserter = _inserts.get(key)
    if inserter is None:
        inserter = _inserts[key] = _Insert(model, connection)
    inserter(objs)


def conversation_ids(keys: list[tuple[str, str]]) -> list[tuple[int, str, str]]:
    """(pk, agent id, conversation id) of the conversations named by `keys` ((agent id, conversation id)
    pairs, the table's unique key): one query, its SQL built without the ORM's compiler (the chat writes'
    batch reads back the ids of the conversations it just inserted)."""
    table = connection.ops.quote_name(ChatConversation._meta.db_table)
    match = " OR ".join(["(agent_id = %s AND conversation_id = %s)"] * len(keys))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, agent_id, conversation_id FROM {table} WHERE {match}",
                       [value for key in keys for value in key])
        return list(cursor.fetchall())
