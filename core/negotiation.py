"""Content negotiation that never refuses (spec §1.2: the `Accept` header is not negotiated).

DRF's default negotiation answers 406 (`NotAcceptable`) for an `Accept` no renderer offers, and 404 for
a `?format=` no renderer has; neither is in the error catalogue (both became 500s), and unknown query
parameters must be ignored. Views that offer several renderers (the schema) still honour a matching
`Accept`/`format`; anything else gets the view's first renderer.
"""

from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation


class FirstRendererFallbackNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except (NotAcceptable, Http404):
            return renderers[0], renderers[0].media_type
