"""drf-spectacular extensions for the project's authentication classes."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class OperatorTokenScheme(OpenApiAuthenticationExtension):
    target_class = "core.authentication.OperatorTokenAuthentication"
    name = "operatorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "Operator DRF token: `Authorization: Token <t>` or `Authorization: Bearer <t>`.",
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
