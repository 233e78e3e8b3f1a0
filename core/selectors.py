"""Reads shared by the apps' selectors."""

from functools import cache

from django.db import connection
from django.db.models import Model


class PreparedRead:
    """`SELECT <every concrete column> FROM <table> WHERE <pk> = %s` for one model and database vendor,
    with, per column, the converters the ORM would apply (the backend's, then the field's): what
    `model.objects.filter(pk=…).first()` runs, without compiling the query on every call (on the detail
    routes compiling the ORM query cost more client CPU than running it)."""

    def __init__(self, model: type[Model]):
        qn = connection.ops.quote_name
        fields = model._meta.concrete_fields
        self.model = model
        self.names = [f.attname for f in fields]
        self.sql = (f"SELECT {', '.join(qn(f.column) for f in fields)} FROM {qn(model._meta.db_table)} "
                    f"WHERE {qn(model._meta.pk.column)} = %s")
        self.converters: dict[int, tuple] = {}
        for index, field in enumerate(fields):
            expression = field.get_col(model._meta.db_table)
            found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
            if found:
                self.converters[index] = (expression, found)

    def row(self, pk) -> list | None:
        """The row's raw column values (as the driver returns them), or None."""
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [pk])
            row = cursor.fetchone()
        return None if row is None else list(row)

    def convert(self, index: int, value):
        """Column `index`'s raw value as the ORM would give it to the model."""
        expression, functions = self.converters.get(index, (None, ()))
        for function in functions:
            value = function(value, expression, connection)
        return value

    def instance(self, values: list, *, converted: frozenset[int] = frozenset()):
        """The model instance of a row, converting every column but those in `converted`."""
        for index in self.converters:
            if index not in converted:
                values[index] = self.convert(index, values[index])
        return self.model.from_db(connection.alias, self.names, values)


@cache
def _prepared(model: type[Model], vendor: str) -> PreparedRead:
    return PreparedRead(model)


def prepared_read(model: type[Model]) -> PreparedRead:
    """The `PreparedRead` of `model` on the current connection's vendor, built once per process."""
    return _prepared(model, connection.vendor)


def object_by_pk(model: type[Model], pk: str):
    """The `model` row whose primary key is `pk` as a model instance (all fields), or None."""
    read = prepared_read(model)
    values = read.row(pk)
    return None if values is None else read.instance(values)
