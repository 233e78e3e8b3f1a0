"""Signals `core` sends so that the apps standing on it can react without `core` importing them."""

from django.dispatch import Signal

# Sent inside the transaction that issued an operator token (`core.services`), with `user`, `rotated` (the
# user had a token, which stopped working) and `created_user` (the user was created with it). The token
# itself is never sent. The audit trail records one event per token issued (`audit.receivers`).
operator_token_issued = Signal()
