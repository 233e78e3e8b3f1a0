"""The chat express (issue 10): the common chat request answered on the event loop, without Django.

In a chat storm the CPU each chat costs before it reaches its upstream model is what decides how late the
last one gets there, and how long bot requests wait for the loop meanwhile. On the chat lane's path
(`chat.views`) a chat is a Django request: the chat lane's middleware, then a database burst in a thread
for DRF's request, authentication, the input serializer and the agent's row, then another for the turn.
With Redis, `POST /api/v2/chat` (plain and streamed) and `POST /v1/chat/completions` of the common shape
are answered here instead (`core.lanes.register_chat_express`: offered each request before the chat lane):

1. the body is read as the chat lane's parser would read it, and validated for the plain shapes only
   (`_send_input`, `_completion_input`): anything else is declined, having consumed nothing;
2. at the worker's admission gate (`core.lanes.admission_gate`, as on the chat lane: a storm's arrivals
   take the event loop a few at a time, so the bot routes keep their turns), the key's verification, its
   concurrency slot (`CHAT_004`) and its use count take ONE Redis round trip
   (`chat.fastprelude.take_key`), which also reads the agent's generation (`core.generations.agent`);
3. the agent comes from this process's memory when it was read under that generation
   (`chat.agentcache.stamped_agent`; `chat.signals` bumps it after every write of an agent), otherwise
   from one SELECT in the chat lane's database executor, kept with the generation read before it;
   a given conversation's history is read in that same executor; the gate is given back then (the wait
   for the upstream is never gated);
4. the turn itself is the chat lane's (`chat.services`, `chat.openai_compat`): the same prompt, upstream
   call and deadline, storage of the turn and usage counters (`chat.writes`, group-committed), and slots
   given back however it ends; once its turn is stored, an answer takes a place at the gate again
   (`_Pace`) until it is sent, since a storm's answers arrive together as its requests did;
5. the answer is framed with the same envelope, events and headers as the chat lane sends (the headers
   of the chat lane's middleware: `Allow`, `X-RateLimit-*` of a limited key, the security headers,
   `X-Request-ID`). An error after the use was counted (an upstream failure) is rendered by the view's
   own DRF class and the project's exception handler, as on the chat lane.

A client that disconnects cancels its request (its slots are given back), as Django's disconnect watch does.
What is declined (the chat lane then answers as before, nothing consumed here): Redis not the cache or not
available, anything the sync stack treats specially (cookies, browser markers, a disallowed Host, an
HTTPS redirect: `apikeys.fastlane.common_checks`), a body that is not a plain JSON object of the common
shape, an operator token or no key, a cold key, any refusal (Django answers its code), a full slot scope or
window (Django answers CHAT_004 / AUTH_008), a Redis error. Batches always take the chat lane.
"""

from __future__ import annotations

import asyncio
import io
import logging

from django.conf import settings
from django.utils import timezone, translation

from apikeys import fastlane as lane
from apikeys.metrics import record_verification
from chat import agentcache, fastprelude, openai_compat, selectors, services
from chat.aio import last_burst_release, release_slots, releasing_chunks, run_db
from chat.serializers import (CONVERSATION_ID_RE, MESSAGE_MAX_CHARS, ChatSendInputSerializer,
                              OpenAIChatCompletionInputSerializer)
from chat.streaming import chat_event_stream
from core.fastlane import security_headers
from core.lanes import Admission, admission_gate

logger = logging.getLogger("maimconfig.chat")

SEND_PATH = "/api/v2/chat"
COMPLETIONS_PATH = "/v1/chat/completions"

# Off only for measurements and tests of the chat lane's own path.
enabled = True

# Larger bodies take the chat lane (which answers 413 above MAIMCONFIG_MAX_BODY_BYTES).
MAX_BODY = 256 * 1024

