"""Reads shared by the apps' selectors."""

from functools import cache

from django.db import connection
from django.db.models import Model


@cache
def _by_pk(model: type[Model], vendor: str) -> tuple[str, list, list]:
    """`SELECT <every concrete column> FROM <table> WHERE <pk> = %s`, the attribute names, and per column
    the converters the ORM would apply (backend's, then field's), built once per model and vendor."""
    qn = connection.ops.quote_name
    fields = model._meta.concrete_fields
    sql = (f"SELECT {', '.join(qn(f.column) for f in fields)} FROM {qn(model._meta.db_table)} "
           f"WHERE {qn(model._meta.pk.column)} = %s")
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((index, expression, found))
    return sql, [f.attname for f in fields], converters


def object_by_pk(model: type[Model], pk: str):
    """The `model` row whose primary key is `pk` as a model instance (all fields), or None: what
    `model.objects.filter(pk=pk).first()` gives, from a statement written once per model (compiling the
    ORM query cost more client CPU than running it on the detail routes)."""
    sql, names, converters = _by_pk(model, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk])
        row = cursor.fetchone()
    if row is None:
        return None
    values = list(row)
    for index, expression, functions in converters:
        value = values[index]
        for function in functions:
            value = function(value, expression, connection)
        values[index] = value
    return model.from_db(connection.alias, names, values)
