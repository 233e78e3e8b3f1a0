"""The chat prelude on the event loop (issue 10: chats reach the upstream sooner under a chat storm).

Before a one-reply chat request (`POST /api/v2/chat`, `POST /v1/chat/completions`) makes its first
database burst, `take()` does its key verification, its concurrency slot (`CHAT_004`, `chat.limits`) and
its use count with the per-minute window (`AUTH_008`) in ONE Redis round trip on the event loop: the fast
lane's key script (`apikeys.fastlane.run_key_script` with its slot step, through the loop's pipelined
connection, `apikeys.fastredis`). Today's path made three Redis round trips for the same work inside the
burst's thread (key-state lookup, slot script, use script), each one waiting for the loop to hand the GIL
back. The burst then only does the database part (the agent, its configuration, the conversation).

**What the burst is told.** The verified key becomes the DRF request's principal (`chat.aio.DRFCall`:
no second verification), the slot is the prelude's (`limits.shared_slots`: released however the request
ends, as before), and the counted use is handed to `apikeys.usage.count_use` through
`usage.precounted_use` (its window state and pending usage, so `X-RateLimit-*` and metrics are the same).

**What it declines** (returns None having consumed nothing, and the request takes today's path
unchanged): Redis not the cache, the breaker open or a generation bump pending; no key, a key in both the
header and the body, a body or content type DRF's parsing would refuse or treat specially; a cold key
(`miss`), any refusal (AUTH_00x, no `chat` permission), a full slot scope (`busy`: Django answers
CHAT_004 itself), a full per-minute window (`limited`: Django answers AUTH_008), a Redis error. The script
checks the slot before the window and takes both only together, so CHAT_004 still comes before the use is
counted. A reply lost to a Redis error may hide a script that ran: its use is reconciled by
`apikeys.usage` (as for the fast lane), and its slot is released in the background (it would expire at
its deadline anyway).

Chat batches keep today's path (their slots and uses count several units).
"""

from __future__ import annotations

import asyncio
import io
import logging
import secrets
import time
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.utils import timezone

from apikeys import fastlane as lane
from apikeys import usage
from apikeys.authentication import header_key
from apikeys.keys import parse_key
from apikeys.principal import AgentKeyPrincipal
from chat import limits
from core import generations

logger = logging.getLogger("maimconfig.chat")

CHAT_PERMISSION = "chat"

# Off only for measurements of the path it replaces (bench) and for tests of that path.
enabled = True


@dataclass
class FastPrelude:
    """A request whose key, slot and use the prelude took: what the first burst is handed."""

    principal: AgentKeyPrincipal
    slots: limits.Slots
    counted: tuple  # (key id, usage.UseResult): the value of `usage.precounted_use`
    use: lane.KeyUse  # the script's answer (the key's window state; the generation stamp asked for)


def _body_key(request) -> str | None:
    """`api_key` of the JSON body as `apikeys.authentication.body_key` reads it, parsed by the parser DRF
    uses (`core.parsers.StrictJSONParser`); Declined for anything DRF would refuse or read differently."""
    from core.parsers import StrictJSONParser

    if request.content_type != "application/json":
        raise lane.Declined
    try:
        data = StrictJSONParser().parse(io.BytesIO(request.body))
    except Exception:  # noqa: BLE001 - DRF answers the parse error (400), before anything is counted
        raise lane.Declined from None
    if type(data) is not dict:
        raise lane.Declined
    value = data.get("api_key")
    if value is None:
        return None
    if type(value) is not str or value != value.strip():
        raise lane.Declined
    return value


def _raw_key(request, *, body_key: bool) -> str:
    """The key `AgentKeyAuthentication` would verify (or Declined where it would refuse or differ)."""
    from_header = header_key(request)
    from_body = _body_key(request) if body_key else None
    if from_header is not None and from_body is not None and from_header.strip() != from_body:
        raise lane.Declined  # 400 VALIDATION_ERROR at api_key
    raw_key = from_header if from_header is not None else from_body
    if raw_key is None:
        raise lane.Declined  # 401
    return raw_key


