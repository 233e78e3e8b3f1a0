"""drf-spectacular extensions: the configuration document's JSON Schema in the OpenAPI document."""

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.plumbing import ResolvedComponent

from catalogue import schema as config_schema


class AgentConfigDocumentExtension(OpenApiSerializerExtension):
    """`AgentConfigDocument`: converted from catalogue/schemas/agent_config.schema.json (one source of truth)."""

    target_class = "agents.serializers.AgentConfigDocumentSerializer"

    def map_serializer(self, auto_schema, direction):
        return config_schema.openapi_schema(request=direction == "request")


class AgentConfigResponseExtension(OpenApiSerializerExtension):
    """The config routes' `data`: the document plus `warnings`."""

    target_class = "agents.serializers.AgentConfigResponseSerializer"

    def map_serializer(self, auto_schema, direction):
        from agents.serializers import AgentConfigDocumentSerializer, ConfigWarningOutputSerializer

        document: ResolvedComponent = auto_schema.resolve_serializer(AgentConfigDocumentSerializer, direction)
        warning: ResolvedComponent = auto_schema.resolve_serializer(ConfigWarningOutputSerializer, direction)
        return {
            "allOf": [
                document.ref,
                {
                    "type": "object",
                    "properties": {"warnings": {"type": "array", "items": warning.ref}},
                    "required": ["warnings"],
                },
            ]
        }
