"""Chat routes (spec §10) and the OpenAI-compatible routes (spec §11).

The reply-producing routes (`POST /api/v2/chat`, `/api/v2/chat/batch`, `/v1/chat/completions`) are served
by the async views at the end of this module, in the chat lane (`core.lanes`, README "Serving model"). Each
runs its DRF class (authentication, permissions, validation, the exception handler and renderers) inside a
short database burst (`chat.aio.drf_call`), takes its concurrency slots (`chat.limits`, CHAT_004), then
awaits the upstream model holding no thread, database connection or transaction. With Redis, the one-reply
routes first verify a warm key, take its slot and count its use in one Redis round trip on the event loop
(`chat.fastprelude`), and the burst is handed the result; their Redis slots are given back on the loop after
the last burst. The DRF classes carry the OpenAPI description; their `post` runs the same async view (for
callers outside the chat lane).
"""

from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import transaction
from django.http import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
)
from rest_framework.generics import GenericAPIView
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from apikeys import usage
from apikeys.access import authorize_key_scope, consume_key_use
from apikeys.permissions import AgentKeyRequired, OperatorOrAgentKey
from chat import fastprelude, limits, openai_compat, selectors, services
from chat.aio import (DRFCall, drf_call, last_burst_release, release_slots, releasing_chunks, run_admitted,
                      submit_db)
from chat.serializers import (
    ChatAgentFilterSerializer,
    ChatAgentOutputSerializer,
    ChatBatchInputSerializer,
    ChatBatchItemInputSerializer,
    ChatBatchOutputSerializer,
    ChatHistoryFilterSerializer,
    ChatMessageOutputSerializer,
    ChatReplyOutputSerializer,
    ChatSendInputSerializer,
    OpenAIChatCompletionInputSerializer,
    OpenAIChatCompletionOutputSerializer,
    OpenAIErrorOutputSerializer,
    OpenAIModelListOutputSerializer,
)
from chat.streaming import chat_event_stream, event_stream_response
from core.api import NonAtomicRequestsMixin, ok, paginated
from core.exceptions import ApplicationError, validation_error
from core.openapi import envelope, paginated_envelope, parse_query
from core.permissions import is_agent_key_request
from core.validation import flatten_errors

CHAT_PERMISSION = "chat"


def _request_id(request) -> str:
    return getattr(request._request, "request_id", "") or ""


_SEND_EXAMPLE = OpenApiExample(
    "Original client", request_only=True,
    value={"api_key": "mmc_dGVuYW50XzNm…", "message": "Hello!", "conversation_id": "test_conv_001",
           "user_id": "test_user_001"},
)


_LIMITS = ("\n\nAt most `MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY` (32) requests of a key and `MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT` (256) of a tenant are in flight: beyond, 429 `CHAT_004` with `Retry-After` and `data = {scope, limit, retry_after}`, before the use is counted. The provider's `timeout` bounds the whole upstream call, streams included (504 `CHAT_003`).")


def _event_stream(description: str) -> OpenApiResponse:
    """The 200 answer of a streaming request (`"stream": true`): server-sent events, not JSON."""
    return OpenApiResponse(response=OpenApiTypes.STR, description=f"With `\"stream\": true`: {description}")


class ChatSendView(NonAtomicRequestsMixin, APIView):
    """POST /api/v2/chat (§10.2, streaming §10.3)."""

    permission_classes = [AgentKeyRequired.with_permission(CHAT_PERMISSION)]

    @extend_schema(
        summary="Send a message to the key's agent",
        description="Requires an agent key holding `chat` (header or body `api_key`). With `\"stream\": true` "
                    "the answer is `text/event-stream` with events `start`, `delta`, then `done` or `error`."
                    + _LIMITS,
        request=ChatSendInputSerializer,
        responses={(200, "application/json"): envelope(ChatReplyOutputSerializer),
                   (200, "text/event-stream"): _event_stream("Events `start`, `delta`…, then `done` (the "
                                                             "envelope of the reply) or `error` (an envelope).")},
        examples=[_SEND_EXAMPLE],
        tags=["chat"],
    )
    def post(self, request):
        return async_to_sync(chat_send)(request._request)


def _batch_item(index: int, raw) -> tuple[services.TurnRequest | None, ApplicationError | None]:
    path = f"requests[{index}]"
    if not isinstance(raw, dict):
        return None, validation_error({path: ["Must be a JSON object."]})
    serializer = ChatBatchItemInputSerializer(data=raw)
    if not serializer.is_valid():
        return None, validation_error(flatten_errors(serializer.errors, prefix=path))
    data = serializer.validated_data
    return services.TurnRequest(message=data["message"], conversation_id=data.get("conversation_id"),
                                user_id=data.get("user_id")), None


