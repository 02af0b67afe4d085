"""``LoadFactStocks``: upsert ``fact_stock_price`` from ``stg_stocks``, one row per symbol and day.

Parameters: ``full_reload`` (delete all stock facts first, default false), ``symbols`` (a list
that limits the load to these symbols, default all) and ``batch_size`` (default 500).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from etl_runtime import Dependency, ETLTask
from warehouse.jobs._facts import keyed_rows, known_date_keys
from warehouse.loading import TableWriter, positive_int
from warehouse.schema import ensure_tables, warehouse_tables


def stock_fact(row: dict[str, Any], date_key: int) -> dict[str, Any]:
    return {"symbol": row["symbol"], "date_key": date_key, "close_price": row["price"]}


class LoadFactStocks(ETLTask):
    DISPLAY_NAME = "Load stock price facts"

    def depends_on(self) -> list[Dependency]:
        return [Dependency.on_name("build-dim-date")]

    def mutually_exclusive_execution(self) -> list[str]:
        # Both fact loads take the "warehouse" lock, so they never write the warehouse at the same time.
        return ["warehouse"]

    def init(self) -> None:
        self.full_reload = bool(self.get_parameter("full_reload", False))
        symbols = self.get_parameter("symbols", None)
        if symbols is not None and (
            not isinstance(symbols, list) or not all(isinstance(symbol, str) for symbol in symbols)
        ):
            raise ValueError(f"parameter 'symbols' must be a list of strings, got {symbols!r}")
        self.symbols: list[str] | None = symbols
        batch_size = positive_int(self.get_parameter("batch_size", 500), "batch_size")
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)
        self.writer = self.register_object(
            TableWriter(self.tables.fact_stock_price, batch_size, name="writer")
        )

    def load(self) -> None:
        tables = self.tables
        with self.database.begin() as connection:
            ensure_tables(connection, tables.stg_stocks, tables.dim_date, tables.fact_stock_price)
            if self.full_reload:
                self.writer.delete_all(connection)
            date_keys = known_date_keys(connection, tables.dim_date)
            query = select(tables.stg_stocks).order_by(tables.stg_stocks.c.symbol, tables.stg_stocks.c.date)
            if self.symbols is not None:
                query = query.where(tables.stg_stocks.c.symbol.in_(self.symbols))
            staged = connection.execute(query)
            rows = keyed_rows((row._asdict() for row in staged), date_keys, self.statistics, stock_fact)
            self.writer.upsert(connection, rows, check_stop=self.raise_if_stop_requested)
        writer = self.writer.statistics
        self.statistics.set("rows_written", writer.count("rows_inserted") + writer.count("rows_updated"))
