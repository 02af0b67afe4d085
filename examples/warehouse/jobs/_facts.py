"""Shared step of the fact loads: map staged rows to date keys and upsert them.

Used by ``LoadFactWeather`` and ``LoadFactStocks``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from datetime import date
from typing import Any

from sqlalchemy import Connection, Table, select

from etl_runtime import Statistics
from warehouse.schema import date_key_of


def known_date_keys(connection: Connection, dim_date: Table) -> set[int]:
    return set(connection.execute(select(dim_date.c.date_key)).scalars())


def keyed_rows(
    rows: Iterable[dict[str, Any]],
    date_keys: set[int],
    statistics: Statistics,
    to_fact: Callable[[dict[str, Any], int], dict[str, Any]],
) -> Iterator[dict[str, Any]]:
    """Yield ``to_fact(row, date_key)`` for each staged row; raise when dim_date lacks its day."""
    for row in rows:
        statistics.add("rows_read")
        day: date = row["date"]
        key = date_key_of(day)
        if key not in date_keys:
            raise LookupError(f"day {day} is not in dim_date; run BuildDimDate before loading facts")
        yield to_fact(row, key)