class ChatBatchView(NonAtomicRequestsMixin, APIView):
    """POST /api/v2/chat/batch (§10.4)."""

    permission_classes = [AgentKeyRequired.with_permission(CHAT_PERMISSION)]

    @extend_schema(
        summary="Send several messages in one call",
        description="One result per item, in input order; an invalid item or an upstream failure only fails "
                    "its own item. Items sharing a `conversation_id` run in order; up to "
                    "`MAIMCONFIG_CHAT_BATCH_CONCURRENCY` (4) items run at once (one in-flight slot each), and the "
                    "batch as a whole is bounded by twice `MAIMCONFIG_CHAT_TIMEOUT_SECONDS` (items still waiting "
                    "then fail with `CHAT_003`)." + _LIMITS,
        request=ChatBatchInputSerializer,
        responses={200: envelope(ChatBatchOutputSerializer)},
        tags=["chat"],
    )
    def post(self, request):
        return async_to_sync(chat_batch)(request._request)


class ChatAgentListView(GenericAPIView):
    """GET /api/v2/chat-agents (§10.5)."""

    permission_classes = [OperatorOrAgentKey.with_permission(CHAT_PERMISSION)]
    serializer_class = ChatAgentOutputSerializer

    @extend_schema(
        summary="Agents available for chat",
        parameters=[ChatAgentFilterSerializer],
        responses={200: paginated_envelope(ChatAgentOutputSerializer)},
        tags=["chat"],
    )
    def get(self, request):
        filters = parse_query(request, ChatAgentFilterSerializer)
        tenant_id, agent_id = authorize_key_scope(request, tenant_id=filters.get("tenant_id"))
        queryset = selectors.chat_agent_list(tenant_id=tenant_id, agent_id=agent_id, online=filters.get("online"))
        envelope_tenant = tenant_id
        if tenant_id is not None and not is_agent_key_request(request):
            envelope_tenant = selectors.tenant_id_if_exists(tenant_id=tenant_id)
        return paginated(self, queryset, ChatAgentOutputSerializer, message="Chat agents listed",
                         tenant_id=envelope_tenant)


class ChatHistoryView(GenericAPIView):
    """GET /api/v2/chat/conversations/{conversation_id}/messages (§10.6)."""

    permission_classes = [OperatorOrAgentKey.with_permission(CHAT_PERMISSION)]
    serializer_class = ChatMessageOutputSerializer

    @extend_schema(
        summary="Messages of a conversation, newest first",
        parameters=[ChatHistoryFilterSerializer,
                    OpenApiParameter("conversation_id", OpenApiTypes.STR, OpenApiParameter.PATH)],
        responses={200: paginated_envelope(ChatMessageOutputSerializer)},
        tags=["chat"],
    )
    def get(self, request, conversation_id: str):
        filters = parse_query(request, ChatHistoryFilterSerializer)
        _, agent_id = authorize_key_scope(request, agent_id=filters.get("agent_id"))
        if agent_id is None:
            raise validation_error({"agent_id": ["This query parameter is required."]})
        conversation = selectors.conversation_get(agent_id=agent_id, conversation_id=conversation_id)
        return paginated(self, selectors.conversation_messages(conversation=conversation),
                         ChatMessageOutputSerializer, message="Messages listed", tenant_id=conversation.tenant_id)


# --- OpenAI-compatible (§11) -------------------------------------------------------------------------

_OPENAI_ERRORS = {status: OpenApiResponse(OpenAIErrorOutputSerializer, description=text) for status, text in (
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (429, "rate_limit_error (AUTH_008, CHAT_004)"), (502, "server_error (CHAT_002)"),
    (504, "server_error (CHAT_003)"))}


class _OpenAIView(NonAtomicRequestsMixin, APIView):
    """OpenAI shapes: a plain JSON renderer, so errors render in OpenAI's error shape (§11.5)."""

    renderer_classes = [JSONRenderer]
    permission_classes = [AgentKeyRequired.with_permission(CHAT_PERMISSION)]


class OpenAIChatCompletionsView(_OpenAIView):
    """POST /v1/chat/completions (§11.2–§11.4)."""

    @extend_schema(
        summary="OpenAI-compatible chat completion with the key's agent",
        description="Stateless; the agent's persona is prepended server-side. `stream: true` answers "
                    "`chat.completion.chunk` events ending with `data: [DONE]`. `max_tokens` and "
                    "`max_completion_tokens`: 1 to `MAIMCONFIG_CHAT_MAX_TOKENS` (16384)." + _LIMITS,
        request=OpenAIChatCompletionInputSerializer,
        responses={(200, "application/json"): OpenAIChatCompletionOutputSerializer,
                   (200, "text/event-stream"): _event_stream("`chat.completion.chunk` objects as `data:` lines, "
                                                             "then `data: [DONE]`."),
                   **_OPENAI_ERRORS},
        tags=["openai"],
    )
    def post(self, request):
        return async_to_sync(openai_chat_completions)(request._request)


