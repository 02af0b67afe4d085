"""Config and databases: settings by task class and a database from a config.ini section.

The config names the database and this class's settings:

    [scratch]
    url = sqlite:////tmp/scratch.db

    [seed_api.config_databases.CopyCities]
    table_name = cities

``get_database("scratch")`` returns SQLAlchemy metadata bound to an engine, and ``close``
disposes the engine.
"""

from __future__ import annotations

from sqlalchemy import Column, Integer, Table, Text, delete, func, insert, select

from etl_runtime import ETLTask

CITIES = [
    {"name": "Seattle", "population": 755_078},
    {"name": "Portland", "population": 630_498},
    {"name": "Vancouver", "population": 662_248},
]


class CopyCities(ETLTask):
    DISPLAY_NAME = "Copy cities to the scratch database"

    def init(self) -> None:
        self.scratch = self.get_database("scratch")
        table_name = self.get_setting("table_name")
        self.debug_sql(self.get_setting_or_default("debug_sql", "false") == "true")
        self.cities = Table(
            table_name,
            self.scratch,
            Column("id", Integer, primary_key=True),
            Column("name", Text, nullable=False),
            Column("population", Integer, nullable=False),
        )

    def load(self) -> None:
        with self.scratch.begin() as connection:
            self.scratch.create_all(connection)
            connection.execute(delete(self.cities))
            connection.execute(insert(self.cities), CITIES)
            total = connection.execute(select(func.sum(self.cities.c.population))).scalar_one()
        self.statistics.set("rows_written", len(CITIES))
        self.statistics.set("total_population", total)
