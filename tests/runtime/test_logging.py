"""Task logging: the task's logger, the task id in every record, and the JSON format."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Callable, Iterator

import pytest

from etl_runtime import ETLTask
from etl_runtime._logging import configure_logging

RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]


class LoggingJob(ETLTask):
    def load(self) -> None:
        self.log.info("loaded %d rows", 3, extra={"table": "stg_weather"})


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_format_writes_one_object_per_record(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging(logging.INFO, stream, "json")

    LoggingJob(42, task_database=None).log.info("loaded %d rows", 3, extra={"table": "stg_weather"})
    logging.getLogger("other").warning("no task here")
    try:
        raise ValueError("bad row")
    except ValueError:
        logging.getLogger("other").exception("parsing failed")

    first, second, third = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "loaded 3 rows"
    assert first["logger"] == "tests.runtime.test_logging.LoggingJob"
    assert first["level"] == "INFO"
    assert first["task_id"] == 42
    assert first["table"] == "stg_weather"
    assert first["time"].endswith("Z")
    assert second["task_id"] is None
    assert "ValueError: bad row" in third["exception"]


def test_text_format_shows_task_id(restore_root_logger: None) -> None:
    stream = io.StringIO()
    configure_logging(logging.INFO, stream)

    LoggingJob(7, task_database=None).log.info("hello")
    logging.getLogger("other").info("outside")

    lines = stream.getvalue().splitlines()
    assert "INFO    task=7 tests.runtime.test_logging.LoggingJob: hello" in lines[0]
    assert "task=- other: outside" in lines[1]


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="log format 'xml' is invalid"):
        configure_logging(logging.INFO, io.StringIO(), "xml")


def test_every_task_record_has_task_id(caplog: pytest.LogCaptureFixture) -> None:
    job = LoggingJob(11, task_database=None)

    with caplog.at_level(logging.DEBUG, logger=job.name):
        job.run()

    task_records = [record for record in caplog.records if record.name == job.name]
    assert len(task_records) >= 5
    assert {getattr(record, "task_id", None) for record in task_records} == {11}


def test_log_logging_level_reports_level(caplog: pytest.LogCaptureFixture) -> None:
    job = LoggingJob()
    logging.getLogger(job.name).setLevel(logging.INFO)
    try:
        with caplog.at_level(logging.INFO, logger=job.name):
            job.log_logging_level()
    finally:
        logging.getLogger(job.name).setLevel(logging.NOTSET)

    assert (
        caplog.records[-1].getMessage() == "logger tests.runtime.test_logging.LoggingJob logs at level INFO"
    )


def test_cli_writes_json_lines(run_etl_runtime: RunEtlRuntime, taskdb_url: str) -> None:
    result = run_etl_runtime(
        ["run", "--local", "runtime_sample_jobs.EchoParametersJob", "--database-url", taskdb_url],
        env={"KUBE_ETL_LOG_FORMAT": "json"},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    task_records = [
        record for record in records if record["logger"] == "runtime_sample_jobs.EchoParametersJob"
    ]
    assert any(record["message"] == "task succeeded" for record in task_records)
    assert len({record["task_id"] for record in task_records}) == 1
    assert isinstance(task_records[0]["task_id"], int)


def test_cli_rejects_unknown_format(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["run"], env={"KUBE_ETL_LOG_FORMAT": "xml"})

    assert result.returncode == 2
    assert "invalid log format 'xml' in KUBE_ETL_LOG_FORMAT" in result.stderr
