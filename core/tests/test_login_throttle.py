"""Issue 12, item 16 (admin half): admin logins are throttled per username and per client IP."""

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(username="boss", password="right-password-1", is_staff=True)


def attempt(client, username, password, ip="192.0.2.1", **extra):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip, **extra)


def test_a_username_is_locked_after_its_failures_even_with_the_right_password(staff, settings):
    settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_USER = 3
    client = Client()
    for n in range(3):  # from different addresses: the per-username count still grows
        assert attempt(client, "boss", "wrong", ip=f"192.0.2.{n + 10}").status_code == 200
    response = attempt(client, "BOSS", "right-password-1", ip="192.0.2.99")
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1
    assert "_auth_user_id" not in client.session


def test_an_ip_is_locked_after_its_failures_across_usernames(staff, settings):
    settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_IP = 4
    client = Client()
    for n in range(4):
        assert attempt(client, f"guess{n}", "wrong").status_code == 200
    assert attempt(client, "boss", "right-password-1").status_code == 429
    # another address is not affected, and a success there works
    response = attempt(Client(), "boss", "right-password-1", ip="198.51.100.7")
    assert response.status_code == 302


def test_forged_x_forwarded_for_does_not_reset_the_ip_count(staff, settings):
    settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_IP = 3
    client = Client()
    for n in range(3):
        attempt(client, f"g{n}", "wrong", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    assert attempt(client, "boss", "right-password-1", HTTP_X_FORWARDED_FOR="203.0.113.200").status_code == 429


def test_a_success_clears_the_username_count(staff, settings):
    settings.MAIMCONFIG_ADMIN_LOGIN_MAX_FAILURES_PER_USER = 3
    client = Client()
    for _ in range(2):
        attempt(client, "boss", "wrong")
    assert attempt(client, "boss", "right-password-1").status_code == 302
    client.logout()
    for _ in range(2):
        assert attempt(client, "boss", "wrong").status_code == 200
    assert attempt(client, "boss", "right-password-1").status_code == 302
