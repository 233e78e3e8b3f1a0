"""Fixtures shared by every app's tests."""

import pytest
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


def pytest_collection_modifyitems(config, items):
    from django.conf import settings

    on_mysql = settings.DATABASES["default"]["ENGINE"].endswith("mysql")
    skip = pytest.mark.skip(reason="needs MariaDB/MySQL (set DATABASE_URL=mysql://...)")
    for item in items:
        if "mariadb" in item.keywords and not on_mysql:
            item.add_marker(skip)


@pytest.fixture
def api_client() -> APIClient:
    """A client with no credential."""
    return APIClient()


@pytest.fixture
def operator(django_user_model):
    return django_user_model.objects.create_user(username="operator", password="pw-operator-1", is_staff=True)


@pytest.fixture
def operator_token(operator) -> str:
    return Token.objects.create(user=operator).key


@pytest.fixture
def operator_client(operator_token) -> APIClient:
    """A client authenticated as an operator with a DRF token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {operator_token}")
    return client


@pytest.fixture
def open_mode(settings):
    settings.MAIMCONFIG_AUTH_MODE = "open"


@pytest.fixture
def db_vendor() -> str:
    return connection.vendor