_SEND_KEYS = frozenset({"message", "conversation_id", "user_id", "stream", "api_key"})
_COMPLETION_KEYS = frozenset({"model", "messages", "stream"})
_ROLES = frozenset({"system", "user", "assistant"})
_JSON = (b"content-type", b"application/json; charset=utf-8")
_OPENAI_JSON = (b"content-type", b"application/json")
_EVENT_STREAM = ((b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
                 (b"x-accel-buffering", b"no"))


# --- the input: the plain shapes the chat lane's serializers accept unchanged --------------------------------

# The limits of the serializers' own fields.
_USER_ID_MAX = ChatSendInputSerializer._declared_fields["user_id"].max_length
_MODEL_MAX = OpenAIChatCompletionInputSerializer._declared_fields["model"].max_length
_MESSAGES_MAX = OpenAIChatCompletionInputSerializer._declared_fields["messages"].max_length


def _send_input(data: dict) -> dict:
    """`ChatSendInputSerializer.validated_data` for a body of the plain shape, or Declined."""
    if not data.keys() <= _SEND_KEYS:
        raise lane.Declined
    message = data.get("message")
    if type(message) is not str or not 0 < len(message) <= MESSAGE_MAX_CHARS or not message.strip():
        raise lane.Declined
    out = {"message": message}
    if "conversation_id" in data:
        conversation_id = data["conversation_id"]
        if conversation_id is not None and (type(conversation_id) is not str
                                            or not CONVERSATION_ID_RE.match(conversation_id)
                                            or conversation_id != conversation_id.strip()):
            raise lane.Declined
        out["conversation_id"] = conversation_id
    if "user_id" in data:
        user_id = data["user_id"]
        if user_id is not None and (type(user_id) is not str or not 0 < len(user_id) <= _USER_ID_MAX
                                    or user_id != user_id.strip()):
            raise lane.Declined
        out["user_id"] = user_id
    out["stream"] = _stream_flag(data)
    return out


def _stream_flag(data: dict) -> bool:
    """`stream` as the serializers read it (absent: False), or Declined for anything but a boolean."""
    stream = data.get("stream", False)
    if type(stream) is not bool:
        raise lane.Declined
    return stream


def _completion_input(data: dict) -> dict:
    """`OpenAIChatCompletionInputSerializer.validated_data` for a body of the plain shape (model, messages of
    text, stream), or Declined: every parameter that overrides the configuration takes the chat lane."""
    if not data.keys() <= _COMPLETION_KEYS:
        raise lane.Declined
    out = {}
    if "model" in data:
        model = data["model"]
        if type(model) is not str or len(model) > _MODEL_MAX or model != model.strip():
            raise lane.Declined
        out["model"] = model
    messages = data.get("messages")
    if type(messages) is not list or not 0 < len(messages) <= _MESSAGES_MAX:
        raise lane.Declined
    plain = []
    for message in messages:
        if type(message) is not dict or message.keys() != {"role", "content"}:
            raise lane.Declined
        role, content = message["role"], message["content"]
        if role not in _ROLES or type(content) is not str:
            raise lane.Declined
        plain.append({"role": role, "content": content})
    out["messages"] = plain
    out["stream"] = _stream_flag(data)
    return out


# --- the agent ---------------------------------------------------------------------------------------------

def _load(agent_id: str, turn: services.TurnRequest | None, agent, stamp):
    """One burst: the agent's row when this process has none for its generation, and the conversation's
    history for a turn of a given conversation."""
    if agent is None:
        agent = selectors.key_agent(agent_id=agent_id)
        agentcache.remember_agent(agent_id, stamp, agent)
    prepared = services.chat_prepare(agent=agent)
    history = services.read_history(prepared, turn) if turn is not None else None
    return prepared, history


async def _prepare(agent_id: str, stamp, turn: services.TurnRequest | None):
    agent = agentcache.stamped_agent(agent_id, stamp) if stamp is not None else None
    needs_history = turn is not None and bool(turn.conversation_id)
    if agent is None or needs_history:
        return await run_db(_load, agent_id, turn if needs_history else None, agent, stamp)
    prepared = services.chat_prepare(agent=agent)
    if turn is None:
        return prepared, None
    # A new conversation has no stored turn: its prompt is built here, no query (`services.read_history`).
    conversation_id = services.new_conversation_id()
    messages = services.prompt_messages(prepared, conversation_id=conversation_id, message=turn.message, fresh=True)
    return prepared, services.History(conversation_id, timezone.now(), messages)


# --- the answer --------------------------------------------------------------------------------------------

class _Answer:
    """The headers the chat lane sends for one request (module docstring, step 5)."""

    def __init__(self, send, *, secure: bool, request_id: str, use):
        self.send = send
        hsts, tail = _security()
        extra = []
        rate = use.rate
        if rate is not None and rate.allowed:
            extra = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in rate.headers().items()]
        self.tail = [_allow(), *extra, *([hsts] if secure and hsts is not None else ()), *tail,
                     (b"x-request-id", request_id.encode("latin-1"))]

    async def json(self, payload: bytes, *, openai: bool = False) -> None:
        await self.send({"type": "http.response.start", "status": 200,
                         "headers": [_OPENAI_JSON if openai else _JSON, *self.tail]})
        await self.send({"type": "http.response.body", "body": payload})

    async def stream(self, chunks) -> None:
        """Relay `chunks` (an async generator); closed however the relay ends, so its clean-up (the slots,
        the upstream connection) runs now, not when the generator is collected."""
        try:
            await self.send({"type": "http.response.start", "status": 200,
                             "headers": [*_EVENT_STREAM, *self.tail]})
            async for chunk in chunks:
                await self.send({"type": "http.response.body", "body": chunk, "more_body": True})
            await self.send({"type": "http.response.body", "body": b""})
        finally:
            await chunks.aclose()


