"""The envelope and the error policy (spec §1.2–§1.6) for every error class, on a real route."""

import json
import uuid

import pytest

ENVELOPE_KEYS = ["success", "message", "data", "timestamp", "request_id", "tenant_id", "execution_time",
                 "error", "error_code"]

pytestmark = pytest.mark.django_db


def assert_envelope(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert list(body) == ENVELOPE_KEYS
    assert body["error_code"] == code
    assert body["success"] is (code is None)
    assert isinstance(body["execution_time"], float | int)
    assert body["request_id"] == response["X-Request-ID"]
    if code:
        assert isinstance(body["error"], str) and "Traceback" not in body["error"]
    return body


def test_success_envelope(operator_client):
    body = assert_envelope(operator_client.get("/api/v2/tenants"), 200, None)
    assert body["error"] is None and body["message"] == "Tenants listed"
    assert len(body["timestamp"]) == 20 and body["timestamp"].endswith("Z")


def test_request_id_is_honoured_or_generated(operator_client):
    response = operator_client.get("/api/v2/tenants", HTTP_X_REQUEST_ID="bot-7.msg_1234")
    assert response.json()["request_id"] == "bot-7.msg_1234" == response["X-Request-ID"]
    response = operator_client.get("/api/v2/tenants", HTTP_X_REQUEST_ID="bad id with spaces")
    generated = response.json()["request_id"]
    assert str(uuid.UUID(generated)) == generated


def test_malformed_json(operator_client):
    response = operator_client.generic("POST", "/api/v2/tenants", "{not json", content_type="application/json")
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "non_field_errors" in body["data"]["errors"]


@pytest.mark.parametrize("payload", ["[1, 2]", '"a string"', "42", "null"])
def test_body_not_an_object(operator_client, payload):
    response = operator_client.generic("POST", "/api/v2/tenants", payload, content_type="application/json")
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert "non_field_errors" in body["data"]["errors"]


def test_wrong_types_are_reported_per_field(operator_client):
    response = operator_client.post("/api/v2/tenants", {"tenant_name": 123, "tenant_type": "galaxy",
                                                        "tenant_config": "x", "owner_id": ["a"]}, format="json")
    body = assert_envelope(response, 400, "VALIDATION_ERROR")
    assert set(body["data"]["errors"]) == {"tenant_name", "tenant_type", "tenant_config", "owner_id"}
    assert body["error"].startswith("tenant_name: ")


def test_over_long_string(operator_client):
    response = operator_client.post("/api/v2/tenants", {"tenant_name": "x" * 101, "tenant_type": "personal"},
                                    format="json")
    assert "tenant_name" in assert_envelope(response, 400, "VALIDATION_ERROR")["data"]["errors"]


def test_non_json_content_type(operator_client):
    response = operator_client.post("/api/v2/tenants", "tenant_name=a", content_type="application/x-www-form-urlencoded")
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")
    response = operator_client.post("/api/v2/tenants", {"a": "b"})  # multipart
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_non_utf8_charset_is_refused(operator_client):
    response = operator_client.generic("POST", "/api/v2/tenants", "{}", content_type="application/json; charset=latin-1")
    assert_envelope(response, 415, "UNSUPPORTED_MEDIA_TYPE")


def test_body_over_the_limit(operator_client, settings):
    settings.MAIMCONFIG_MAX_BODY_BYTES = 100
    payload = json.dumps({"tenant_name": "x" * 200, "tenant_type": "personal"})
    response = operator_client.generic("POST", "/api/v2/tenants", payload, content_type="application/json")
    assert_envelope(response, 413, "PAYLOAD_TOO_LARGE")


def test_unknown_api_path(operator_client):
    assert_envelope(operator_client.get("/api/v2/no-such-thing"), 404, "NOT_FOUND")
    assert_envelope(operator_client.post("/api/v3/x", {}, format="json"), 404, "NOT_FOUND")


def test_unknown_openai_path_uses_openai_shape(api_client):
    response = api_client.get("/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_wrong_method(operator_client):
    response = operator_client.delete("/api/v2/tenants")
    assert_envelope(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_trailing_slash_is_the_same_route(operator_client):
    assert operator_client.get("/api/v2/tenants/").status_code == 200
    assert operator_client.get("/api/v2/tenants").status_code == 200


@pytest.mark.parametrize("query, field", [("page=0", "page"), ("page_size=101", "page_size"), ("size=0", "size"),
                                          ("page=abc", "page"), ("page_size=-1", "page_size"), ("page=1.5", "page")])
def test_pagination_out_of_range_is_400_not_clamped(operator_client, query, field):
    body = assert_envelope(operator_client.get(f"/api/v2/tenants?{query}"), 400, "VALIDATION_ERROR")
    assert field in body["data"]["errors"]


def test_disallowed_host_is_a_400_envelope(operator_client):
    response = operator_client.get("/api/v2/tenants", HTTP_HOST="evil.example")
    assert_envelope(response, 400, "VALIDATION_ERROR")


def test_unexpected_exception_is_500_without_details(operator_client, monkeypatch, caplog):
    from tenants import selectors

    def boom(**kwargs):
        raise RuntimeError("secret internals: password=hunter2")

    monkeypatch.setattr(selectors, "tenant_list", boom)
    response = operator_client.get("/api/v2/tenants")
    body = assert_envelope(response, 500, "INTERNAL_ERROR")
    assert "hunter2" not in response.content.decode()
    assert body["data"] is None
    assert any("Unhandled exception" in r.getMessage() for r in caplog.records)


def test_log_lines_carry_the_request_id(operator_client, monkeypatch):
    """The JSON formatter writes the request id of the request being handled."""
    import logging

    from core.logging import JsonFormatter, RequestIdFilter
    from tenants import selectors

    lines = []

    class Capture(logging.Handler):
        def emit(self, record):
            lines.append(self.format(record))

    handler = Capture()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("maimconfig.api")
    logger.addHandler(handler)

    def boom(**kwargs):
        raise RuntimeError("x")

    monkeypatch.setattr(selectors, "tenant_list", boom)
    try:
        operator_client.get("/api/v2/tenants", HTTP_X_REQUEST_ID="trace-42")
    finally:
        logger.removeHandler(handler)
    entry = json.loads(lines[0])
    assert entry["request_id"] == "trace-42"
    assert entry["level"] == "ERROR" and "traceback" in entry


@pytest.mark.parametrize("extra", [{"HTTP_ACCEPT": "text/html"}, {"HTTP_ACCEPT": "application/xml"},
                                   {"QUERY_STRING": "format=xml"}])
def test_accept_and_format_are_not_negotiated(operator_client, api_client, extra):
    """Spec §1.2: `Accept` is not negotiated and unknown query parameters are ignored (was 500 / 404)."""
    assert_envelope(operator_client.get("/api/v2/tenants", **extra), 200, None)
    response = api_client.post("/api/v2/auth/parse-api-key", {"api_key": "x"}, format="json", **extra)
    assert_envelope(response, 200, "AUTH_001")
