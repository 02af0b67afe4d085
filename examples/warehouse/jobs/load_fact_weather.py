"""``LoadFactWeather``: upsert ``fact_weather`` from ``stg_weather``, one row per day.

Parameters: ``full_reload`` (delete all weather facts first, default false) and ``batch_size``
(default 500).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from etl_runtime import Dependency, ETLTask
from warehouse.jobs._facts import keyed_rows, known_date_keys
from warehouse.loading import TableWriter, positive_int
from warehouse.schema import ensure_tables, warehouse_tables


def weather_fact(row: dict[str, Any], date_key: int) -> dict[str, Any]:
    return {
        "date_key": date_key,
        "precipitation_mm": row["precipitation"],
        "temp_max_c": row["temp_max"],
        "temp_min_c": row["temp_min"],
        "wind_m_s": row["wind"],
        "weather": row["weather"],
    }


class LoadFactWeather(ETLTask):
    DISPLAY_NAME = "Load weather facts"

    def depends_on(self) -> list[Dependency]:
        return [Dependency.on_name("build-dim-date")]

    def mutually_exclusive_execution(self) -> list[str]:
        # Both fact loads take the "warehouse" lock, so they never write the warehouse at the same time.
        return ["warehouse"]

    def init(self) -> None:
        self.full_reload = bool(self.get_parameter("full_reload", False))
        batch_size = positive_int(self.get_parameter("batch_size", 500), "batch_size")
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)
        self.writer = self.register_object(TableWriter(self.tables.fact_weather, batch_size, name="writer"))

    def load(self) -> None:
        tables = self.tables
        with self.database.begin() as connection:
            ensure_tables(connection, tables.stg_weather, tables.dim_date, tables.fact_weather)
            if self.full_reload:
                self.writer.delete_all(connection)
            date_keys = known_date_keys(connection, tables.dim_date)
            staged = connection.execute(select(tables.stg_weather).order_by(tables.stg_weather.c.date))
            rows = keyed_rows((row._asdict() for row in staged), date_keys, self.statistics, weather_fact)
            self.writer.upsert(connection, rows, check_stop=self.raise_if_stop_requested)
        writer = self.writer.statistics
        self.statistics.set("rows_written", writer.count("rows_inserted") + writer.count("rows_updated"))
