"""Status patches: conditions keep their transition time; statistics summaries add up rows."""

from __future__ import annotations

from datetime import UTC, datetime

from etl_operator._status import Condition, Transition, merge_conditions, statistics_summary, status_patch
from etl_operator.phases import ConditionType, Phase, Reason

from .factories import task_body

T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 12, 4, 10, 5, tzinfo=UTC)


def test_unchanged_condition_keeps_transition_time() -> None:
    first = merge_conditions(
        [], [Condition(ConditionType.ADMITTED, False, Reason.MUTUAL_EXCLUSION)], now=T0, generation=1
    )
    second = merge_conditions(
        first, [Condition(ConditionType.ADMITTED, False, Reason.CONCURRENCY_LIMIT)], now=T1, generation=1
    )
    assert second[0]["lastTransitionTime"] == "2026-12-04T10:00:00Z"
    assert second[0]["reason"] == "ConcurrencyLimit"


def test_flipped_condition_gets_new_transition_time() -> None:
    first = merge_conditions(
        [], [Condition(ConditionType.ADMITTED, False, Reason.MUTUAL_EXCLUSION)], now=T0, generation=1
    )
    second = merge_conditions(
        first, [Condition(ConditionType.ADMITTED, True, Reason.CLAIMS_HELD)], now=T1, generation=2
    )
    assert second[0]["status"] == "True"
    assert second[0]["lastTransitionTime"] == "2026-12-04T10:05:00Z"
    assert second[0]["observedGeneration"] == 2


def test_status_patch_carries_precondition() -> None:
    body = task_body("a", resource_version="42")
    patch = status_patch(
        body, Transition(Phase.STARTING, "go", Reason.CLAIMS_HELD), now=T0, precondition=True
    )
    assert patch["metadata"] == {"resourceVersion": "42"}
    assert patch["status"]["phase"] == "Starting"


def test_summary_prefers_task_counters() -> None:
    flat = {
        "task.rows_read": 10,
        "task.rows_written": 9,
        "task.load.seconds": 1.23456,
        "task.init.seconds": 0.1,
        "reader.rows_read": 10,
        "writer.rows_inserted": 9,
    }
    assert statistics_summary(flat) == {"rowsRead": 10, "rowsWritten": 9, "seconds": 1.335}


def test_summary_adds_component_counters() -> None:
    flat = {
        "reader.rows_read": 10,
        "staging.rows_read": 5,
        "writer.rows_inserted": 7,
        "writer.rows_updated": 2,
        "writer.label": "x",
    }
    assert statistics_summary(flat) == {"rowsRead": 15, "rowsWritten": 9}


def test_summary_adds_nested_task_counters() -> None:
    flat = {
        "task.fact_weather.rows_read": 1461,
        "task.fact_stocks.rows_read": 560,
        "task.summary_weather.rows_inserted": 48,
        "task.summary_stocks.rows_inserted": 50,
    }
    assert statistics_summary(flat) == {"rowsRead": 2021, "rowsWritten": 98}


def test_summary_of_nothing_is_empty() -> None:
    assert statistics_summary({}) == {}


def test_failure_line_prefers_error_over_summary() -> None:
    from etl_operator._reconciler import _telling_line

    tail = "step load started\nValueError: column x is missing\ntask run 1 finished: Failed\n"
    assert _telling_line(tail) == "ValueError: column x is missing"
    database = (
        "cannot start the task: reading run 3 failed: connection refused\n(Background on this error at: x)"
    )
    assert _telling_line(database).startswith("cannot start the task")
    assert _telling_line("just one line") == "just one line"
