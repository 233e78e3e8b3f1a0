"""Serializer plumbing shared by the apps."""

import copy

from rest_framework import serializers


class OutputModelSerializer(serializers.ModelSerializer):
    """A `ModelSerializer` for answers, whose field set is worked out once per class.

    DRF's `ModelSerializer.get_fields()` inspects the model (field classes, kwargs, relations) for every
    serializer instance, that is for every object of every answer; on `GET /api/v2/tenants/{id}` it was a
    fifth of the request's CPU time (issue 11). The result depends only on the class (its `Meta` and
    declared fields), so it is built once and each instance gets a deep copy, exactly what a plain
    `Serializer` does with its declared fields.
    """

    def get_fields(self):
        cls = type(self)
        template = cls.__dict__.get("_field_template")
        if template is None:
            template = super().get_fields()
            cls._field_template = template
        return {name: copy.copy(field) for name, field in template.items()}
