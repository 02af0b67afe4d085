"""Tables of the demo warehouse: staging, the date dimension, facts and summaries.

Every job calls ``warehouse_tables`` on the metadata from ``get_database("warehouse")`` and
``ensure_tables`` before it writes. The tables live in Postgres, in the schema of the config
section's ``schema`` option if set.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    Table,
    Text,
    text,
)

# Key of the advisory lock that serialises CREATE TABLE across jobs that start at the same time.
DDL_LOCK_KEY = zlib.crc32(b"kube-etl demo warehouse ddl")


@dataclass(frozen=True)
class WarehouseTables:
    stg_weather: Table
    stg_stocks: Table
    dim_date: Table
    fact_weather: Table
    fact_stock_price: Table
    summary_weather_monthly: Table
    summary_stock_yearly: Table


def warehouse_tables(metadata: MetaData) -> WarehouseTables:
    """Define the warehouse tables on ``metadata``, or return them when already defined."""
    if "stg_weather" in {table.name for table in metadata.tables.values()}:
        return _existing_tables(metadata)

    date_key = f"{metadata.schema}.dim_date.date_key" if metadata.schema else "dim_date.date_key"
    return WarehouseTables(
        stg_weather=Table(
            "stg_weather",
            metadata,
            Column("date", Date, primary_key=True),
            Column("precipitation", Float, nullable=False),
            Column("temp_max", Float, nullable=False),
            Column("temp_min", Float, nullable=False),
            Column("wind", Float, nullable=False),
            Column("weather", Text, nullable=False),
            Column("source_line", Integer, nullable=False),
        ),
        stg_stocks=Table(
            "stg_stocks",
            metadata,
            Column("symbol", Text, primary_key=True),
            Column("date", Date, primary_key=True),
            Column("price", Float, nullable=False),
            Column("source_line", Integer, nullable=False),
        ),
        dim_date=Table(
            "dim_date",
            metadata,
            Column("date_key", Integer, primary_key=True, comment="yyyymmdd"),
            Column("full_date", Date, nullable=False, unique=True),
            Column("year", Integer, nullable=False),
            Column("quarter", Integer, nullable=False),
            Column("month", Integer, nullable=False),
            Column("month_name", Text, nullable=False),
            Column("day_of_month", Integer, nullable=False),
            Column("iso_weekday", Integer, nullable=False, comment="1 = Monday ... 7 = Sunday"),
            Column("day_name", Text, nullable=False),
            Column("is_weekend", Boolean, nullable=False),
        ),
        fact_weather=Table(
            "fact_weather",
            metadata,
            Column("date_key", Integer, ForeignKey(date_key), primary_key=True),
            Column("precipitation_mm", Float, nullable=False),
            Column("temp_max_c", Float, nullable=False),
            Column("temp_min_c", Float, nullable=False),
            Column("wind_m_s", Float, nullable=False),
            Column("weather", Text, nullable=False),
        ),
        fact_stock_price=Table(
            "fact_stock_price",
            metadata,
            Column("symbol", Text, primary_key=True),
            Column("date_key", Integer, ForeignKey(date_key), primary_key=True),
            Column("close_price", Float, nullable=False),
        ),
        summary_weather_monthly=Table(
            "summary_weather_monthly",
            metadata,
            Column("year", Integer, primary_key=True),
            Column("month", Integer, primary_key=True),
            Column("days", Integer, nullable=False),
            Column("rainy_days", Integer, nullable=False),
            Column("total_precipitation_mm", Float, nullable=False),
            Column("avg_temp_max_c", Float, nullable=False),
            Column("avg_temp_min_c", Float, nullable=False),
        ),
        summary_stock_yearly=Table(
            "summary_stock_yearly",
            metadata,
            Column("symbol", Text, primary_key=True),
            Column("year", Integer, primary_key=True),
            Column("months", Integer, nullable=False),
            Column("avg_close", Float, nullable=False),
            Column("min_close", Float, nullable=False),
            Column("max_close", Float, nullable=False),
        ),
    )


def _existing_tables(metadata: MetaData) -> WarehouseTables:
    prefix = f"{metadata.schema}." if metadata.schema else ""
    return WarehouseTables(
        **{field: metadata.tables[prefix + field] for field in WarehouseTables.__dataclass_fields__}
    )


def ensure_tables(connection: Connection, *tables: Table) -> None:
    """Create the tables that do not exist yet, holding a lock so parallel jobs do not collide."""
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DDL_LOCK_KEY})
    for table in tables:
        table.create(connection, checkfirst=True)


def date_key_of(day: date) -> int:
    """Return the dim_date key of ``day``, e.g. 20120101."""
    return day.year * 10000 + day.month * 100 + day.day