class OpenAIModelListView(_OpenAIView):
    """GET /v1/models (§11.6)."""

    @extend_schema(summary="Models the key's agent answers with", responses={200: OpenAIModelListOutputSerializer,
                                                                          **_OPENAI_ERRORS}, tags=["openai"])
    def get(self, request):
        _, agent_id = authorize_key_scope(request)
        agent = selectors.key_agent(agent_id=agent_id)
        prepared = services.chat_prepare(agent=agent)
        created = int(agent.updated_at.timestamp())
        identifiers: list[str] = []
        for target in prepared.choice.candidates:
            if target.model_identifier not in identifiers:
                identifiers.append(target.model_identifier)
        if not identifiers:
            identifiers = [prepared.model]
        return Response({"object": "list", "data": [
            {"id": identifier, "object": "model", "created": created, "owned_by": "maimconfig"}
            for identifier in identifiers]})



# --- The chat lane's async views -----------------------------------------------------------------------

@dataclass
class _Prelude:
    """What a reply-producing request has once its database burst passed: its DRF call, the prepared
    agent, the validated input and the concurrency slots it holds (released however it ends)."""

    call: DRFCall
    slots: limits.Slots
    prepared: services.PreparedChat
    tenant_id: str
    data: Any = None
    history: services.History | None = None
    items: list | None = None
    results: dict | None = None


def _take_slots(request, *, units: int = 1, hold_seconds: float | None = None) -> limits.Slots:
    principal = request.auth
    return limits.acquire(api_key_id=principal.api_key_id, tenant_id=principal.tenant_id, units=units,
                          hold_seconds=hold_seconds or float(settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS))


def _release_on_error(slots: limits.Slots, work):
    try:
        return work()
    except BaseException:
        slots.release()
        raise


def _single_reply_prelude(input_serializer, *, history: bool = False):
    """The database burst before a one-reply route (`/api/v2/chat`, `/v1/chat/completions`) calls the model:
    take the in-flight slots, check the key's scope, validate the body, load the agent, and with `history`
    read the conversation's prompt (`/api/v2/chat`), so that the request makes one burst before the model
    and one after."""

    def prelude(call: DRFCall, slots: limits.Slots | None = None) -> _Prelude:
        request = call.request
        if slots is None:  # else taken on the loop with the key check and the use (chat.fastprelude)
            slots = _take_slots(request)  # CHAT_004 before the use is counted (§10.7)

        def prepare():
            tenant_id, agent_id = authorize_key_scope(request)
            serializer = input_serializer(data=request.data)
            serializer.is_valid(raise_exception=True)
            prepared = services.chat_prepare(agent=selectors.key_agent(agent_id=agent_id))
            data = serializer.validated_data
            read = None
            if history:
                read = services.read_history(prepared, _turn(data))
            return _Prelude(call, slots, prepared, tenant_id, data=data, history=read)

        return _release_on_error(slots, prepare)

    return prelude


def _turn(data) -> services.TurnRequest:
    return services.TurnRequest(message=data["message"], conversation_id=data.get("conversation_id"),
                                user_id=data.get("user_id"))


_send_prelude = _single_reply_prelude(ChatSendInputSerializer, history=True)
_openai_prelude = _single_reply_prelude(OpenAIChatCompletionInputSerializer)


async def _first_burst(view_cls, request, prelude, *, body_key: bool):
    """The request's first burst (`run_admitted(drf_call, …)`). With Redis, its key check, slot and use
    are first taken on the loop in one round trip (`chat.fastprelude`) and handed to the burst; otherwise,
    or when that declines, the burst does them as before."""
    fast = await fastprelude.take(request, body_key=body_key)
    if fast is None:
        return await run_admitted(drf_call, view_cls, request, prelude)
    token = usage.precounted_use.set(fast.counted)
    try:
        p = await run_admitted(drf_call, view_cls, request, partial(prelude, slots=fast.slots),
                               principal=fast.principal)
    except BaseException:
        submit_db(fast.slots.release)  # cancelled (client gone) or failed: no await in a cancelled task
        raise
    finally:
        usage.precounted_use.reset(token)
    if isinstance(p, HttpResponseBase):  # refused before or inside the prelude: its slot is given back
        await release_slots(fast.slots)
    return p


