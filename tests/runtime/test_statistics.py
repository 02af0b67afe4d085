"""Statistics: counters, timers, nesting and flattening to dotted names."""

from __future__ import annotations

import threading
import time

import pytest

from etl_runtime import Statistics


def test_add_counts_from_zero() -> None:
    statistics = Statistics("reader")

    statistics.add("rows_read")
    statistics.add("rows_read", 9)

    assert statistics.count("rows_read") == 10
    assert statistics.count("rows_skipped") == 0


def test_dotted_name_creates_child() -> None:
    statistics = Statistics()

    statistics.add("reader.rows_read", 3)

    assert statistics.child("reader").count("rows_read") == 3
    assert "reader.rows_read" in statistics
    assert "reader.rows_written" not in statistics
    assert "writer.rows_written" not in statistics


def test_flatten_uses_dotted_names() -> None:
    statistics = Statistics()
    statistics.add("rows_read", 2)
    statistics.child("writer").add("rows_inserted", 5)
    statistics.child("writer").child("batches").add("count", 1)
    statistics.set("source_file", "seattle-weather.csv")

    assert statistics.flatten("task") == {
        "task.rows_read": 2,
        "task.writer.rows_inserted": 5,
        "task.writer.batches.count": 1,
        "task.source_file": "seattle-weather.csv",
    }
    assert statistics.flatten()["writer.rows_inserted"] == 5


def test_as_dict_nests_children() -> None:
    statistics = Statistics()
    statistics.add("writer.rows_inserted", 5)
    statistics.add("rows_read", 1)

    assert statistics.as_dict() == {"writer": {"rows_inserted": 5}, "rows_read": 1}


def test_timer_adds_seconds() -> None:
    statistics = Statistics()

    with statistics.timer("load") as stopwatch:
        time.sleep(0.01)
    with statistics.timer("load"):
        pass

    assert statistics.count("load.seconds") >= 0.01
    assert stopwatch.seconds >= 0.01
    assert statistics.flatten().keys() == {"load.seconds"}


def test_timer_records_when_block_raises() -> None:
    statistics = Statistics()

    with pytest.raises(RuntimeError), statistics.timer("load"):
        raise RuntimeError("boom")

    assert "load.seconds" in statistics


def test_value_and_group_cannot_share_name() -> None:
    statistics = Statistics()
    statistics.add("reader", 1)

    with pytest.raises(ValueError, match="is a value"):
        statistics.add("reader.rows_read")
    statistics.add("writer.rows_inserted")
    with pytest.raises(ValueError, match="group of statistics"):
        statistics.add("writer")


@pytest.mark.parametrize("name", ["", ".rows", "rows.", "a..b"])
def test_invalid_name_raises(name: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        Statistics().add(name)


def test_add_to_text_value_raises() -> None:
    statistics = Statistics()
    statistics.set("source_file", "stocks.csv")

    with pytest.raises(ValueError, match="not a number"):
        statistics.add("source_file")
    with pytest.raises(ValueError, match="not a number"):
        statistics.count("source_file")


def test_add_from_threads_loses_nothing() -> None:
    statistics = Statistics()

    def count() -> None:
        for _ in range(10_000):
            statistics.add("reader.rows_read")

    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statistics.count("reader.rows_read") == 40_000
