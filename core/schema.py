"""drf-spectacular extensions for the project's authentication classes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import is_serializer
from drf_spectacular.utils import OpenApiResponse


class ApiAutoSchema(AutoSchema):
    """Every success of this API is HTTP 200, creates and deletes included (spec §1.5), and a delete
    answers a body (`{id, deleted_at}`), so drf-spectacular's 201/204 defaults do not apply."""

    def _is_create_operation(self) -> bool:
        return False

    def _get_response_bodies(self, direction="response"):
        response = self.get_response_serializers()
        if self.method == "DELETE" and (is_serializer(response) or isinstance(response, OpenApiResponse)):
            return {"200": self._get_response_for_code(response, "200", direction=direction)}
        return super()._get_response_bodies(direction)


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Operator token (stored hashed; issued by `manage.py create_operator` or the admin): "
                           "`Authorization: Token <t>` or `Authorization: Bearer <t>`.",
        }


class OperatorSessionScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.OperatorSessionAuthentication"
    name = "adminSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid",
                "description": "Django admin session; unsafe methods need X-CSRFToken."}


class AgentKeyScheme(OpenApiAuthenticationExtension):
    target_class = "apikeys.authentication.AgentKeyAuthentication"
    name = "agentKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Agent API key: `Authorization: Bearer mmc_…` (bot-facing routes; spec §1.13).",
        }


# --- Error responses on every operation ---------------------------------------------------------------

_HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}
_BODY_METHODS = {"post", "put", "patch"}


def _error_statuses(path: str, method: str) -> list[int]:
    from core.errors import CATALOGUE

    statuses = {spec.status for spec in CATALOGUE.values()} - {502, 504}
    if method not in _BODY_METHODS:
        statuses -= {413, 415}
    if "/chat" in path:
        statuses |= {502, 504}
    return sorted(statuses)


# Statuses whose cause is not the operation's own (issue 15): described once for every operation.
_ERROR_DESCRIPTIONS = {
    409: "Conflict: the code of the resource (`TENANT_002`, `AGENT_002`, `KEY_002`, …), or `CONFLICT` when a "
         "database constraint refused the write (a duplicate, or a row deleted meanwhile).",
    503: "`SERVICE_UNAVAILABLE`: the database cannot serve the request now (unreachable, read-only, out of "
         "connections, a lock wait timeout or a deadlock). Nothing was changed; send it again after `Retry-After`.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: declare the error answers every operation can give.

    Views declare their success shape; the errors all come from one handler and one catalogue, so they
    are added here once: the envelope under /api, OpenAI's error shape under /v1, the bare shape of the
    v1 plugin route. An operation that already declares a status keeps its own.
    """
    from http import HTTPStatus

    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ErrorEnvelope", {
        "type": "object",
        "description": "The nine-key envelope of an error (spec §1.3): `success` false, `error` and `error_code` "
                       "set, `data` null or the details the code carries (`errors`, `retry_after`, `reason`).",
        "required": ["success", "message", "data", "timestamp", "request_id", "tenant_id", "execution_time",
                     "error", "error_code"],
        "properties": {
            "success": {"type": "boolean", "enum": [False]},
            "message": {"type": "string"},
            "data": {"type": "object", "nullable": True, "additionalProperties": True},
            "timestamp": {"type": "string", "example": "2026-11-24T21:50:12Z"},
            "request_id": {"type": "string"},
            "tenant_id": {"type": "string", "nullable": True},
            "execution_time": {"type": "number"},
            "error": {"type": "string"},
            "error_code": {"type": "string", "example": "VALIDATION_ERROR"},
        },
    })
    for path, item in result.get("paths", {}).items():
        if path.startswith("/v1/"):
            ref = "OpenAIErrorOutput"
        elif path.startswith("/api/v1/plugins/settings"):
            ref = "PluginV1Error"
        else:
            ref = "ErrorEnvelope"
        if ref not in schemas:
            ref = "ErrorEnvelope"
        for method, operation in item.items():
            if method not in _HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method):
                response = {
                    "description": _ERROR_DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
                }
                if status in (429, 503):
                    response["headers"] = {"Retry-After": {
                        "description": "Whole seconds to wait before sending the request again.",
                        "schema": {"type": "integer"}}}
                responses.setdefault(str(status), response)
    return result
