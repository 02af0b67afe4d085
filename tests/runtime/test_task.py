"""ETLTask lifecycle without a task database: steps, outcomes, components and declarations."""

from __future__ import annotations

import configparser
import logging
import signal
from pathlib import Path

import pytest
from sqlalchemy import text

from etl_runtime import Dependency, ETLTask, Statistics, TaskStatus


class RecordingJob(ETLTask):
    DISPLAY_NAME = "Recording job"

    def __init__(self, *args: object, fail_in: str | None = None, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.fail_in = fail_in

    def step(self, name: str) -> None:
        self.calls.append(name)
        if name == self.fail_in:
            raise RuntimeError(f"{name} failed on purpose")

    def init(self) -> None:
        self.step("init")

    def load(self) -> None:
        self.step("load")
        self.statistics.add("rows_read", 3)

    def finish(self) -> None:
        self.step("finish")


class Component:
    def __init__(self, name: str, closed: list[str], fail_close: bool = False) -> None:
        self.name = name
        self.statistics = Statistics(name)
        self.closed = closed
        self.fail_close = fail_close

    def close(self) -> None:
        self.closed.append(self.name)
        if self.fail_close:
            raise OSError("close failed on purpose")


def test_run_calls_steps_in_order() -> None:
    job = RecordingJob()

    assert job.run() is True
    assert job.calls == ["init", "load", "finish"]
    assert job.status is TaskStatus.SUCCEEDED
    assert job.error is None


def test_run_times_each_step() -> None:
    job = RecordingJob()

    job.run()
    statistics = job.run_statistics()

    assert statistics["task.rows_read"] == 3
    for step in ("init", "load", "finish"):
        assert isinstance(statistics[f"task.{step}.seconds"], float)


@pytest.mark.parametrize("failing_step", ["init", "load", "finish"])
def test_failing_step_fails_run(failing_step: str) -> None:
    job = RecordingJob(fail_in=failing_step)

    assert job.run() is False
    assert job.status is TaskStatus.FAILED
    assert job.calls[-1] == failing_step
    assert job.error is not None
    assert f"RuntimeError: {failing_step} failed on purpose" in job.error
    assert "Traceback" in job.error


def test_load_must_be_overridden() -> None:
    class NoLoad(ETLTask):
        pass

    job = NoLoad()

    assert job.run() is False
    assert job.error is not None
    assert "must override load()" in job.error


def test_stop_request_cancels_before_next_step() -> None:
    class StopsInInit(RecordingJob):
        def init(self) -> None:
            super().init()
            self.request_stop(signal.SIGTERM)

    job = StopsInInit()

    assert job.run() is False
    assert job.status is TaskStatus.CANCELLED
    assert job.calls == ["init"]
    assert job.stop_signal == signal.SIGTERM


def test_identity_properties() -> None:
    job = RecordingJob(7, parent_task_id=3, root_task_id=1, task_database=None)

    assert job.task_id == 7
    assert job.parent_task_id == 3
    assert job.root_task_id == 1
    assert job.name == "tests.runtime.test_task.RecordingJob"
    assert job.display_name == "Recording job"
    assert RecordingJob(display_name="From spec").display_name == "From spec"
    assert job.status is TaskStatus.PENDING


def test_log_records_carry_task_id(caplog: pytest.LogCaptureFixture) -> None:
    job = RecordingJob(42, task_database=None)

    with caplog.at_level(logging.INFO):
        job.log.info("hello")

    record = caplog.records[-1]
    assert record.name == "tests.runtime.test_task.RecordingJob"
    assert record.task_id == 42  # type: ignore[attr-defined]


def test_components_get_unique_names() -> None:
    closed: list[str] = []
    job = RecordingJob()
    first = job.register_object(Component("reader", closed))
    second = job.register_object(Component("reader", closed))
    job.register_object(Component("task", closed))
    first.statistics.add("rows_read", 1)
    second.statistics.add("rows_read", 2)

    statistics = job.run_statistics()

    assert statistics["reader.rows_read"] == 1
    assert statistics["reader_2.rows_read"] == 2
    assert "task_2" not in statistics  # no counters yet, so nothing is flattened


def test_statistics_object_registers_directly() -> None:
    job = RecordingJob()
    counters = job.register_object(Statistics("lookups"))
    counters.add("hits", 4)

    assert job.run_statistics()["lookups.hits"] == 4


def test_close_closes_newest_first_despite_errors() -> None:
    closed: list[str] = []
    job = RecordingJob()
    job.register_object(Component("first", closed))
    job.register_object(Component("second", closed, fail_close=True))
    job.register_object(Component("third", closed))

    with job:
        pass
    job.close()

    assert closed == ["third", "second", "first"]


class Declaring(RecordingJob):
    def depends_on(self) -> list[str | Dependency]:
        return ["warehouse.jobs.extract_*", Dependency(name="build-dim-date"), "warehouse.jobs.extract_*"]

    def mutually_exclusive_execution(self) -> list[str]:
        return [" warehouse.jobs.load_fact_* "]

    def allow_concurrent_runs(self) -> bool:
        return True


def test_declarations_are_normalized() -> None:
    declarations = Declaring().declarations()

    assert declarations.task_class == "tests.runtime.test_task.Declaring"
    assert declarations.depends_on == frozenset(
        {Dependency(task="warehouse.jobs.extract_*"), Dependency(name="build-dim-date")}
    )
    assert declarations.mutually_exclusive_with == frozenset({"warehouse.jobs.load_fact_*"})
    assert declarations.allow_concurrent_runs is True


def test_default_declarations_forbid_concurrent_runs() -> None:
    declarations = RecordingJob().declarations()

    assert declarations.depends_on == frozenset()
    assert declarations.mutually_exclusive_with == frozenset()
    assert declarations.allow_concurrent_runs is False


def test_dependency_needs_exactly_one_target() -> None:
    with pytest.raises(ValueError, match="exactly one of name and task"):
        Dependency()
    with pytest.raises(ValueError, match="exactly one of name and task"):
        Dependency(name="a", task="b")
    assert Dependency(name="a").as_manifest() == {"name": "a"}


class FollowingJob(RecordingJob):
    def start_following_tasks(self) -> None:
        self.step("start_following_tasks")


def test_following_tasks_start_after_success() -> None:
    job = FollowingJob()

    assert job.run() is True
    assert job.calls == ["init", "load", "finish", "start_following_tasks"]


def test_following_tasks_skipped_after_failure() -> None:
    job = FollowingJob(fail_in="finish")

    assert job.run() is False
    assert job.calls == ["init", "load", "finish"]


def test_failing_following_tasks_fail_run() -> None:
    job = FollowingJob(fail_in="start_following_tasks")

    assert job.run(no_mail=True) is False
    assert job.status is TaskStatus.FAILED
    assert job.error is not None
    assert "start_following_tasks failed on purpose" in job.error


def test_close_disposes_opened_engines(tmp_path: Path) -> None:
    config = configparser.ConfigParser()
    config.read_string(f"[scratch]\nurl = sqlite:///{tmp_path / 'scratch.db'}\n")

    with RecordingJob(config=config) as job:
        database = job.get_database("scratch")
        with database.connect() as connection:
            connection.execute(text("SELECT 1"))
        assert database.engine.pool.checkedin() == 1

    assert database.engine.pool.checkedin() == 0
    assert isinstance(job, RecordingJob)
