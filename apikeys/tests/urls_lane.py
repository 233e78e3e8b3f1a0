"""The probe routes of `urls_probe` beside every real route (tests of the Redis lane use both)."""

from apikeys.tests.urls_probe import urlpatterns as probe_patterns
from maimconfig.urls import urlpatterns as real_patterns

urlpatterns = [p for p in probe_patterns if "agent-activity" not in str(p.pattern)] + list(real_patterns)
