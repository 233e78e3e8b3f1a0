"""The router every app uses: routes answer with and without a trailing slash, no redirect (§1.1)."""

from rest_framework.routers import SimpleRouter


class ApiRouter(SimpleRouter):
    def __init__(self):
        super().__init__()
        self.trailing_slash = "/?"
