"""The catalogue of usage metrics: every name `metering.services.counters_add` accepts.

Counters are kept per UTC hour (`UsageCounter.bucket`) and per (tenant, agent, API key, dimension);
"" stands for "none" in each of those. The dimension depends on the metric:

| Metric | Counts | Dimension |
|---|---|---|
| `validation.accepted` | key verifications answered "valid" | "" |
| `validation.refused` | key verifications refused | the refusal's error code (`AUTH_003`, …) |
| `chat.requests` | chat calls answered by the upstream model | the route: `chat`, `batch_item`, `openai` |
| `chat.tokens_in` | prompt tokens reported by the upstream | the model name |
| `chat.tokens_out` | completion tokens reported by the upstream | the model name |
| `chat.upstream_errors` | chat calls the upstream failed | the error code (`CHAT_002`, `CHAT_003`, …) |

The estimated cost is derived at read time from `chat.tokens_in`/`chat.tokens_out` and the catalogue's
`price_in`/`price_out` (per million tokens) of the model named by the dimension.
"""

from django.utils.translation import gettext_lazy as _

VALIDATION_ACCEPTED = "validation.accepted"
VALIDATION_REFUSED = "validation.refused"
CHAT_REQUESTS = "chat.requests"
CHAT_TOKENS_IN = "chat.tokens_in"
CHAT_TOKENS_OUT = "chat.tokens_out"
CHAT_UPSTREAM_ERRORS = "chat.upstream_errors"

# name -> (human label, what the dimension holds)
METRICS: dict[str, tuple] = {
    VALIDATION_ACCEPTED: (_("Validations accepted"), ""),
    VALIDATION_REFUSED: (_("Validations refused"), "error code"),
    CHAT_REQUESTS: (_("Chat requests"), "route"),
    CHAT_TOKENS_IN: (_("Tokens in"), "model"),
    CHAT_TOKENS_OUT: (_("Tokens out"), "model"),
    CHAT_UPSTREAM_ERRORS: (_("Upstream errors"), "error code"),
}

CHAT_ROUTES = ("chat", "batch_item", "openai")


def label(metric: str) -> str:
    return str(METRICS[metric][0])
