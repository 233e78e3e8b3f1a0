"""System routes (api.md §12): the model catalogue and the MaiMBot defaults. Operator only.

A missing or broken file is not an error: the answer comes from the built-in fallback, and both the
`X-Config-Source` header and the end of `message` say where it came from.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.views import APIView

from catalogue import selectors as catalogue
from catalogue.serializers import BotDefaultsOutputSerializer, SystemModelsOutputSerializer
from core.api import ok
from core.openapi import envelope

SOURCE_HEADER = "X-Config-Source"


def _answer(data, *, message: str, source: str):
    return ok(data, message=f"{message} (Source: {source})", headers={SOURCE_HEADER: source})


def _header_doc(serializer):
    return {200: OpenApiResponse(envelope(serializer), description=(
        "`X-Config-Source: dynamic_toml` (read from the file) or `static_fallback` (built-in fallback)."))}


class SystemModelsView(APIView):
    @extend_schema(summary="System model catalogue (providers, models, task defaults)",
                   responses=_header_doc(SystemModelsOutputSerializer))
    def get(self, request):
        data, source = catalogue.system_models_data()
        return _answer(data, message="System models retrieved", source=source)


class BotDefaultsView(APIView):
    @extend_schema(summary="MaiMBot configuration defaults", responses=_header_doc(BotDefaultsOutputSerializer))
    def get(self, request):
        data, source = catalogue.bot_defaults_data()
        return _answer(data, message="Bot defaults retrieved", source=source)
