"""``ExtractWeather``: stage the Seattle daily weather CSV (1461 rows) in ``stg_weather``.

Truncate-and-load in one transaction, so a rerun replaces the staged rows. Parameters:
``source_file`` (a path, or a file name in vega_datasets; default seattle-weather.csv) and
``batch_size`` (rows per INSERT, default 500).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from etl_runtime import ETLTask
from warehouse.loading import TableWriter, positive_int
from warehouse.schema import ensure_tables, warehouse_tables
from warehouse.sources import WEATHER_FILE, CsvSource, resolve_source_file


def parse_weather_row(line: int, row: dict[str, str]) -> dict[str, Any]:
    """Convert one CSV row to a ``stg_weather`` row; raise ValueError naming the line when invalid."""
    try:
        return {
            "date": datetime.strptime(row["date"], "%Y/%m/%d").date(),
            "precipitation": float(row["precipitation"]),
            "temp_max": float(row["temp_max"]),
            "temp_min": float(row["temp_min"]),
            "wind": float(row["wind"]),
            "weather": row["weather"].strip(),
            "source_line": line,
        }
    except (KeyError, ValueError) as exc:
        raise ValueError(f"weather CSV line {line} is invalid: {exc}: {row!r}") from exc


class ExtractWeather(ETLTask):
    DISPLAY_NAME = "Extract Seattle weather"

    def init(self) -> None:
        source_file = resolve_source_file(str(self.get_parameter("source_file", WEATHER_FILE)))
        batch_size = positive_int(self.get_parameter("batch_size", 500), "batch_size")
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)
        self.reader = self.register_object(CsvSource(source_file, name="reader"))
        self.writer = self.register_object(TableWriter(self.tables.stg_weather, batch_size, name="writer"))
        self.log.info("staging %s in batches of %d rows", source_file, batch_size)

    def load(self) -> None:
        with self.database.begin() as connection:
            ensure_tables(connection, self.tables.stg_weather)
            self.writer.delete_all(connection)
            rows = (parse_weather_row(line, row) for line, row in self.reader.rows())
            self.writer.insert(connection, rows, check_stop=self.raise_if_stop_requested)
        self.statistics.set("rows_read", self.reader.statistics.count("rows_read"))
        self.statistics.set("rows_written", self.writer.statistics.count("rows_inserted"))
        self.log.info("staged %s weather rows", self.writer.statistics.count("rows_inserted"))
