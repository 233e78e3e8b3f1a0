"""Issue 12, items 2 and 5: the throttle identity cannot be chosen by the client, and a browser cannot
send an unsafe API request cross-site without a preflight."""

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from apikeys.models import ApiKey
from apikeys.tests.factories import ApiKeyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


# --- item 2: MAIMCONFIG_NUM_PROXIES=0 ignores X-Forwarded-For ---------------------------------------------

def test_default_settings_do_not_trust_x_forwarded_for():
    from django.conf import settings

    assert settings.MAIMCONFIG_NUM_PROXIES == 0
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0  # DRF's None would trust the whole header


def test_rotating_x_forwarded_for_does_not_escape_the_auth_throttle(api_client, settings):
    settings.MAIMCONFIG_AUTH_THROTTLE_RATE = "5/min"
    statuses = [
        api_client.post("/api/v2/auth/parse-api-key", {"api_key": "mmc_x"}, format="json",
                        HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(8)
    ]
    assert statuses[:5] == [200] * 5
    assert statuses[5:] == [429] * 3


def test_header_rotation_cannot_evict_a_keys_rate_counter(api_client, frozen_clock):
    """With the local-memory cache (300 entries by default), one throttle entry per forged address used to
    cull the per-key counters: the key's third use in the minute then went through. (Frozen clock: the 400
    requests must not straddle a minute boundary.)"""
    key = ApiKeyFactory(rate_limit_per_minute=2)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key.raw_key}")
    for _ in range(2):
        assert client.post("/api/v1/usage/log", {"action": "a"}, format="json").status_code == 200
    for n in range(400):
        api_client.post("/api/v2/auth/parse-api-key", {"api_key": "mmc_x"}, format="json",
                        HTTP_X_FORWARDED_FOR=f"198.51.{n // 256}.{n % 256}")
    response = client.post("/api/v1/usage/log", {"action": "a"}, format="json")
    assert response.status_code == 429, response.content
    assert response.json()["error_code"] == "AUTH_008"


# --- item 5: unsafe requests without credentials need the JSON content type (or a custom header) ------------

@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
                                          "application/octet-stream"])
def test_open_mode_cross_site_form_post_cannot_disable_a_key(open_mode, content_type):
    key = ApiKeyFactory()
    client = APIClient()
    response = client.generic("POST", f"/api/v2/api-keys/{key.id}/disable", b"", CONTENT_TYPE=content_type)
    assert response.status_code == 415, response.content
    assert response.json()["error_code"] == "UNSUPPORTED_MEDIA_TYPE"
    assert ApiKey.objects.get(pk=key.id).disabled_at is None


@pytest.mark.parametrize("content_type", [None, "text/plain"])
@pytest.mark.parametrize("browser_headers", [
    {"HTTP_ORIGIN": "https://evil.example"},
    {"HTTP_SEC_FETCH_SITE": "cross-site"},
    {"HTTP_SEC_FETCH_SITE": "same-site", "HTTP_ORIGIN": "http://testserver"},
    {"HTTP_ORIGIN": "null"},
])
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_open_mode_no_cors_fetch_from_another_site_cannot_write(open_mode, browser_headers, method, content_type):
    """`fetch(url, {method, mode: "no-cors"})` sends no content type but names its site."""
    key = ApiKeyFactory()
    path = f"/api/v2/api-keys/{key.id}/disable" if method == "POST" else f"/api/v2/api-keys/{key.id}"
    response = APIClient().generic(method, path, b"", content_type=content_type, **browser_headers)
    assert response.status_code == 415, response.content
    key = ApiKey.objects.get(pk=key.id)
    assert key.disabled_at is None


def test_open_mode_plain_http_clients_without_body_still_work(open_mode):
    """The original's clients (`requests.post(url)`, `requests.delete(url)`, curl) send no content type
    and no browser headers: they keep working (issue 13)."""
    key = ApiKeyFactory()
    client = APIClient()
    assert client.generic("POST", f"/api/v2/api-keys/{key.id}/disable", b"", content_type=None).status_code == 200
    assert ApiKey.objects.get(pk=key.id).disabled_at is not None
    same_origin = client.generic("POST", f"/api/v2/api-keys/{key.id}/enable", b"", content_type=None,
                                 HTTP_ORIGIN="http://testserver")
    assert same_origin.status_code == 200, same_origin.content
    assert client.generic("DELETE", f"/api/v2/api-keys/{key.id}", b"", content_type=None).status_code == 200
    assert not ApiKey.objects.filter(pk=key.id).exists()


def test_open_mode_json_or_custom_header_without_body_still_works(open_mode):
    key = ApiKeyFactory()
    client = APIClient()
    response = client.generic("POST", f"/api/v2/api-keys/{key.id}/disable", b"", content_type="application/json")
    assert response.status_code == 200, response.content
    response = client.generic("POST", f"/api/v2/api-keys/{key.id}/enable", b"", HTTP_X_REQUESTED_WITH="XMLHttpRequest")
    assert response.status_code == 200, response.content


def test_a_request_with_an_authorization_header_needs_no_content_type(operator_client):
    key = ApiKeyFactory()
    response = operator_client.generic("POST", f"/api/v2/api-keys/{key.id}/disable", b"")
    assert response.status_code == 200, response.content
    response = operator_client.delete(f"/api/v2/api-keys/{key.id}")
    assert response.status_code == 200, response.content
