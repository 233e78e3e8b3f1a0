"""The OpenAPI document generates without warnings or errors (drf-spectacular's own validator)."""

from django.core.management import call_command


def test_schema_generates_without_warnings(tmp_path):
    out = tmp_path / "schema.yaml"
    # --fail-on-warn turns every drf-spectacular warning into a CommandError.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert out.stat().st_size > 1000


def _schema():
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def test_successes_are_200_and_errors_are_declared():
    paths = _schema()["paths"]
    create = paths["/api/v2/tenants/"]["post"]["responses"]
    delete = paths["/api/v2/tenants/{tenant_id}/"]["delete"]["responses"]
    assert "200" in create and "201" not in create
    assert "200" in delete and "204" not in delete and "content" in delete["200"]
    for status in ("400", "401", "403", "404", "409", "413", "415", "429", "500", "503"):
        assert create[status]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorEnvelope")
    openai = paths["/v1/chat/completions/"]["post"]["responses"]
    assert openai["504"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIErrorOutput")


def test_list_envelope_is_not_wrapped_twice():
    schema = _schema()
    ref = schema["paths"]["/api/v2/tenants/"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    component = schema["components"]["schemas"][ref["$ref"].rsplit("/", 1)[1]]
    assert set(component["required"]) >= {"success", "data", "error_code"}


def test_streaming_routes_document_the_event_stream():
    paths = _schema()["paths"]
    for route in ("/api/v2/chat/", "/v1/chat/completions/"):
        content = paths[route]["post"]["responses"]["200"]["content"]
        assert set(content) == {"application/json", "text/event-stream"}, route
        assert content["text/event-stream"]["schema"]["type"] == "string"