@transaction.non_atomic_requests
@csrf_exempt
async def chat_send(request):
    """POST /api/v2/chat in the chat lane (see `ChatSendView` for the contract)."""
    p = await _first_burst(ChatSendView, request, _send_prelude, body_key=True)
    if isinstance(p, HttpResponseBase):
        return p
    data = p.data
    turn = _turn(data)
    api_key_id = p.call.request.auth.api_key_id
    if data.get("stream"):
        events = services.chat_stream(prepared=p.prepared, turn=turn, api_key_id=api_key_id,
                                      request_id=request.request_id, history=p.history, release=last_burst_release(p.slots))
        return p.call.respond(event_stream_response(
            releasing_chunks(chat_event_stream(events, tenant_id=p.tenant_id), p.slots)))
    try:
        payload = await services.chat_send(prepared=p.prepared, turn=turn, api_key_id=api_key_id,
                                           request_id=request.request_id, history=p.history,
                                           release=last_burst_release(p.slots))
    except Exception as exc:  # noqa: BLE001 - answered through the one exception handler
        return p.call.fail(exc)
    finally:
        await release_slots(p.slots)
    return p.call.respond(ok(payload, message="Reply generated", tenant_id=p.tenant_id))


def _batch_prelude(call: DRFCall) -> _Prelude | HttpResponseBase:
    request = call.request
    principal = request.auth
    serializer = ChatBatchInputSerializer(data=request.data)
    serializer.is_valid(raise_exception=True)
    results: dict[int, services.BatchItemResult] = {}
    valid: list[tuple[int, services.TurnRequest]] = []
    for index, raw in enumerate(serializer.validated_data["requests"]):
        turn, error = _batch_item(index, raw)
        if error is not None:
            results[index] = services.BatchItemResult(index, error=error)
        else:
            valid.append((index, turn))
    if not valid:
        return call.respond(_batch_response(results, principal.tenant_id))
    # One slot per item running at once, all or nothing, before anything is counted (§10.7).
    slots = _take_slots(request, units=services.batch_parallelism(valid, settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY),
                        hold_seconds=services.batch_time_limit())

    def prepare():
        # §10.4 step 4: the valid items take one use and one unit each, all together, or the batch is 429.
        consume_key_use(request, units=len(valid))
        prepared = services.chat_prepare(agent=selectors.key_agent(agent_id=principal.agent_id))
        return _Prelude(call, slots, prepared, principal.tenant_id, items=valid, results=results)

    return _release_on_error(slots, prepare)


def _batch_response(results: dict, tenant_id: str):
    items = [results[i].as_dict() for i in sorted(results)]
    succeeded = sum(1 for item in items if item["success"])
    return ok({"items": items, "total": len(items), "succeeded": succeeded, "failed": len(items) - succeeded},
              message="Batch processed", tenant_id=tenant_id)


@transaction.non_atomic_requests
@csrf_exempt
async def chat_batch(request):
    """POST /api/v2/chat/batch in the chat lane (see `ChatBatchView`)."""
    p = await run_admitted(drf_call, ChatBatchView, request, _batch_prelude)
    if isinstance(p, HttpResponseBase):
        return p
    try:
        for result in await services.chat_batch(prepared=p.prepared, items=p.items,
                                                 api_key_id=p.call.request.auth.api_key_id,
                                                 request_id=request.request_id,
                                                 concurrency=settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY):
            p.results[result.index] = result
    except Exception as exc:  # noqa: BLE001
        return p.call.fail(exc)
    finally:
        await release_slots(p.slots)
    return p.call.respond(_batch_response(p.results, p.tenant_id))


@transaction.non_atomic_requests
@csrf_exempt
async def openai_chat_completions(request):
    """POST /v1/chat/completions in the chat lane (see `OpenAIChatCompletionsView`)."""
    p = await _first_burst(OpenAIChatCompletionsView, request, _openai_prelude, body_key=False)
    if isinstance(p, HttpResponseBase):
        return p
    api_key_id = p.call.request.auth.api_key_id
    streaming = False
    try:
        if p.data.get("stream"):
            chunks = await openai_compat.completion_stream(prepared=p.prepared, data=p.data, api_key_id=api_key_id,
                                                           release=last_burst_release(p.slots))
            streaming = True
            return p.call.respond(event_stream_response(releasing_chunks(chunks, p.slots)))
        body = await openai_compat.completion_create(prepared=p.prepared, data=p.data, api_key_id=api_key_id,
                                                     release=last_burst_release(p.slots))
    except Exception as exc:  # noqa: BLE001
        return p.call.fail(exc)
    finally:
        if not streaming:
            await release_slots(p.slots)
    return p.call.respond(Response(body))


# drf-spectacular documents a route from its view's DRF class.
for _view, _cls in ((chat_send, ChatSendView), (chat_batch, ChatBatchView),
                    (openai_chat_completions, OpenAIChatCompletionsView)):
    _view.cls = _cls
    _view.initkwargs = {}
del _view, _cls
