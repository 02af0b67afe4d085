"""Lifecycle, identity, statistics and components: count the words of some lines of text.

``init`` reads the lines and registers a component, ``load`` counts, ``finish`` stores the total
as a parameter, and ``start_following_tasks`` runs last, after a successful ``finish``. The
counter's statistics are saved under its name (``counter.words``) and ``close`` is called on it
when the task closes.
"""

from __future__ import annotations

from etl_runtime import ETLTask, Statistics

DEFAULT_LINES = ["kube-etl runs Python ETL jobs", "one pod per attempt", "every run is recorded"]


class WordCounter:
    """A component: ``register_object`` saves its ``statistics`` and calls its ``close``."""

    def __init__(self) -> None:
        self.name = "counter"
        self.statistics = Statistics(self.name)
        self.closed = False

    def count(self, line: str) -> int:
        words = len(line.split())
        self.statistics.add("lines")
        self.statistics.add("words", words)
        return words

    def close(self) -> None:
        self.closed = True


class CountWords(ETLTask):
    DISPLAY_NAME = "Count words"
    CLASS_VERSION = 1.1

    def init(self) -> None:
        self.lines: list[str] = self.get_parameter("lines", DEFAULT_LINES)
        self.counter = self.register_object(WordCounter())
        self.log.info("%s (task run %s) counts %d lines", self.display_name, self.task_id, len(self.lines))

    def load(self) -> None:
        for line in self.lines:
            self.raise_if_stop_requested()
            self.counter.count(line)
        self.statistics.set("longest_line", max(self.lines, key=len, default=""))

    def finish(self) -> None:
        self.set_parameter("word_count", self.counter.statistics.count("words"))

    def start_following_tasks(self) -> None:
        self.log.info(
            "class version %s counted %d words", self.CLASS_VERSION, self.get_parameter("word_count")
        )