_allow_header = None


def _allow() -> tuple[bytes, bytes]:
    """The `Allow` header DRF adds to the chat views' answers (their allowed methods)."""
    global _allow_header
    if _allow_header is None:
        from chat.views import ChatSendView

        _allow_header = (b"allow", ", ".join(ChatSendView().allowed_methods).encode("latin-1"))
    return _allow_header


_security_headers = None


def _security():
    global _security_headers
    if _security_headers is None:
        _security_headers = security_headers()
    return _security_headers


async def _django_error(scope, body: bytes, view_cls, principal, exc: BaseException, send, request_id: str,
                        use) -> None:
    """An error after the use was counted, rendered as the chat lane renders it: the view's DRF class and the
    project's exception handler (`chat.aio.DRFCall.fail`), the key's `X-RateLimit-*` (`use.rate`, as
    `chat.aio._rate_limit_headers` adds them from the request's usage state), then the chat lane
    middleware's headers."""
    from django.core.handlers.asgi import ASGIRequest

    from django.middleware.security import SecurityMiddleware

    from chat.aio import DRFCall

    request = ASGIRequest(scope, io.BytesIO(body))
    request.request_id = request_id
    response = DRFCall(view_cls, request, principal).fail(exc)
    rate = use.rate
    if rate is not None and rate.allowed:
        for name, value in rate.headers().items():
            response.setdefault(name, value)
    response = SecurityMiddleware(lambda request: None).process_response(request, response)
    response["X-Request-ID"] = request_id
    headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


# --- the handler -------------------------------------------------------------------------------------------

async def _watch(receive, task: asyncio.Task) -> None:
    """Cancel `task` when the client disconnects (Django's `listen_for_disconnect`)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            task.cancel()
            return


async def handle(scope, body: bytes, receive, send) -> bool:
    """`core.lanes` chat express handler of `POST /api/v2/chat` and `POST /v1/chat/completions`."""
    if not enabled or not lane.lane_available():
        return False
    openai = scope["path"].rstrip("/") == COMPLETIONS_PATH
    headers = lane.request_headers(scope)
    try:
        _, secure = lane.common_checks(scope, body, headers,
                                       max_body=min(MAX_BODY, settings.MAIMCONFIG_MAX_BODY_BYTES))
        data = lane.json_object(body)
        if openai:
            if "api_key" in data:
                raise lane.Declined  # the body's key is not read on /v1 (the chat lane answers the 400)
            raw_key = lane.agent_key(headers, {})
            validated = _completion_input(data)
        else:
            raw_key = lane.agent_key(headers, data)
            validated = _send_input(data)
    except lane.Declined:
        return False
    request_id, *tokens, started = lane.begin(headers)
    gate = admission_gate()
    await gate.acquire()
    admission = Admission(gate)
    try:
        taken = await fastprelude.take_key(raw_key, agent_generation=True)
        if taken is None:
            return False
        record_verification("valid", "request")
        task = asyncio.current_task()
        watcher = asyncio.ensure_future(_watch(receive, task))
        try:
            await _serve(scope, body, send, taken, validated, openai=openai, secure=secure, request_id=request_id,
                         admission=admission)
        except asyncio.CancelledError:
            if watcher.done() and not watcher.cancelled():
                task.uncancel()  # the cancellation was ours (the client left): nothing more to send
                return True
            raise
        finally:
            watcher.cancel()
        return True
    finally:
        admission.release()
        lane.end(tokens)


class _Pace:
    """The answer's turn at the admission gate, taken once its turn is stored (`chat_send(pace=…)`) and given
    back after the answer was sent: a storm's answers arrive together, as its requests did."""

    def __init__(self):
        self.admission: Admission | None = None

    async def __call__(self) -> None:
        gate = admission_gate()
        await gate.acquire()
        self.admission = Admission(gate)

    def release(self) -> None:
        if self.admission is not None:
            self.admission.release()


