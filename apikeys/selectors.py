"""Reads on API keys: management lookups and the one-statement lookup of verification."""

import re
from datetime import datetime
from functools import cache

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from apikeys.keys import hash_key
from apikeys.models import ApiKey, computed_status
from core.errors import ErrorCode
from core.exceptions import ApplicationError
from core.selectors import object_by_pk
from tenants.selectors import tenant_id_if_exists  # noqa: F401  (re-exported for the views)

_ID_RE = re.compile(r"^key_[0-9a-f]{12}$")

# Columns verification needs: the key row (no name/description), plus the status of its parents.
_VERIFY_COLUMNS = (
    "id", "tenant_id", "agent_id", "key_hash", "previous_key_hash", "previous_key_expires_at", "permissions",
    "expires_at", "rate_limit_per_minute", "metadata", "last_used_at", "usage_count", "disabled_at",
    "usage_flushed", "usage_epoch",
)
_DATETIME_COLUMNS = frozenset({"previous_key_expires_at", "expires_at", "last_used_at", "disabled_at"})
_JSON_COLUMNS = frozenset({"permissions", "metadata"})


@cache
def _find_sql(vendor: str) -> str:
    """The verification SELECT, built once per database vendor (hand-written: compiling the equivalent
    ORM query costs more than running it, and this is the hottest statement of the service)."""
    from agents.models import Agent
    from tenants.models import Tenant

    qn = connection.ops.quote_name
    columns = ", ".join(f"k.{qn(ApiKey._meta.get_field(name).column)}" for name in _VERIFY_COLUMNS)
    return (
        f"SELECT {columns}, t.{qn('status')} AS tenant_status, a.{qn('status')} AS agent_status "
        f"FROM {qn(ApiKey._meta.db_table)} k "
        f"INNER JOIN {qn(Tenant._meta.db_table)} t ON t.{qn('id')} = k.{qn('tenant_id')} "
        f"INNER JOIN {qn(Agent._meta.db_table)} a ON a.{qn('id')} = k.{qn('agent_id')} "
        f"WHERE k.{qn('key_hash')} = %s OR k.{qn('previous_key_hash')} = %s LIMIT 2"
    )


def apikey_get(*, api_key_id: str) -> ApiKey:
    """The key (with tenant and agent), or KEY_001; an id not in the `key_` format is simply not found."""
    key = None
    if isinstance(api_key_id, str) and _ID_RE.match(api_key_id):
        key = ApiKey.objects.select_related("tenant", "agent").filter(pk=api_key_id).first()
    if key is None:
        raise ApplicationError(ErrorCode.KEY_001, "The API key does not exist.")
    return key


def apikey_get_shown(*, api_key_id: str) -> ApiKey:
    """`apikey_get` for `GET /api-keys/{id}`: the key row alone (the answer shows the tenant and agent ids
    only), read with one prepared statement; KEY_001 likewise."""
    key = object_by_pk(ApiKey, api_key_id) if isinstance(api_key_id, str) and _ID_RE.match(api_key_id) else None
    if key is None:
        raise ApplicationError(ErrorCode.KEY_001, "The API key does not exist.")
    return key


def status_q(status: str, *, now: datetime | None = None) -> Q:
    """The computed status (spec §2.4) as a database condition."""
    now = now or timezone.now()
    if status == ApiKey.Status.DISABLED:
        return Q(disabled_at__isnull=False)
    if status == ApiKey.Status.EXPIRED:
        return Q(disabled_at__isnull=True, expires_at__isnull=False, expires_at__lte=now)
    return Q(disabled_at__isnull=True) & (Q(expires_at__isnull=True) | Q(expires_at__gt=now))


def apikey_list(*, tenant_id: str | None = None, agent_id: str | None = None,
                status: str | None = None) -> QuerySet[ApiKey]:
    """Keys, newest first. Unknown tenant/agent filters simply match nothing (spec §1.7). The rows alone:
    the Key object shows its tenant and agent ids only."""
    query = ApiKey.objects.all()
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    if agent_id is not None:
        query = query.filter(agent_id=agent_id)
    if status:
        query = query.filter(status_q(status))
    return query.order_by("-created_at", "-id")


