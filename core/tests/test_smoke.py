"""Ops routes (spec §13) and the documentation pages."""

import re

import pytest

pytestmark = pytest.mark.django_db


def test_root_lists_endpoints(api_client):
    response = api_client.get("/")
    body = response.json()
    assert response.status_code == 200
    assert body["name"] == "MaimConfig"
    assert body["endpoints"]["tenants"] == "/api/v2/tenants"
    assert body["version"] == "2.0.0"


def test_health_checks_database_and_cache(api_client):
    response = api_client.get("/health")
    body = response.json()
    assert response.status_code == 200
    assert body["status"] == "healthy"
    assert body["services"] == {"database": "healthy", "cache": "healthy", "api": "healthy"}
    assert isinstance(body["timestamp"], float)
    assert api_client.get("/health/").status_code == 200


def test_info_reports_real_backend_and_auth_mode(api_client, settings):
    from django.db import connection

    body = api_client.get("/info").json()
    expected = "sqlite" if connection.vendor == "sqlite" else ("mariadb" if connection.mysql_is_mariadb else "mysql")
    assert body["architecture"]["database"] == expected
    assert body["architecture"]["auth_mode"] == "operator"
    settings.MAIMCONFIG_AUTH_MODE = "open"
    assert api_client.get("/info").json()["architecture"]["auth_mode"] == "open"


def test_ops_routes_ignore_a_bad_credential(api_client):
    api_client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert api_client.get("/health").status_code == 200
    assert api_client.get("/").status_code == 200


def test_ops_routes_carry_request_id(api_client):
    response = api_client.get("/health", HTTP_X_REQUEST_ID="probe-1")
    assert response["X-Request-ID"] == "probe-1"


def test_openapi_document(api_client):
    response = api_client.get("/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["info"]["title"] == "MaimConfig API"
    assert schema["info"]["version"] == "2.0.0"
    assert "/api/v2/tenants" in "".join(schema["paths"])


@pytest.mark.parametrize("path", ["/docs", "/redoc"])
def test_docs_load_only_same_origin_assets(api_client, path):
    response = api_client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls, "the page references its assets"
    for url in urls:
        assert not re.match(r"^(https?:)?//", url), f"{path} loads {url} from another host"
    for url in urls:
        if url.startswith("/static/"):
            assert api_client.get(url).status_code == 200, url


def test_metrics_are_public_prometheus_text(api_client):
    api_client.get("/health")
    response = api_client.get("/metrics")
    assert response.status_code == 200
    assert b"django_http_requests" in response.content
