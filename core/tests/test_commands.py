"""`manage.py create_operator` and the first-run operator (spec §1.13)."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from core.models import OperatorToken
from core.services import hash_token
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


def run(*args):
    out, err = StringIO(), StringIO()
    call_command("create_operator", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_creates_a_staff_user_and_prints_the_token_once():
    out, _ = run("alice")
    token = out.strip()
    user = get_user_model().objects.get(username="alice")
    assert user.is_staff and user.is_active and not user.has_usable_password()
    assert OperatorToken.objects.get(user=user).key_hash == hash_token(token)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get("/api/v2/tenants").status_code == 200
    again, err = run("alice")
    assert again == "" and "kept" in err


def test_rotate_replaces_the_token():
    old = run("alice")[0].strip()
    new = run("alice", "--rotate")[0].strip()
    assert new and new != old
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/v2/tenants").status_code == 401


def test_existing_operator_without_token_gets_one(django_user_model):
    django_user_model.objects.create_user(username="carol", password="x", is_staff=True)
    token = run("carol")[0].strip()
    assert token.startswith("mco_") and len(token) == 47


@pytest.mark.parametrize("username", ["", "bad name", "x" * 151, "semi;colon"])
def test_invalid_username_is_an_error(username):
    with pytest.raises(CommandError):
        run(username)


def test_existing_non_staff_user_is_refused_and_unchanged(django_user_model):
    user = django_user_model.objects.create_user(username="dave", password="x")
    with pytest.raises(CommandError, match="not an active staff user"):
        run("dave")
    user.refresh_from_db()
    assert not user.is_staff and not OperatorToken.objects.filter(user=user).exists()


def test_unknown_option_exits_non_zero():
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "manage.py", "create_operator", "x", "--bogus"],
                            capture_output=True, text=True, env={"SECRET_KEY": "x", "PATH": "/usr/bin:/bin"})
    assert result.returncode != 0 and "bogus" in result.stderr


def test_first_run_creates_admin_once():
    out = StringIO()
    call_command("ensure_first_operator", stdout=out)
    text = out.getvalue()
    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.is_staff
    token = text.split("API token     : ")[1].split()[0]
    assert OperatorToken.objects.get(user=admin).key_hash == hash_token(token) and "password" in text
    password = text.split("password ")[1].split()[0]
    assert admin.check_password(password)
    out = StringIO()
    call_command("ensure_first_operator", stdout=out)
    assert out.getvalue() == ""
    assert get_user_model().objects.count() == 1


def test_first_run_does_nothing_when_users_exist(operator):
    out = StringIO()
    call_command("ensure_first_operator", stdout=out)
    assert out.getvalue() == "" and not get_user_model().objects.filter(username="admin").exists()
