"""``ExtractStocks``: stage the monthly stock prices CSV (560 rows, five symbols) in ``stg_stocks``.

Truncate-and-load in one transaction. Parameters: ``source_file`` (default stocks.csv) and
``batch_size`` (default 500).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from etl_runtime import ETLTask
from warehouse.loading import TableWriter, positive_int
from warehouse.schema import ensure_tables, warehouse_tables
from warehouse.sources import STOCKS_FILE, CsvSource, resolve_source_file

# The CSV writes dates as "Jan 1 2000". A fixed table avoids the locale dependence of strptime's %b.
MONTHS = {
    name: number
    for number, name in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], start=1
    )
}


def parse_stock_date(text: str) -> date:
    month_name, day, year = text.split()
    return date(int(year), MONTHS[month_name], int(day))


def parse_stock_row(line: int, row: dict[str, str]) -> dict[str, Any]:
    """Convert one CSV row to a ``stg_stocks`` row; raise ValueError naming the line when invalid."""
    try:
        return {
            "symbol": row["symbol"].strip(),
            "date": parse_stock_date(row["date"]),
            "price": float(row["price"]),
            "source_line": line,
        }
    except (KeyError, ValueError) as exc:
        raise ValueError(f"stocks CSV line {line} is invalid: {exc}: {row!r}") from exc


class ExtractStocks(ETLTask):
    DISPLAY_NAME = "Extract stock prices"

    def init(self) -> None:
        source_file = resolve_source_file(str(self.get_parameter("source_file", STOCKS_FILE)))
        batch_size = positive_int(self.get_parameter("batch_size", 500), "batch_size")
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)
        self.reader = self.register_object(CsvSource(source_file, name="reader"))
        self.writer = self.register_object(TableWriter(self.tables.stg_stocks, batch_size, name="writer"))

    def load(self) -> None:
        with self.database.begin() as connection:
            ensure_tables(connection, self.tables.stg_stocks)
            self.writer.delete_all(connection)
            rows = (parse_stock_row(line, row) for line, row in self.reader.rows())
            self.writer.insert(connection, rows, check_stop=self.raise_if_stop_requested)
        self.statistics.set("rows_read", self.reader.statistics.count("rows_read"))
        self.statistics.set("rows_written", self.writer.statistics.count("rows_inserted"))
        self.log.info("staged %s stock price rows", self.writer.statistics.count("rows_inserted"))