class KeyRecord:
    """The verification view of a key row: the `_VERIFY_COLUMNS` of `ApiKey` under the same attribute
    names, plus `tenant_status` and `agent_status`. Read-only; never holds a secret (hashes only).

    A plain object rather than an `ApiKey` instance: building a model instance through `raw()` (field
    converters, `from_db`, `__init__`) cost more client CPU than the statement itself on the hottest path.
    """

    __slots__ = (*_VERIFY_COLUMNS, "tenant_status", "agent_status")

    def __init__(self, row, conn):
        convert_dt = conn.ops.convert_datetimefield_value
        for name, value in zip(self.__slots__, row):
            if value is not None:
                if name in _DATETIME_COLUMNS:
                    value = convert_dt(value, None, conn)
                elif name in _JSON_COLUMNS:
                    value = ApiKey._meta.get_field(name).from_db_value(value, None, conn)
            setattr(self, name, value)

    @classmethod
    def from_values(cls, values) -> "KeyRecord":
        """A record from `values()` (the key-state cache's entry, `apikeys.keycache`)."""
        record = cls.__new__(cls)
        for name, value in zip(cls.__slots__, values):
            setattr(record, name, value)
        return record

    def values(self) -> list:
        """The attributes in `__slots__` order (datetimes stay datetimes; the cache encodes them)."""
        return [getattr(self, name) for name in self.__slots__]

    @property
    def pk(self) -> str:
        return self.id

    def status_at(self, now) -> str:
        return computed_status(self.disabled_at, self.expires_at, now)

    def __repr__(self) -> str:
        return f"<KeyRecord {self.id}>"


class Found:
    """A key a presented secret belongs to: `record`, `using_previous_secret`, and `pending`, the key's
    uses pending in Redis when the lookup already knows them (a warm key-state cache entry), else None."""

    __slots__ = ("record", "using_previous_secret", "pending")

    def __init__(self, record: KeyRecord, using_previous_secret: bool, pending=None):
        self.record = record
        self.using_previous_secret = using_previous_secret
        self.pending = pending


def _match(rows, digest: str, tenant_id: str, agent_id: str, now) -> tuple[KeyRecord, bool] | None:
    for row in rows:
        if row.tenant_id != tenant_id or row.agent_id != agent_id:
            continue
        if row.key_hash == digest:
            return row, False
        if row.previous_key_hash == digest and row.previous_key_expires_at is not None \
                and row.previous_key_expires_at > now:
            return row, True
    return None


def apikey_find_by_secret(*, raw_key: str, tenant_id: str, agent_id: str) -> Found | None:
    """The key a presented secret belongs to (key, tenant and agent state).

    Matches the current secret, or the previous secret while its grace period lasts, and requires the
    ids parsed from the key to be the row's (spec §2.3). With Redis the state usually comes from the
    key-state cache (`apikeys.keycache`: one round trip, no query); otherwise, and on a miss, from ONE
    database statement. Never from a process-local cache, so revocation is immediate everywhere.
    """
    from apikeys import keycache

    digest = hash_key(raw_key.strip())
    probe = keycache.lookup(digest, tenant_id)
    now = timezone.now()
    if probe is not None and probe.record is not None:
        record = probe.record
        # The entry was stored for this digest; the grace period of a previous secret is checked now.
        found = _match([record], digest, tenant_id, agent_id, now)
        return Found(found[0], found[1], probe.pending) if found is not None else None
    with connection.cursor() as cursor:
        cursor.execute(_find_sql(connection.vendor), [digest, digest])
        rows = [KeyRecord(values, connection) for values in cursor.fetchall()]
    found = _match(rows, digest, tenant_id, agent_id, now)
    if found is None:
        return None
    if probe is not None:
        keycache.store(digest, found[0], found[1], probe.generations)
    return Found(found[0], found[1])
