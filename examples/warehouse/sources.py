"""CSV sources of the demo warehouse: files in the ``vega_datasets`` package, read with ``csv``.

Used by the extract jobs and by ``FailingJob``. The files are found through the package's import
spec, so pandas, which ``vega_datasets`` imports at package import time, is never loaded.
"""

from __future__ import annotations

import csv
import importlib.util
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

from etl_runtime import Statistics

WEATHER_FILE = "seattle-weather.csv"
STOCKS_FILE = "stocks.csv"


def vega_data_dir() -> Path:
    """Return the folder of the CSV and JSON files shipped in the vega_datasets package."""
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "package vega_datasets is not installed; install it with pip install vega_datasets"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "_data"


def resolve_source_file(source_file: str) -> Path:
    """Return the path of ``source_file``: an existing path, or a file name in vega_datasets' data."""
    path = Path(source_file)
    if path.is_file():
        return path
    packaged = vega_data_dir() / source_file
    if packaged.is_file():
        return packaged
    raise FileNotFoundError(f"source file {source_file!r} not found as a path or in {vega_data_dir()}")


class CsvSource:
    """Component that reads a CSV file as dicts and counts ``rows_read``."""

    def __init__(self, path: Path, name: str = "reader") -> None:
        self.path = path
        self.name = name
        self.statistics = Statistics(name)
        self._reading: Generator[tuple[int, dict[str, str]]] | None = None

    def rows(
        self,
        limit: int | None = None,
        check_stop: Callable[[], None] | None = None,
        check_every: int = 500,
    ) -> Iterator[tuple[int, dict[str, str]]]:
        """Return an iterator of (line number, row) pairs, at most ``limit`` rows.

        ``check_stop`` is called every ``check_every`` rows, so a stop request ends a long read.
        ``close`` closes the file of an unfinished read.
        """
        self.close()
        self._reading = self._read(limit, check_stop, check_every)
        return self._reading

    def close(self) -> None:
        if self._reading is not None:
            self._reading.close()
            self._reading = None

    def _read(
        self, limit: int | None, check_stop: Callable[[], None] | None, check_every: int
    ) -> Generator[tuple[int, dict[str, str]]]:
        with open(self.path, encoding="utf-8", newline="") as file:
            reader = csv.DictReader(file)
            for index, row in enumerate(reader):
                if limit is not None and index >= limit:
                    return
                if check_stop is not None and index % check_every == 0:
                    check_stop()
                self.statistics.add("rows_read")
                yield reader.line_num, row