async def _serve(scope, body, send, taken, data, *, openai: bool, secure: bool, request_id: str,
                 admission: Admission) -> None:
    pace = _Pace()
    try:
        await _answer(scope, body, send, taken, data, openai=openai, secure=secure, request_id=request_id,
                      admission=admission, pace=pace)
    finally:
        pace.release()


async def _answer(scope, body, send, taken, data, *, openai: bool, secure: bool, request_id: str,
                  admission: Admission, pace: _Pace) -> None:
    from chat.views import ChatSendView, OpenAIChatCompletionsView

    principal, slots, use = taken.principal, taken.slots, taken.use
    view_cls = OpenAIChatCompletionsView if openai else ChatSendView
    answer = _Answer(send, secure=secure, request_id=request_id, use=use)
    turn = None if openai else services.TurnRequest(message=data["message"], conversation_id=data.get("conversation_id"),
                                                     user_id=data.get("user_id"))
    streaming = False
    try:
        try:
            prepared, history = await _prepare(principal.agent_id, use.stamp, turn)
        except Exception as exc:  # noqa: BLE001 - as the chat lane's first burst answers it
            await _django_error(scope, body, view_cls, principal, exc, send, request_id, use)
            return
        finally:
            admission.release()  # the wait for the upstream is never gated
        api_key_id = principal.api_key_id
        release = last_burst_release(slots)
        if openai:
            try:
                if data["stream"]:
                    chunks = await openai_compat.completion_stream(prepared=prepared, data=data,
                                                                   api_key_id=api_key_id, release=release)
                    streaming = True
                    await answer.stream(releasing_chunks(chunks, slots))
                    return
                reply = await openai_compat.completion_create(prepared=prepared, data=data, api_key_id=api_key_id,
                                                              release=release, pace=pace)
            except Exception as exc:  # noqa: BLE001
                if streaming:
                    raise
                await _django_error(scope, body, view_cls, principal, exc, send, request_id, use)
                return
            await answer.json(_openai_json(reply), openai=True)
            return
        tenant_id = principal.tenant_id
        if data["stream"]:
            events = services.chat_stream(prepared=prepared, turn=turn, api_key_id=api_key_id, request_id=request_id,
                                          history=history, release=release)
            streaming = True
            await answer.stream(releasing_chunks(chat_event_stream(events, tenant_id=tenant_id), slots))
            return
        try:
            payload = await services.chat_send(prepared=prepared, turn=turn, api_key_id=api_key_id,
                                               request_id=request_id, history=history, release=release,
                                               pace=pace)
        except Exception as exc:  # noqa: BLE001
            await _django_error(scope, body, view_cls, principal, exc, send, request_id, use)
            return
        await answer.json(lane.render(message="Reply generated", data=payload, tenant_id=tenant_id,
                                      language=translation.get_language() or settings.LANGUAGE_CODE))
    finally:
        if not streaming:
            await release_slots(slots)


def _openai_json(body: dict) -> bytes:
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer().render(body)


def register() -> bool:
    """Register the express when Redis is the cache (called by `ChatConfig.ready()`)."""
    from apikeys import redisstate
    from core.lanes import register_chat_express

    if not redisstate.enabled():
        return False
    register_chat_express(SEND_PATH, handle)
    register_chat_express(COMPLETIONS_PATH, handle)
    return True

