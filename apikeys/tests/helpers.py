"""Test helpers of the apikeys app."""

from apikeys.usage import shown


def set_fields(model, pk, **values) -> None:
    """Change a row through the model layer, as every writer of the service does (a `save()`, so the
    Redis key-state cache is invalidated by `apikeys.signals`; a raw `QuerySet.update()` would bypass it)."""
    obj = model.objects.get(pk=pk)
    for name, value in values.items():
        setattr(obj, name, value)
    obj.save(update_fields=list(values))


def shown_usage(key) -> int:
    """The key's usage_count as the API shows it: stored + pending in Redis (spec §1.15)."""
    return shown(key.pk)[0]
