"""OPTIONS answers (spec §1.1: 200 with `Allow`; the body is not part of the contract)."""

from rest_framework.metadata import BaseMetadata


class MinimalMetadata(BaseMetadata):
    """Name and description only; never introspects serializers (which may need view arguments)."""

    def determine_metadata(self, request, view):
        return {"name": view.get_view_name(), "description": view.get_view_description()}
