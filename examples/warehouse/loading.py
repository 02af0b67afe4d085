"""Batch writes of the demo warehouse jobs, with row counts in their statistics.

``TableWriter`` is a component: a job registers it so that its counters are saved with the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, select, tuple_
from sqlalchemy.dialects.postgresql import insert

from etl_runtime import Statistics


def positive_int(value: Any, name: str) -> int:
    """Return ``value`` as a positive int, or raise ValueError naming the parameter."""
    if isinstance(value, bool):
        raise ValueError(f"parameter {name!r} must be a positive integer, got {value!r}")
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"parameter {name!r} must be a positive integer, got {value!r}") from exc
    if number <= 0:
        raise ValueError(f"parameter {name!r} must be a positive integer, got {number}")
    return number


def batched(rows: Iterable[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


class TableWriter:
    """Component that inserts or upserts rows into one table in batches and counts them.

    Counters: ``rows_inserted``, ``rows_updated``, ``rows_deleted`` and ``batches``.
    """

    def __init__(self, table: Table, batch_size: int, name: str = "writer") -> None:
        self.table = table
        self.batch_size = batch_size
        self.name = name
        self.statistics = Statistics(name)

    def delete_all(self, connection: Connection) -> int:
        deleted = connection.execute(self.table.delete()).rowcount
        self.statistics.add("rows_deleted", deleted)
        return deleted

    def insert(
        self,
        connection: Connection,
        rows: Iterable[dict[str, Any]],
        check_stop: Callable[[], None] | None = None,
    ) -> None:
        """Insert the rows, one statement per batch."""
        for batch in batched(rows, self.batch_size):
            if check_stop is not None:
                check_stop()
            connection.execute(self.table.insert(), batch)
            self.statistics.add("rows_inserted", len(batch))
            self.statistics.add("batches")

    def upsert(
        self,
        connection: Connection,
        rows: Iterable[dict[str, Any]],
        check_stop: Callable[[], None] | None = None,
    ) -> None:
        """Insert the rows, replacing rows with the same primary key, and count which was which."""
        key_columns = list(self.table.primary_key.columns)
        for batch in batched(rows, self.batch_size):
            if check_stop is not None:
                check_stop()
            existing = self._existing_keys(connection, key_columns, batch)
            statement = insert(self.table)
            statement = statement.on_conflict_do_update(
                index_elements=key_columns,
                set_={
                    column.name: statement.excluded[column.name]
                    for column in self.table.columns
                    if not column.primary_key
                },
            )
            connection.execute(statement, batch)
            updated = sum(1 for row in batch if tuple(row[column.name] for column in key_columns) in existing)
            self.statistics.add("rows_updated", updated)
            self.statistics.add("rows_inserted", len(batch) - updated)
            self.statistics.add("batches")

    def _existing_keys(
        self, connection: Connection, key_columns: Sequence[Any], batch: list[dict[str, Any]]
    ) -> set[tuple[Any, ...]]:
        keys = [tuple(row[column.name] for column in key_columns) for row in batch]
        query = select(*key_columns).where(tuple_(*key_columns).in_(keys))
        return {tuple(row) for row in connection.execute(query)}
