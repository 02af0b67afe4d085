"""``SummarizeWarehouse``: rebuild the monthly weather and yearly stock summaries from the facts.

Both summary tables are emptied and refilled with INSERT ... SELECT in one transaction, so a
reader sees either the old or the new summary.
"""

from __future__ import annotations

from sqlalchemy import Integer, case, cast, func, insert, select

from etl_runtime import Dependency, ETLTask
from warehouse.schema import ensure_tables, warehouse_tables


class SummarizeWarehouse(ETLTask):
    DISPLAY_NAME = "Summarize the warehouse"

    def depends_on(self) -> list[Dependency]:
        return [Dependency.on_name("load-fact-weather"), Dependency.on_name("load-fact-stocks")]

    def init(self) -> None:
        self.database = self.get_database("warehouse")
        self.tables = warehouse_tables(self.database)

    def load(self) -> None:
        tables = self.tables
        weather, stocks, dim_date = tables.fact_weather, tables.fact_stock_price, tables.dim_date
        with self.database.begin() as connection:
            ensure_tables(
                connection,
                tables.dim_date,
                weather,
                stocks,
                tables.summary_weather_monthly,
                tables.summary_stock_yearly,
            )
            for fact in (weather, stocks):
                fact_rows = connection.execute(select(func.count()).select_from(fact)).scalar_one()
                self.statistics.add(f"{fact.name}.rows_read", fact_rows)

            self.raise_if_stop_requested()
            connection.execute(tables.summary_weather_monthly.delete())
            monthly = (
                select(
                    dim_date.c.year,
                    dim_date.c.month,
                    func.count().label("days"),
                    func.sum(cast(case((weather.c.precipitation_mm > 0, 1), else_=0), Integer)).label(
                        "rainy_days"
                    ),
                    func.sum(weather.c.precipitation_mm).label("total_precipitation_mm"),
                    func.avg(weather.c.temp_max_c).label("avg_temp_max_c"),
                    func.avg(weather.c.temp_min_c).label("avg_temp_min_c"),
                )
                .join_from(weather, dim_date, weather.c.date_key == dim_date.c.date_key)
                .group_by(dim_date.c.year, dim_date.c.month)
            )
            connection.execute(
                insert(tables.summary_weather_monthly).from_select(
                    [
                        "year",
                        "month",
                        "days",
                        "rainy_days",
                        "total_precipitation_mm",
                        "avg_temp_max_c",
                        "avg_temp_min_c",
                    ],
                    monthly,
                )
            )
            # Caveat: psycopg 3 reports rowcount -1 for INSERT ... SELECT, so count the emptied table.
            inserted: int = connection.execute(
                select(func.count()).select_from(tables.summary_weather_monthly)
            ).scalar_one()
            self.statistics.add("summary_weather_monthly.rows_inserted", inserted)

            self.raise_if_stop_requested()
            connection.execute(tables.summary_stock_yearly.delete())
            yearly = (
                select(
                    stocks.c.symbol,
                    dim_date.c.year,
                    func.count().label("months"),
                    func.avg(stocks.c.close_price).label("avg_close"),
                    func.min(stocks.c.close_price).label("min_close"),
                    func.max(stocks.c.close_price).label("max_close"),
                )
                .join_from(stocks, dim_date, stocks.c.date_key == dim_date.c.date_key)
                .group_by(stocks.c.symbol, dim_date.c.year)
            )
            connection.execute(
                insert(tables.summary_stock_yearly).from_select(
                    ["symbol", "year", "months", "avg_close", "min_close", "max_close"], yearly
                )
            )
            inserted = connection.execute(
                select(func.count()).select_from(tables.summary_stock_yearly)
            ).scalar_one()
            self.statistics.add("summary_stock_yearly.rows_inserted", inserted)
