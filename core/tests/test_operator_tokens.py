"""Issue 12, item 3 (spec §1.13): operator tokens stored hashed, with a display prefix, optional expiry and
`last_used_at`; shown once; existing DRF tokens hashed in place; no clear-token admin or command."""

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from core.authentication import LAST_USED_RESOLUTION, OperatorTokenAuthentication
from core.models import OperatorToken
from core.services import hash_token, operator_token_issue

pytestmark = pytest.mark.django_db


def client_for(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_only_the_hash_and_a_prefix_are_stored(operator):
    row, token = operator_token_issue(user=operator)
    stored = OperatorToken.objects.values().get(pk=row.pk)
    assert token not in {str(v) for v in stored.values()}
    assert stored["key_hash"] == hashlib.sha256(token.encode()).hexdigest()
    assert token.startswith(stored["prefix"]) and len(stored["prefix"]) == 12
    assert client_for(token).get("/api/v2/tenants").status_code == 200


def test_expired_token_is_refused_like_an_unknown_one(operator):
    row, token = operator_token_issue(user=operator, expires_at=timezone.now() - timedelta(seconds=1))
    response = client_for(token).get("/api/v2/tenants")
    assert response.status_code == 401
    assert response.json()["error_code"] == "NOT_AUTHENTICATED"
    row.expires_at = timezone.now() + timedelta(days=1)
    row.save()
    assert client_for(token).get("/api/v2/tenants").status_code == 200


def test_authentication_is_one_round_trip_and_last_used_is_written_at_most_once_a_minute(
        operator, django_assert_num_queries):
    row, token = operator_token_issue(user=operator)
    auth = OperatorTokenAuthentication()
    with django_assert_num_queries(4):  # SELECT, then the first use: SAVEPOINT, UPDATE, RELEASE
        user, credential = auth.authenticate_credentials(token)
    assert user.pk == operator.pk
    first = OperatorToken.objects.get(pk=row.pk).last_used_at
    assert first is not None
    with django_assert_num_queries(1):  # within the minute: the SELECT only
        auth.authenticate_credentials(token)
    assert OperatorToken.objects.get(pk=row.pk).last_used_at == first
    OperatorToken.objects.filter(pk=row.pk).update(last_used_at=first - LAST_USED_RESOLUTION)
    auth.authenticate_credentials(token)
    assert OperatorToken.objects.get(pk=row.pk).last_used_at > first


def test_rotation_stops_the_old_token_at_once(operator):
    _, old = operator_token_issue(user=operator)
    _, new = operator_token_issue(user=operator)
    assert client_for(old).get("/api/v2/tenants").status_code == 401
    assert client_for(new).get("/api/v2/tenants").status_code == 200


def test_create_operator_expires_in():
    out, err = StringIO(), StringIO()
    call_command("create_operator", "erin", "--expires-in", "90d", stdout=out, stderr=err)
    token = out.getvalue().strip()
    row = OperatorToken.objects.get(key_hash=hash_token(token))
    assert timedelta(days=89, hours=23) < row.expires_at - timezone.now() <= timedelta(days=90)
    with pytest.raises(CommandError, match="duration"):
        call_command("create_operator", "erin", "--rotate", "--expires-in", "soon", stdout=out, stderr=err)


def test_drf_token_admin_and_command_are_gone(admin_client):
    assert not apps.is_installed("rest_framework.authtoken")
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 404
    with pytest.raises(CommandError, match="Unknown command"):
        call_command("drf_create_token", "someone")


def test_admin_lists_prefixes_only_and_shows_a_new_token_once_with_no_store(admin_client, operator):
    row, old = operator_token_issue(user=operator)
    listing = admin_client.get("/admin/core/operatortoken/")
    assert listing.status_code == 200
    text = listing.content.decode()
    assert row.prefix in text and old not in text and row.key_hash not in text
    response = admin_client.post("/admin/core/operatortoken/add/", {"user": operator.pk, "expires_at_0": "",
                                                                    "expires_at_1": ""})
    assert response.status_code == 200, response.content[:500]
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies.get("messages")
    new_row = OperatorToken.objects.get(user=operator)
    page = response.content.decode()
    token = page.split('class="secret"')[1].split(">")[1].split("<")[0]
    assert hash_token(token) == new_row.key_hash
    assert client_for(old).get("/api/v2/tenants").status_code == 401
    assert client_for(token).get("/api/v2/tenants").status_code == 200
    # Never again: the list and the (read-only) detail show the prefix only.
    assert token not in admin_client.get("/admin/core/operatortoken/").content.decode()
    assert token not in admin_client.get(f"/admin/core/operatortoken/{new_row.pk}/change/").content.decode()


@pytest.mark.django_db(transaction=True)
def test_migration_hashes_existing_drf_tokens_in_place(django_user_model):
    """The upgrade: a clear DRF token keeps working once hashed, and the clear row is gone."""
    from importlib import import_module

    migration = import_module("core.migrations.0002_hash_drf_tokens")
    user = django_user_model.objects.create_user(username="legacy", password="x", is_staff=True)
    clear = "0123456789abcdef0123456789abcdef01234567"
    q = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TABLE {q('authtoken_token')} ({q('key')} varchar(40) PRIMARY KEY, "
                       f"{q('created')} datetime(6) NOT NULL, {q('user_id')} integer NOT NULL)"
                       if connection.vendor == "mysql" else
                       f"CREATE TABLE {q('authtoken_token')} ({q('key')} varchar(40) PRIMARY KEY, "
                       f"{q('created')} datetime NOT NULL, {q('user_id')} integer NOT NULL)")
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {q('authtoken_token')} VALUES (%s, %s, %s)", [clear, timezone.now(), user.pk])
        with connection.schema_editor() as editor:
            migration.hash_existing_tokens(apps, editor)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COUNT(*) FROM {q('authtoken_token')}")
            assert cursor.fetchone()[0] == 0
        row = OperatorToken.objects.get(user=user)
        assert row.key_hash == hash_token(clear) and row.prefix == clear[:12]
        assert client_for(clear).get("/api/v2/tenants").status_code == 200
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {q('authtoken_token')}")
