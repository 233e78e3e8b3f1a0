"""Prints the stored usage_count of the key given in BENCH_KEY_ID (run via manage.py shell)."""

import os

from apikeys.models import ApiKey

print(ApiKey.objects.get(pk=os.environ["BENCH_KEY_ID"]).usage_count)