async def take(request, *, body_key: bool) -> FastPrelude | None:
    """Verify the request's key (`chat` permission), take its slot and count its use in one round trip;
    None when anything is unusual (module docstring), nothing consumed then."""
    if not enabled or not lane.lane_available():
        return None
    try:
        raw_key = _raw_key(request, body_key=body_key)
    except lane.Declined:
        return None
    return await take_key(raw_key)


async def take_key(raw_key: str, *, agent_generation: bool = False) -> FastPrelude | None:
    """`take` for a key already read from the request (`chat.express` reads it from the raw headers and
    body). `agent_generation`: the key's agent's generation (`core.generations.agent`) is read in the same
    round trip (`FastPrelude.use.stamp`)."""
    try:
        parsed = parse_key(raw_key)
        if parsed is None:
            raise lane.Declined
        generation = generations.agent(parsed.agent_id) if agent_generation else ""
        usage.ensure_flusher()
        now = timezone.now()
        now_ms = int(time.time() * 1000)
        token = secrets.token_hex(8)
        hold = float(settings.MAIMCONFIG_CHAT_TIMEOUT_SECONDS)
        slot_args = (limits.scope_base(), now_ms, limits.expiry_ms(now_ms, hold), token,
                     settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_KEY, settings.MAIMCONFIG_CHAT_MAX_INFLIGHT_PER_TENANT)
        script = asyncio.ensure_future(lane.run_key_script(
            raw_key=raw_key, parsed=parsed, now=now, permission=CHAT_PERMISSION, count=True, throttle_ident=None,
            slots=slot_args, generation=generation))
        try:
            # Shielded: a request cancelled meanwhile (its client gone) still learns the script's answer, and
            # gives back the slot it may have taken.
            use = await asyncio.shield(script)
        except lane.Declined as exc:
            if exc.args == ("lost",):
                _release_lost(parsed.tenant_id, token)
            raise
        except asyncio.CancelledError:
            script.add_done_callback(partial(_release_after_cancel, parsed.tenant_id, token))
            raise
        record = use.record
        slots = limits.shared_slots(api_key_id=record.id, tenant_id=record.tenant_id, token=token)
        try:
            lane.checked_verification(use, parsed, now, CHAT_PERMISSION)
        except lane.Declined:
            _release_in_background(slots)  # cannot happen (the checks are the same); the use stays counted
            raise
    except lane.Declined:
        return None
    counted = use.counted()
    principal = AgentKeyPrincipal(record, using_previous_secret=use.previous)
    return FastPrelude(principal, slots, (record.id, counted), use)


def _release_after_cancel(tenant_id: str, token: str, script: asyncio.Future) -> None:
    """The script of a cancelled request answered: its slot, if it took one, is given back."""
    if script.cancelled():
        return
    exc = script.exception()
    if exc is None:
        _release_in_background(limits.shared_slots(api_key_id=script.result().record.id, tenant_id=tenant_id,
                                                    token=token))
    elif isinstance(exc, lane.Declined) and exc.args == ("lost",):
        _release_lost(tenant_id, token)


def _release_in_background(slots: limits.Slots) -> None:
    from chat.aio import submit_db

    submit_db(slots.release)


def _release_lost(tenant_id: str, token: str) -> None:
    """A script whose reply was lost may have taken a slot: its member is removed from the tenant's scope in
    the background (the key's scope is named by the key id the lost reply carried: that member expires at
    its deadline, as a killed worker's do)."""
    from chat.aio import submit_db

    def release():
        from apikeys import redisstate

        try:
            client = redisstate.client()
            if client is not None:
                client.zrem(limits.scope_base() + "tenant:" + tenant_id, f"{token}:1")
        except Exception:  # noqa: BLE001 - the slot expires at its deadline anyway
            logger.warning("Releasing a chat slot after a lost Redis reply failed; it expires at its deadline.")

    submit_db(release)
