"""The bot fast lane of the usage log: `POST /api/v1/usage/log` and `POST /api/v2/usage-logs` (issue 11).

Registered by `ActivityConfig.ready()` only when Redis is the cache (README "Serving model"). A request with
an agent key (`Authorization: Bearer|Token mmc_…`, or `api_key` in the body) whose body the create
serializer accepts, with `tenant_id`/`agent_id` naming the key's own tenant and agent (or null, or absent),
is answered on the event loop from ONE Redis round trip and no database query:

1. the key script of `apikeys.fastlane` (checks 1-8 of spec §6.2 on the warm key-state entry, the window
   unit and the use count, as for the heartbeat) also takes the entry's id from the reserved id blocks and
   queues the entry in Redis (`run_key_script(log_entry=…)`; `activity.writebehind`);
2. the answer is the envelope Django sends for the same request: the entry as `UsageLogOutputSerializer`
   shows it (`usage_log_representation`), the rate-limit headers of a limited key, the metrics.

The entry is stored by the workers' flushers within `MAIMCONFIG_USAGE_FLUSH_SECONDS` (`activity.writebehind`),
exactly once; the reads of the usage log store what is queued before they read.

Declined (Django answers, nothing consumed): operator tokens, no key, another tenant or agent, a body the
serializer would refuse or treat differently (the fields are checked by the serializer's own fields), a
cold, revoked or limited key, no reserved id left, the common fast-lane gates (`apikeys.fastlane.common_checks`).
"""

from __future__ import annotations

from django.utils import timezone
from rest_framework.exceptions import ValidationError
from rest_framework.fields import SkipField

from activity import writebehind
from activity.fastlane import answer_keyed
from apikeys import fastlane as lane
from apikeys import usage
from apikeys.keys import parse_key

V1_PATH = "/api/v1/usage/log"
V2_PATH = "/api/v2/usage-logs"
_MESSAGE = "Usage logged"


_fields = None
_OWN_IDS = frozenset({"tenant_id", "agent_id"})
_ACTION_MAX = 100  # UsageLogCreateInputSerializer.action's max_length (a test checks they agree)


def _input_fields():
    """The bound fields of `UsageLogCreateInputSerializer` (built once; a field validates without state)."""
    global _fields
    if _fields is None:
        from activity.serializers import UsageLogCreateInputSerializer

        _fields = tuple(UsageLogCreateInputSerializer().fields.items())
    return _fields


def _plain_action(value) -> str | None:
    """The `action` field's result for the plain case (a string that is 1-100 characters once trimmed, no
    NUL; a lone surrogate cannot occur, `lane.json_object` refuses it), else None (the field decides)."""
    if type(value) is not str:
        return None
    value = value.strip()
    if not 1 <= len(value) <= _ACTION_MAX or "\x00" in value:
        return None
    return value


def validated(data: dict) -> dict:
    """What `UsageLogCreateInputSerializer(data=data).validated_data` holds, or Declined if it is invalid
    (field by field with the serializer's own fields, as `Serializer.to_internal_value` does; the bot's usual
    `action` is checked here directly, and `tenant_id`/`agent_id` the caller already found to be the key's
    own ids or null, values their fields return unchanged)."""
    out = {}
    for name, field in _input_fields():
        if name not in data:
            if field.required:
                raise lane.Declined
            continue
        value = data[name]
        if name in _OWN_IDS and (value is None or type(value) is str):
            out[name] = value
            continue
        if name == "action":
            plain = _plain_action(value)
            if plain is not None:
                out[name] = plain
                continue
        try:
            out[name] = field.run_validation(value)
        except (ValidationError, SkipField):
            raise lane.Declined from None
    return out


async def usage_log_handler(scope, body: bytes, send) -> bool:
    """`core.lanes` fast handler of the two usage-log POST routes (module docstring)."""
    from activity.serializers import usage_log_representation

    if not lane.lane_available():
        return False
    headers = lane.request_headers(scope)
    try:
        language, secure = lane.common_checks(scope, body, headers)
        data = lane.json_object(body)
        raw_key = lane.agent_key(headers, data)
        parsed = parse_key(raw_key)
        if parsed is None:
            raise lane.Declined
        for name, own in (("tenant_id", parsed.tenant_id), ("agent_id", parsed.agent_id)):
            value = data.get(name)
            if type(value) is str and value != own:
                raise lane.Declined  # another tenant or agent: Django's 403
        fields = validated(data)
        usage.ensure_flusher()
        now = timezone.now()
        request_id, *tokens, started = lane.begin(headers)
        try:
            entry = {"tenant_id": parsed.tenant_id, "agent_id": parsed.agent_id, "user_id": fields.get("user_id"),
                     "action": fields["action"], "details": fields.get("details"),
                     "timestamp": fields.get("timestamp") or now, "request_id": request_id, "created_at": now}
            use = await lane.run_key_script(raw_key=raw_key, parsed=parsed, now=now, permission=None, count=True,
                                            throttle_ident=None, log_entry=writebehind.encode(**entry))
            lane.checked_verification(use, parsed, now, None)
            if use.log_id is None:  # pragma: no cover - the script always answers an id with an entry
                raise lane.Declined
            entry["id"] = int(use.log_id)
            entry["api_key_id"] = use.record.id
            payload = lane.render(message=_MESSAGE, data=usage_log_representation(entry, default_zone=True),
                                  tenant_id=parsed.tenant_id, language=language)
        finally:
            lane.end(tokens)
    except lane.Declined:
        return False
    await answer_keyed(send, method="POST", path=scope["path"].rstrip("/"), headers=headers, body=body,
                       payload=payload, use=use, language=language, secure=secure, request_id=request_id,
                       started=started)
    return True


def register() -> bool:
    """Register the fast handler when Redis is the cache and the database keeps auto-increment counters
    the id reservation relies on (called by `ActivityConfig.ready()`)."""
    from django.db import connection

    from apikeys import redisstate

    if not redisstate.enabled() or connection.vendor not in ("mysql", "sqlite"):
        return False
    from core import background
    from core.lanes import on_startup, register_fast_handler

    register_fast_handler("POST", V1_PATH, usage_log_handler)
    register_fast_handler("POST", V2_PATH, usage_log_handler)
    on_startup(writebehind.flush_once)  # ids before the worker serves
    background.register("usage-log entries", writebehind.flush_once, final=writebehind.flush_at_stop)
    return True
