"""``BuildDimDate``: fill ``dim_date`` with one row per day for the years the staged data covers.

The range runs from 1 January of the earliest staged year to 31 December of the latest, across
``stg_weather`` and ``stg_stocks``. Parameters ``start_date`` and ``end_date`` (ISO dates) replace
either end. Rows are upserted, so facts that reference them stay valid on a rerun.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from sqlalchemy import func, select, union_all

from etl_runtime import Dependency, ETLTask
from warehouse.loading import TableWriter, positive_int
from warehouse.schema import date_key_of, ensure_tables, warehouse_tables


def date_rows(start: date, end: date) -> Iterator[dict[str, Any]]:
    """Yield a ``dim_date`` row for each day from ``start`` to ``end``, both included."""
    day = start
    while day <= end:
        weekday = day.isoweekday()
        yield {
            "date_key": date_key_of(day),
            "full_date": day,
            "year": day.year,
            "quarter": (day.month - 1) // 3 + 1,
            "month": day.month,
            "month_name": calendar.month_name[day.month],
            "day_of_month": day.day,
            "iso_weekday": weekday,
            "day_name": calendar.day_name[weekday - 1],
            "is_weekend": weekday >= 6,
        }
        day += timedelta(days=1)


def optional_date(value: Any, name: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"parameter {name!r} must be an ISO date such as 2012-01-31, got {value!r}") from exc


class BuildDimDate(ETLTask):
    DISPLAY_NAME = "Build the date dimension"

    def depends_on(self) -> list[Dependency]:
        # The range covers both sources, so both extracts must have succeeded.
        return [Dependency.on_name("extract-weather"), Dependency.on_name("extract-stocks")]

    def init(self) -> None:
        self.start_override = optional_date(self.get_parameter("start_date", None), "start_date")
        self.end_override = optional_date(self.get_parameter("end_date", None), "end_date")
        batch_size = positive_int(self.get_parameter("batch_size", 1000), "batch_size")
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)
        self.writer = self.register_object(TableWriter(self.tables.dim_date, batch_size, name="writer"))

    def load(self) -> None:
        tables = self.tables
        with self.database.begin() as connection:
            ensure_tables(connection, tables.stg_weather, tables.stg_stocks, tables.dim_date)
            staged = union_all(
                select(tables.stg_weather.c.date.label("day")),
                select(tables.stg_stocks.c.date.label("day")),
            ).subquery()
            earliest, latest, staged_rows = connection.execute(
                select(func.min(staged.c.day), func.max(staged.c.day), func.count())
            ).one()
            self.statistics.add("rows_read", staged_rows)

            start = self.start_override or (date(earliest.year, 1, 1) if earliest else None)
            end = self.end_override or (date(latest.year, 12, 31) if latest else None)
            if start is None or end is None:
                raise ValueError(
                    "the staging tables are empty, so the date range is unknown; run ExtractWeather and "
                    "ExtractStocks first, or set the start_date and end_date parameters"
                )
            if start > end:
                raise ValueError(f"start date {start} is after end date {end}")

            self.log.info("building dim_date from %s to %s", start, end)
            self.writer.upsert(connection, date_rows(start, end), check_stop=self.raise_if_stop_requested)
        self.statistics.set("date_from", start.isoformat())
        self.statistics.set("date_to", end.isoformat())
        self.statistics.set("rows_written", self.writer.statistics.count("rows_inserted"))
