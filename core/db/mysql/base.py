"""Django's MySQL/MariaDB backend with a health check that trusts a connection in steady use.

`CONN_HEALTH_CHECKS` (on: a persistent connection that the server closed, or a restarted server, must not
fail the next request) makes Django ping the server before the first query of every request. That ping is
a full round trip, and with the sync lane's threads busy, getting the GIL back after it cost a request more
than its own query (a sampling profile of `GET /api/v2/tenants/{id}` under load: the ping was the second
line, after the queries themselves; issue 11).

Here the ping is skipped when this connection served a request without error less than
`HEALTH_CHECK_GRACE_SECONDS` ago (a new connection counts: it has just answered); an idle connection and one
that saw an error are checked as before. The window a skipped check leaves open is that second: a server that went away within it fails
that request (503, `core.db_errors`) instead of being reconnected first, and the connection is then
dropped (Django closes a connection whose request saw a database error) so the next request reconnects.
"""

import time

from django.db.backends.mysql import base

HEALTH_CHECK_GRACE_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._used = False
        self._served_ok_at = float("-inf")

    def _cursor(self, name=None):
        self._used = True
        return super()._cursor(name)

    def close_if_unusable_or_obsolete(self):
        # Called when a request starts and when it finishes (django.db.close_old_connections).
        served_ok = self._used and self.connection is not None and not self.errors_occurred
        if self.errors_occurred:
            self._served_ok_at = float("-inf")
        super().close_if_unusable_or_obsolete()
        now = time.monotonic()
        if served_ok:
            self._served_ok_at = now
        self._used = False
        if self.connection is not None and now - self._served_ok_at < HEALTH_CHECK_GRACE_SECONDS:
            self.health_check_done = True

    def close(self):
        super().close()
        self._served_ok_at = float("-inf")
