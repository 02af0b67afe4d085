"""``FailingJob``: read and count some weather rows, then raise ``RuntimeError`` on purpose.

It shows, and the tests check, that a failed run still saves its statistics and its error text.
Parameter: ``rows_before_failure`` (default 100). It needs no database.
"""

from __future__ import annotations

from etl_runtime import ETLTask
from warehouse.loading import positive_int
from warehouse.sources import WEATHER_FILE, CsvSource, resolve_source_file


class FailingJob(ETLTask):
    DISPLAY_NAME = "Fail on purpose"

    def init(self) -> None:
        self.rows_before_failure = positive_int(
            self.get_parameter("rows_before_failure", 100), "rows_before_failure"
        )
        self.reader = self.register_object(CsvSource(resolve_source_file(WEATHER_FILE), name="reader"))

    def load(self) -> None:
        for _line, _row in self.reader.rows(limit=self.rows_before_failure):
            self.statistics.add("rows_read")
        rows_read = self.statistics.count("rows_read")
        raise RuntimeError(f"FailingJob failed on purpose after reading {rows_read} rows")
