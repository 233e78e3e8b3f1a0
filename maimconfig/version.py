"""The service's release version: the one string shown by /, /health, /info and the OpenAPI document."""

VERSION = "2.0.0"
