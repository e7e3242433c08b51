"""Model instances read with plain SQL, for the few hot reads where building the ORM's query cost
more CPU than the rest of the work (the intake: the token's user, the upload it locks).

The SQL names every concrete column of each model (`columns`), in the models' own order, and
the instances are built from the row as the ORM builds them: each value through the converters
the ORM's compiler would apply (the backend's and the field's own `from_db_value`; none for
most fields on PostgreSQL), then `Model.from_db`. So a field added to a model is read as well.
"""

from functools import cache
from typing import cast

from django.db import connection
from django.db.models import Model


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
