"""Prints the usage_count of the key in BENCH_KEY_ID as the API shows it: stored + pending in Redis
(run via manage.py shell)."""

import os

from apikeys.usage import shown

print(shown(os.environ["BENCH_KEY_ID"])[0])
