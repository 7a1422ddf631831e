"""Dataclasses as rows of their tables: a table's columns, in table order, are its dataclass's fields.

A row arrives in one of three forms, named like the `Dialect.name` of the driver handing it over:
`sqlalchemy` (SQLAlchemy's Python values), `sqlite` (sqlite3's own values) or `postgresql` (libpq's
text forms, as bytes: UTF-8, ISO dates in UTC, hex bytea; the token lookup's pinned connections, see
pinned.py). Each column's type says how its value reads in each form, so no dataclass has a
hand-written decoder.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from sqlalchemy import JSON, Boolean, Column, Engine, Integer, LargeBinary, String, Table, Uuid
from sqlalchemy.exc import IntegrityError

from coderapi.database.types import UTCDateTime

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

T = TypeVar("T", bound="DataclassInstance")
Read = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def _utc(text: str) -> dt.datetime:
    """A stored time's text: naive UTC on SQLite, with its offset on PostgreSQL."""
    at = dt.datetime.fromisoformat(text)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


def _json_tuple(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text) or ())


class _Kind(NamedTuple):
    """How a column type's value reads in each form (PostgreSQL's after decoding the text)."""

    sqlalchemy: Read
    sqlite: Read
    postgresql: Read


# In order of precedence (UTCDateTime before anything it might also be). JSON columns hold lists,
# read as tuples so the dataclasses stay immutable.
_KINDS: tuple[tuple[type[Any], _Kind], ...] = (
    (UTCDateTime, _Kind(_same, _utc, _utc)),
    (Uuid, _Kind(_same, uuid.UUID, uuid.UUID)),
    (JSON, _Kind(lambda v: tuple(v or ()), _json_tuple, _json_tuple)),
    (Boolean, _Kind(bool, bool, lambda text: text == "t")),
    (LargeBinary, _Kind(bytes, bytes, lambda text: bytes.fromhex(text[2:]))),  # `\x` and hex digits
    (Integer, _Kind(int, int, int)),
    (String, _Kind(_same, _same, _same)),
)


def _reader(column: Column[Any], form: str) -> Read:
    """How `column`'s value reads in `form` (a nullable column's NULL as None). Raises TypeError for a
    type no kind covers."""
    for type_, kind in _KINDS:
        if isinstance(column.type, type_):
            read: Read = getattr(kind, form)
            if not column.nullable or read is _same:
                return read
            return lambda value: None if value is None else read(value)
    raise TypeError(f"no reader for column {column} of type {column.type!r}")


class TableRow(Generic[T]):
    """`cls` as a row of `table`: built from the values of the table's columns, in table order, and
    inserted as one. `cls`'s fields must be the columns, by name and in order (TypeError otherwise)."""

    def __init__(self, cls: type[T], table: Table) -> None:
        self.cls = cls
        self.table = table
        self.columns: tuple[Column[Any], ...] = tuple(table.columns)
        fields = [f.name for f in dataclasses.fields(cls)]
        if fields != [c.name for c in self.columns]:
            raise TypeError(f"{cls.__name__}'s fields are not {table.name}'s columns in order")
        self.decode = self.decoder("sqlalchemy")

    def decoder(self, form: str) -> Callable[[Sequence[Any]], T]:
        """The function building a `cls` from the columns' values in `form`."""
        cls, text = self.cls, form == "postgresql"
        # Only the columns whose values need reading: a decoded row costs little more than a tuple.
        reads = tuple((i, read) for i, c in enumerate(self.columns) if (read := _reader(c, form)) is not _same)

        def decode(row: Sequence[Any]) -> T:
            values = [v.decode() if v is not None else None for v in row] if text else list(row)
            for i, read in reads:
                values[i] = read(values[i])
            return cls(*values)

        return decode

    def insert(self, engine: Engine, obj: T, duplicate: Exception) -> T:
        """Insert `obj` and return it. Raises `duplicate` when the database refuses the row (a unique
        or foreign key constraint)."""
        try:
            with engine.begin() as conn:
                conn.execute(self.table.insert().values({c.name: getattr(obj, c.name) for c in self.columns}))
        except IntegrityError:
            raise duplicate from None
        return obj
