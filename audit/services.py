"""Recording and purging audit events.

Every write service calls `audit_record` once, inside its own transaction, after its checks passed and
its rows were written: the event commits or rolls back with the write (a refused or failed write leaves
no event). The actor and the request id come from `core.context` (the request's credential, or the
management command being run, else `system`). Cost: one INSERT per write.

Secrets never reach the table: any value under a name made of a secret word (`api_key`, `key_hash`,
`token`, `password`, `secret`, `authorization`, `credential`…), at any depth, is stored as "********".
"""

import json
import re
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.utils import timezone

from audit.models import AuditAction, AuditEvent, AuditTarget
from core.context import current_actor, current_request_id

MASK = "********"
_SECRET_WORDS = frozenset({"key", "apikey", "token", "password", "passwd", "secret", "hash", "authorization",
                           "credential", "credentials", "cookie"})
_WORD_SPLIT = re.compile(r"[^a-z0-9]+")


def is_secret_name(name: Any) -> bool:
    """`api_key`, `key_hash`, `previous_key_hash`, `webhookSecret`… (one of the words, in any case style)."""
    if not isinstance(name, str):
        return False
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()
    return any(word in _SECRET_WORDS for word in _WORD_SPLIT.split(spaced))


def redact(value: Any) -> Any:
    """A copy of `value` with every secret-named member (at any depth) replaced by the mask."""
    if isinstance(value, dict):
        return {key: (MASK if is_secret_name(key) and item not in (None, "") else redact(item))
                for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def _plain(value: Any) -> Any:
    """JSON-native form (datetimes as ISO text, lazy strings as text) so diffs compare stored values."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    """Nested objects become dotted paths (`config.persona`), so a diff names the leaf that changed."""
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        # Lists of objects (the provider list) by index, so a diff names the entry and member that changed.
        for index, item in enumerate(value):
            _flatten(item, f"{prefix}.{index}", out)
    else:
        out[prefix] = value


_ABSENT = object()


def _shown(path: str, value: Any) -> Any:
    """The value as recorded: masked when any segment of its path is a secret name."""
    if value is None or value == "":
        return value
    if any(is_secret_name(part) for part in path.split(".")):
        return MASK
    return redact(value)


def changes_between(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, list]:
    """`{path: [before, after]}` of the leaves that differ (JSON-strict: `1` and `true` differ), secrets
    masked (a changed secret shows as `["********", "********"]`). `before=None` is a creation (every field
    `[null, value]`), `after=None` a deletion (`[value, null]`)."""
    flat_before: dict[str, Any] = {}
    flat_after: dict[str, Any] = {}
    _flatten(_plain(before or {}), "", flat_before)
    _flatten(_plain(after or {}), "", flat_after)
    flat_before.pop("", None)
    flat_after.pop("", None)
    changes = {}
    for path in [*flat_before, *(p for p in flat_after if p not in flat_before)]:
        old, new = flat_before.get(path, _ABSENT), flat_after.get(path, _ABSENT)
        if (old == {} and new is _ABSENT and any(p.startswith(path + ".") for p in flat_after)) or \
                (new == {} and old is _ABSENT and any(p.startswith(path + ".") for p in flat_before)):
            continue  # an empty object that gained (or lost) members: the members' own paths tell it
        if (old is _ABSENT and new is None) or (new is _ABSENT and old is None):
            continue  # absent and null read the same: a creation lists only the values it set
        if old is not _ABSENT and new is not _ABSENT and \
                json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True):
            continue
        changes[path] = [None if old is _ABSENT else _shown(path, old), None if new is _ABSENT else _shown(path, new)]
    return changes


def snapshot(obj: Any, fields: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """The audited fields of a model instance, as they are now."""
    return {field: getattr(obj, field) for field in fields}


def audit_record(*, action: AuditAction | str, target_type: AuditTarget | str, target_id: str,
                 tenant_id: str | None = None, before: dict | None = None, after: dict | None = None,
                 changes: dict | None = None) -> AuditEvent:
    """Record one event in the caller's transaction (one INSERT). Pass `before`/`after` snapshots (the
    diff is computed and masked here) or ready `changes` (masked here too)."""
    if changes is None:
        changes = changes_between(before, after)
    else:
        changes = {path: [_shown(path, old), _shown(path, new)] for path, (old, new) in _plain(changes).items()}
    event = AuditEvent(
        occurred_at=timezone.now(),
        actor=current_actor()[:200],
        action=str(action),
        target_type=str(target_type),
        target_id=str(target_id)[:64],
        tenant_id=tenant_id,
        request_id=current_request_id(),
        changes=changes,
    )
    event.save(force_insert=True)
    return event


def audit_purge(*, older_than_days: int | None = None, now: datetime | None = None) -> int:
    """Delete events older than the retention (`MAIMCONFIG_AUDIT_RETENTION_DAYS`); returns how many.
    Deletes in batches so a large purge never holds one long transaction on MariaDB."""
    days = settings.MAIMCONFIG_AUDIT_RETENTION_DAYS if older_than_days is None else older_than_days
    cutoff = (now or timezone.now()) - timedelta(days=days)
    total = 0
    while True:
        with transaction.atomic():
            ids = list(AuditEvent.objects.filter(occurred_at__lt=cutoff).order_by("id")
                       .values_list("id", flat=True)[:5000])
            if not ids:
                return total
            total += AuditEvent.objects.filter(id__in=ids).delete()[0]
