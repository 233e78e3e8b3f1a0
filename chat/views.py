"""Chat routes (spec §10) and the OpenAI-compatible routes (spec §11).

Reply-producing routes run outside ATOMIC_REQUESTS (`transaction.non_atomic_requests`): no database
transaction is held open while the upstream model answers; the turn is stored in its own short one.
"""

from django.conf import settings
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

from apikeys.access import authorize_key_scope, consume_key_use
from apikeys.permissions import AgentKeyRequired, OperatorOrAgentKey
from chat import openai_compat, selectors, services
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


def _event_stream(description: str) -> OpenApiResponse:
    """The 200 answer of a streaming request (`"stream": true`): server-sent events, not JSON."""
    return OpenApiResponse(response=OpenApiTypes.STR, description=f"With `\"stream\": true`: {description}")


class ChatSendView(NonAtomicRequestsMixin, APIView):
    """POST /api/v2/chat (§10.2, streaming §10.3)."""

    permission_classes = [AgentKeyRequired.with_permission(CHAT_PERMISSION)]

    @extend_schema(
        summary="Send a message to the key's agent",
        description="Requires an agent key holding `chat` (header or body `api_key`). With `\"stream\": true` "
                    "the answer is `text/event-stream` with events `start`, `delta`, then `done` or `error`.",
        request=ChatSendInputSerializer,
        responses={(200, "application/json"): envelope(ChatReplyOutputSerializer),
                   (200, "text/event-stream"): _event_stream("Events `start`, `delta`…, then `done` (the "
                                                             "envelope of the reply) or `error` (an envelope).")},
        examples=[_SEND_EXAMPLE],
        tags=["chat"],
    )
    def post(self, request):
        tenant_id, agent_id = authorize_key_scope(request)
        serializer = ChatSendInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        prepared = services.chat_prepare(agent=selectors.key_agent(agent_id=agent_id))
        turn = services.TurnRequest(message=data["message"], conversation_id=data.get("conversation_id"),
                                    user_id=data.get("user_id"))
        if data.get("stream"):
            events = services.chat_stream(prepared=prepared, turn=turn, api_key_id=request.auth.api_key_id,
                                          request_id=_request_id(request))
            return event_stream_response(chat_event_stream(events, tenant_id=tenant_id))
        payload = services.chat_send(prepared=prepared, turn=turn, api_key_id=request.auth.api_key_id,
                                     request_id=_request_id(request))
        return ok(payload, message="Reply generated", tenant_id=tenant_id)


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
                    "its own item. Items sharing a `conversation_id` run in order.",
        request=ChatBatchInputSerializer,
        responses={200: envelope(ChatBatchOutputSerializer)},
        tags=["chat"],
    )
    def post(self, request):
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
        if valid:
            # §10.4 step 4: the valid items take one use and one unit each, all together, or the batch is 429.
            consume_key_use(request, units=len(valid))
            prepared = services.chat_prepare(agent=selectors.key_agent(agent_id=principal.agent_id))
            for result in services.chat_batch(prepared=prepared, items=valid, api_key_id=principal.api_key_id,
                                              request_id=_request_id(request),
                                              concurrency=settings.MAIMCONFIG_CHAT_BATCH_CONCURRENCY):
                results[result.index] = result
        items = [results[i].as_dict() for i in sorted(results)]
        succeeded = sum(1 for item in items if item["success"])
        return ok({"items": items, "total": len(items), "succeeded": succeeded, "failed": len(items) - succeeded},
                  message="Batch processed", tenant_id=principal.tenant_id)


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
    (429, "rate_limit_error"), (502, "server_error (CHAT_002)"), (504, "server_error (CHAT_003)"))}


class _OpenAIView(NonAtomicRequestsMixin, APIView):
    """OpenAI shapes: a plain JSON renderer, so errors render in OpenAI's error shape (§11.5)."""

    renderer_classes = [JSONRenderer]
    permission_classes = [AgentKeyRequired.with_permission(CHAT_PERMISSION)]


class OpenAIChatCompletionsView(_OpenAIView):
    """POST /v1/chat/completions (§11.2–§11.4)."""

    @extend_schema(
        summary="OpenAI-compatible chat completion with the key's agent",
        description="Stateless; the agent's persona is prepended server-side. `stream: true` answers "
                    "`chat.completion.chunk` events ending with `data: [DONE]`.",
        request=OpenAIChatCompletionInputSerializer,
        responses={(200, "application/json"): OpenAIChatCompletionOutputSerializer,
                   (200, "text/event-stream"): _event_stream("`chat.completion.chunk` objects as `data:` lines, "
                                                             "then `data: [DONE]`."),
                   **_OPENAI_ERRORS},
        tags=["openai"],
    )
    def post(self, request):
        _, agent_id = authorize_key_scope(request)
        serializer = OpenAIChatCompletionInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        prepared = services.chat_prepare(agent=selectors.key_agent(agent_id=agent_id))
        if data.get("stream"):
            return event_stream_response(openai_compat.completion_stream(prepared=prepared, data=data))
        return Response(openai_compat.completion_create(prepared=prepared, data=data))


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

