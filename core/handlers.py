"""The service's WSGI handler: Django's, with request transactions only where a request can write.

`ATOMIC_REQUESTS` stays on (style guide: every write of a request commits or rolls back as a whole), but a
safe request (`GET`, `HEAD`, `OPTIONS`) runs without a transaction: its reads autocommit one statement at a
time, so a `GET` of one object costs authentication plus one query per object shown, and no
`BEGIN`/`COMMIT` round trips (issue 11). Safe routes write nothing that needs atomicity: the only write a
`GET` can make is the single-statement use count of an agent key, which must stay counted anyway.

Served by the sync lane (`core.lanes.build_application`) and by `maimconfig/wsgi.py`.
"""

from django.core.handlers.wsgi import WSGIHandler

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class ServiceWSGIHandler(WSGIHandler):
    def make_view_atomic(self, view):
        atomic_view = super().make_view_atomic(view)
        if atomic_view is view:  # non_atomic_requests view, or ATOMIC_REQUESTS off
            return view

        def per_method(request, *args, **kwargs):
            if request.method in SAFE_METHODS:
                return view(request, *args, **kwargs)
            return atomic_view(request, *args, **kwargs)

        return per_method
