"""Model instances read and written with plain SQL, for the few hot statements where building the
ORM's query cost more CPU than the rest of the work (the intake: the token's user, the upload it
locks, the document and its pages inserted together).

The SQL names every concrete column of each model (`columns`), in the models' own order, and
the instances are built from the row as the ORM builds them: each value through the converters
the ORM's compiler would apply (the backend's and the field's own `from_db_value`; none for
most fields on PostgreSQL), then `Model.from_db`. Inserts take each value as the ORM's insert
does (`pre_save`, then `get_db_prep_save`), DEFAULT for a `db_default` left unset. So a field
added to a model is read and written as well.
"""

from functools import cache
from typing import cast

from django.db import connection
from django.db.models import Field, Model
from django.db.models.expressions import DatabaseDefault


def columns(model: type[Model], alias: str) -> str:
    """The model's columns, qualified by the table's alias in the query, for a SELECT."""
    quote = connection.ops.quote_name
    return ", ".join(
        f"{alias}.{quote(cast(str, field.column))}" for field in model._meta.concrete_fields
    )


def built[M: Model](model: type[M], row: tuple | list, start: int) -> tuple[M, int]:
    """The instance whose columns (`columns`) start at `start` in the row, and where the next
    model's columns start."""
    names = [field.attname for field in model._meta.concrete_fields]
    end = start + len(names)
    values = list(row[start:end])
    for position, converters, column in _converters(model):
        for converter in converters:
            values[position] = converter(values[position], column, connection)
    return model.from_db(connection.alias, names, values), end


def built_if_any[M: Model](model: type[M], row: tuple | list, start: int) -> tuple[M | None, int]:
    """As `built`, or None when the primary key is NULL: an outer join found no row."""
    position = model._meta.concrete_fields.index(model._meta.pk)
    if row[start + position] is None:
        return None, start + len(model._meta.concrete_fields)
    return built(model, row, start)


@cache
def _converters(model: type[Model]) -> tuple:
    """(position, converters, column) for each field whose values the ORM converts, as its
    compiler finds them (SQLCompiler.get_converters)."""
    found = []
    for position, field in enumerate(model._meta.concrete_fields):
        column = field.get_col(model._meta.db_table)
        converters = connection.ops.get_db_converters(column) + column.get_db_converters(connection)
        if converters:
            found.append((position, converters, column))
    return tuple(found)


def inserted_fields(model: type[Model]) -> list[Field]:
    """The fields an INSERT names: every concrete one but the primary key, which it returns."""
    return [field for field in model._meta.concrete_fields if not field.primary_key]


def insert_values(instance: Model, fields: list[Field]) -> list:
    """The instance's values for those fields, as the ORM's insert takes them."""
    return [field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields]


def column_marks(fields: list[Field], values: list) -> list[tuple[str, str]]:
    """Each field's column and its value's mark: a parameter, or DEFAULT (db_default) unset."""
    return [
        (cast(str, field.column), "DEFAULT" if isinstance(value, DatabaseDefault) else "%s")
        for field, value in zip(fields, values, strict=True)
    ]


def without_defaults(values: list) -> list:
    """The values that are parameters (column_marks' "%s"), in order."""
    return [value for value in values if not isinstance(value, DatabaseDefault)]
