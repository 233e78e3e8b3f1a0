"""The agent configuration document (agent-config.md), by concern:

* `paths`: value paths used as error and warning keys;
* `secrets`: provider keys encrypted at rest, decrypted only to call a provider;
* `validation`: limits, the JSON Schema (`catalogue.schema`), unique names, the system-provider rule, warnings;
* `merge`: normalization, merge or replace, the storage form, and `prepare_write` (the whole write);
* `presentation`: the effective view and the masked copy for responses.

The names below are the package's interface; the schema itself lives in `catalogue.schema`.
"""

from agents.configdoc.merge import (
    MASK_WITHOUT_KEY, deep_merge, load_stored, normalize_document, prepare_write, strip_nulls, to_storage,
)
from agents.configdoc.paths import join_path, path_of
from agents.configdoc.presentation import effective_document, mask_document
from agents.configdoc.secrets import (
    ENCRYPTED_PREFIX, MASK, decrypt_secret, encrypt_secret, provider_api_key, reencrypt_document, reencrypt_secret,
)
from agents.configdoc.validation import (
    MAX_DEPTH, MAX_DOCUMENT_BYTES, check_system_providers, document_warnings, validate_document,
)

__all__ = [
    "ENCRYPTED_PREFIX", "MASK", "MASK_WITHOUT_KEY", "MAX_DEPTH", "MAX_DOCUMENT_BYTES", "check_system_providers",
    "decrypt_secret", "deep_merge", "document_warnings", "effective_document", "encrypt_secret", "join_path",
    "load_stored", "mask_document", "normalize_document", "path_of", "prepare_write", "provider_api_key",
    "reencrypt_document", "reencrypt_secret", "strip_nulls", "to_storage", "validate_document",
]
