"""``etl-runtime run`` against a real Postgres, in local mode and as the operator's pods run it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text

from etl_runtime import ETLTask
from etl_runtime.taskdb import RunRecord, TaskDatabase
from warehouse.sources import STOCKS_FILE, WEATHER_FILE, vega_data_dir

RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]
StartEtlRuntime = Callable[[Sequence[str]], subprocess.Popen[str]]


def csv_row_count(file_name: str) -> int:
    with open(vega_data_dir() / file_name, encoding="utf-8", newline="") as file:
        return sum(1 for _ in csv.DictReader(file))


def table_count(url: str, table: str) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            count: int = connection.execute(select(func.count()).select_from(text(table))).scalar_one()
            return count
    finally:
        engine.dispose()


def only_local_run(database: TaskDatabase, name: str) -> RunRecord:
    runs = database.runs_for("local", name)
    assert len(runs) == 1, runs
    return runs[0]


@pytest.fixture
def config_file(tmp_path: Path, warehouse_url: str) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(f"[warehouse]\nurl = {warehouse_url}\n")
    return path


@pytest.fixture
def run_local(run_etl_runtime: RunEtlRuntime, taskdb_url: str, config_file: Path) -> Any:
    """Return a function that runs ``etl-runtime run --local CLASS --param ...`` on the test databases."""

    def run(class_path: str, *params: str) -> subprocess.CompletedProcess[str]:
        arguments = ["run", "--local", class_path, "--database-url", taskdb_url, "--config", str(config_file)]
        for param in params:
            arguments += ["--param", param]
        return run_etl_runtime(arguments)

    return run


def test_extract_weather_loads_every_csv_row(
    run_local: Any, task_database: TaskDatabase, warehouse_url: str
) -> None:
    expected_rows = csv_row_count(WEATHER_FILE)

    result = run_local("warehouse.jobs.extract_weather.ExtractWeather", "batch_size=200")

    assert result.returncode == 0, result.stdout + result.stderr
    assert expected_rows == 1461
    assert table_count(warehouse_url, "stg_weather") == expected_rows
    run = only_local_run(task_database, "extract-weather")
    statistics = task_database.read_statistics(run.id)
    assert statistics["reader.rows_read"] == expected_rows
    assert statistics["writer.rows_inserted"] == expected_rows
    assert statistics["writer.batches"] == 8
    assert statistics["task.rows_written"] == expected_rows
    assert statistics["task.load.seconds"] > 0
    assert task_database.load_parameters(run.id) == {"batch_size": 200}


def test_local_run_records_phases(run_local: Any, task_database: TaskDatabase) -> None:
    result = run_local("warehouse.jobs.extract_stocks.ExtractStocks")

    assert result.returncode == 0, result.stdout + result.stderr
    run = only_local_run(task_database, "extract-stocks")
    assert run.status == "Succeeded"
    assert run.exit_code == 0
    assert run.task_class == "warehouse.jobs.extract_stocks.ExtractStocks"
    assert run.started_at is not None
    assert run.finished_at is not None
    assert run.error is None
    history = [change.status for change in task_database.status_history(run.id)]
    assert history == ["Pending", "Running", "Succeeded"]


def test_extract_rerun_replaces_rows(run_local: Any, task_database: TaskDatabase, warehouse_url: str) -> None:
    for _ in range(2):
        result = run_local("warehouse.jobs.extract_stocks.ExtractStocks")
        assert result.returncode == 0, result.stdout + result.stderr

    assert table_count(warehouse_url, "stg_stocks") == csv_row_count(STOCKS_FILE) == 560
    second = task_database.runs_for("local", "extract-stocks")[-1]
    assert task_database.read_statistics(second.id)["writer.rows_deleted"] == 560


def test_failing_job_records_error_and_statistics(run_local: Any, task_database: TaskDatabase) -> None:
    result = run_local("warehouse.jobs.failing.FailingJob", "rows_before_failure=25")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "FailingJob failed on purpose after reading 25 rows" in result.stdout
    run = only_local_run(task_database, "failing-job")
    assert run.status == "Failed"
    assert run.exit_code == 1
    assert run.message == "RuntimeError: FailingJob failed on purpose after reading 25 rows"
    assert run.error is not None
    assert "Traceback" in run.error
    assert "RuntimeError: FailingJob failed on purpose after reading 25 rows" in run.error
    statistics = task_database.read_statistics(run.id)
    assert statistics["task.rows_read"] == 25
    assert statistics["reader.rows_read"] == 25
    assert "task.load.seconds" in statistics
    assert "task.finish.seconds" not in statistics


def test_param_values_parse_as_json(run_local: Any, task_database: TaskDatabase) -> None:
    result = run_local(
        "runtime_sample_jobs.EchoParametersJob",
        "count=10",
        "ratio=0.5",
        "enabled=true",
        "as_of=2026-12-01",
        'symbols=["MSFT"]',
        "nothing=null",
        'quoted="10"',
    )

    assert result.returncode == 0, result.stdout + result.stderr
    run = only_local_run(task_database, "echo-parameters-job")
    assert task_database.load_parameters(run.id) == {
        "count": 10,
        "ratio": 0.5,
        "enabled": True,
        "as_of": "2026-12-01",
        "symbols": ["MSFT"],
        "nothing": None,
        "quoted": "10",
    }
    statistics = task_database.read_statistics(run.id)
    assert statistics["task.parameter_types.count"] == "int"
    assert statistics["task.parameter_types.nothing"] == "NoneType"


def test_committed_parameter_read_by_new_process(
    run_local: Any, task_database: TaskDatabase, taskdb_url: str
) -> None:
    result = run_local("runtime_sample_jobs.SetParameterJob")
    assert result.returncode == 0, result.stdout + result.stderr
    task_id = only_local_run(task_database, "set-parameter-job").id

    reader = ETLTask(task_id, task_database=TaskDatabase(taskdb_url))
    try:
        assert reader.get_parameter("watermark") == "2026-12-01"
        assert reader.get_parameter("deferred_count") == 5
        assert reader.get_parameter("local_secret", None) is None
        assert reader.parameter_names() == ["Watermark", "deferred_count"]
    finally:
        if reader.task_database is not None:
            reader.task_database.dispose()


def test_commit_false_defers_write(task_database: TaskDatabase) -> None:
    task_id = task_database.create_run(
        namespace="local",
        name="deferred",
        uid=str(uuid.uuid4()),
        attempt=1,
        task_class="etl_runtime.ETLTask",
        display_name=None,
        parameters={},
    )
    writer = ETLTask(task_id, task_database=task_database)

    writer.set_parameter("first", 1, commit=False)
    before_commit = ETLTask(task_id, task_database=task_database).parameters()
    writer.set_parameter("second", 2)
    after_commit = ETLTask(task_id, task_database=task_database).parameters()

    assert before_commit == {}
    assert after_commit == {"first": 1, "second": 2}


def test_warehouse_jobs_build_star_schema(
    run_local: Any, task_database: TaskDatabase, warehouse_url: str
) -> None:
    jobs = [
        "warehouse.jobs.extract_weather.ExtractWeather",
        "warehouse.jobs.extract_stocks.ExtractStocks",
        "warehouse.jobs.build_dim_date.BuildDimDate",
        "warehouse.jobs.load_fact_weather.LoadFactWeather",
        "warehouse.jobs.load_fact_stocks.LoadFactStocks",
        "warehouse.jobs.summarize.SummarizeWarehouse",
    ]
    for job in jobs:
        result = run_local(job)
        assert result.returncode == 0, f"{job}\n{result.stdout}{result.stderr}"

    # 2000-01-01 to 2015-12-31: 16 years, 4 of them leap years.
    assert table_count(warehouse_url, "dim_date") == 16 * 365 + 4
    assert table_count(warehouse_url, "fact_weather") == 1461
    assert table_count(warehouse_url, "fact_stock_price") == 560
    assert table_count(warehouse_url, "summary_weather_monthly") == 48
    # Four symbols cover 2000 to 2010, and GOOG starts in 2004.
    assert table_count(warehouse_url, "summary_stock_yearly") == 4 * 11 + 7

    fact_run = only_local_run(task_database, "load-fact-weather")
    statistics = task_database.read_statistics(fact_run.id)
    assert statistics["task.rows_read"] == 1461
    assert statistics["writer.rows_inserted"] == 1461
    assert statistics.get("writer.rows_updated", 0) == 0


def test_fact_rerun_updates_rows(run_local: Any, task_database: TaskDatabase) -> None:
    for job in (
        "extract_weather.ExtractWeather",
        "extract_stocks.ExtractStocks",
        "build_dim_date.BuildDimDate",
    ):
        assert run_local(f"warehouse.jobs.{job}").returncode == 0

    for _ in range(2):
        result = run_local("warehouse.jobs.load_fact_stocks.LoadFactStocks", 'symbols=["MSFT","IBM"]')
        assert result.returncode == 0, result.stdout + result.stderr

    second = task_database.runs_for("local", "load-fact-stocks")[-1]
    statistics = task_database.read_statistics(second.id)
    assert statistics["writer.rows_updated"] == 246
    assert statistics.get("writer.rows_inserted", 0) == 0


def test_unknown_class_exits_2(run_local: Any, task_database: TaskDatabase) -> None:
    result = run_local("warehouse.jobs.Nope")

    assert result.returncode == 2
    assert (
        "task class 'warehouse.jobs.Nope' not found: module 'warehouse.jobs' has no class 'Nope'"
        in result.stdout
    )
    assert task_database.runs_for("local", "nope") == []


def test_local_run_resolves_partial_name(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.ini"
    config_file.write_text("[kube_etl]\nbase_modules = runtime_sample_jobs\n")

    result = run_etl_runtime(
        [
            *("run", "--local", "EchoParameters*", "--param", "limit=5"),
            *("--database-url", taskdb_url, "--config", str(config_file)),
        ]
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "task name 'EchoParameters*' resolved to runtime_sample_jobs.EchoParametersJob" in result.stdout
    run = only_local_run(task_database, "echo-parameters-job")
    assert run.task_class == "runtime_sample_jobs.EchoParametersJob"
    assert task_database.load_parameters(run.id) == {"limit": 5}


def test_local_needs_database_url(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["run", "--local", "warehouse.jobs.failing.FailingJob"])

    assert result.returncode == 2
    assert "KUBE_ETL_DATABASE_URL" in result.stderr


def pod_environment(task_id: int, taskdb_url: str, task_class: str, config_file: Path) -> dict[str, str]:
    return {
        "KUBE_ETL_TASK_ID": str(task_id),
        "KUBE_ETL_TASK_CLASS": task_class,
        "KUBE_ETL_TASK_NAME": "extract-weather",
        "KUBE_ETL_NAMESPACE": "analytics",
        "KUBE_ETL_ATTEMPT": "1",
        "KUBE_ETL_DATABASE_URL": taskdb_url,
        "KUBE_ETL_CONFIG": str(config_file),
    }


def create_operator_run(database: TaskDatabase, task_class: str, parameters: dict[str, Any]) -> int:
    return database.create_run(
        namespace="analytics",
        name="extract-weather",
        uid=str(uuid.uuid4()),
        attempt=1,
        task_class=task_class,
        display_name="Extract weather",
        parameters=parameters,
        pod_name="extract-weather-1",
        status="Starting",
    )


def test_pod_run_writes_statistics_not_phases(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, config_file: Path
) -> None:
    task_class = "warehouse.jobs.extract_weather.ExtractWeather"
    task_id = create_operator_run(task_database, task_class, {"Batch_Size": 1000})

    result = run_etl_runtime(["run"], env=pod_environment(task_id, taskdb_url, task_class, config_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"starting task run {task_id}: analytics/extract-weather attempt 1" in result.stdout
    assert (
        f"task={task_id} warehouse.jobs.extract_weather.ExtractWeather: step load finished" in result.stdout
    )
    run = task_database.get_run(task_id)
    assert run.status == "Starting"
    assert [change.status for change in task_database.status_history(task_id)] == ["Starting"]
    statistics = task_database.read_statistics(task_id)
    assert statistics["writer.rows_inserted"] == 1461
    assert statistics["writer.batches"] == 2


def test_pod_run_unknown_class_records_error(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, config_file: Path
) -> None:
    task_id = create_operator_run(task_database, "warehouse.jobs.Nope", {})

    result = run_etl_runtime(
        ["run"], env=pod_environment(task_id, taskdb_url, "warehouse.jobs.Nope", config_file)
    )

    assert result.returncode == 2
    error = task_database.get_run(task_id).error
    assert error == "task class 'warehouse.jobs.Nope' not found: module 'warehouse.jobs' has no class 'Nope'"


def test_pod_run_resolves_partial_name(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, config_file: Path
) -> None:
    task_id = create_operator_run(task_database, "EchoParametersJob", {"limit": 5})
    environment = pod_environment(task_id, taskdb_url, "EchoParametersJob", config_file)
    environment["KUBE_ETL_BASE_MODULES"] = "runtime_sample_jobs, warehouse.jobs"

    result = run_etl_runtime(["run"], env=environment)

    assert result.returncode == 0, result.stdout + result.stderr
    assert task_database.read_statistics(task_id)["task.parameter_types.limit"] == "int"


def test_pod_run_ambiguous_name_records_candidates(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, config_file: Path
) -> None:
    task_id = create_operator_run(task_database, "Extract*", {})
    environment = pod_environment(task_id, taskdb_url, "Extract*", config_file)
    environment["KUBE_ETL_BASE_MODULES"] = "warehouse.jobs"

    result = run_etl_runtime(["run"], env=environment)

    assert result.returncode == 2
    error = task_database.get_run(task_id).error
    assert error is not None
    assert "task name 'Extract*' is ambiguous" in error
    assert (
        "warehouse.jobs.extract_stocks.ExtractStocks, warehouse.jobs.extract_weather.ExtractWeather" in error
    )


def test_pod_run_constructor_error_exits_1(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str, config_file: Path
) -> None:
    task_class = "runtime_sample_jobs.BrokenConstructorJob"
    task_id = create_operator_run(task_database, task_class, {})

    result = run_etl_runtime(["run"], env=pod_environment(task_id, taskdb_url, task_class, config_file))

    assert result.returncode == 1
    error = task_database.get_run(task_id).error
    assert error is not None
    assert "constructor failed on purpose" in error


@pytest.mark.parametrize("missing", ["KUBE_ETL_TASK_ID", "KUBE_ETL_TASK_CLASS", "KUBE_ETL_DATABASE_URL"])
def test_pod_run_names_missing_variable(
    run_etl_runtime: RunEtlRuntime, taskdb_url: str, config_file: Path, missing: str
) -> None:
    environment = pod_environment(1, taskdb_url, "warehouse.jobs.failing.FailingJob", config_file)
    del environment[missing]

    result = run_etl_runtime(["run"], env=environment)

    assert result.returncode == 2
    assert f"environment variable {missing} is not set" in result.stdout


def test_pod_run_unknown_task_id_exits_2(
    run_etl_runtime: RunEtlRuntime, taskdb_url: str, config_file: Path
) -> None:
    environment = pod_environment(987654, taskdb_url, "warehouse.jobs.failing.FailingJob", config_file)

    result = run_etl_runtime(["run"], env=environment)

    assert result.returncode == 2
    assert "task run 987654 not found in the task database" in result.stdout


def wait_for_output(process: subprocess.Popen[str], marker: str, timeout: float) -> str:
    """Read the process's stdout until a line contains ``marker``, and return the lines read."""
    assert process.stdout is not None
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen += line
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} not in the output within {timeout} s:\n{seen}")


@pytest.mark.parametrize(("signal_number", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_stop_signal_saves_statistics(
    start_etl_runtime: StartEtlRuntime,
    taskdb_url: str,
    task_database: TaskDatabase,
    signal_number: int,
    exit_code: int,
) -> None:
    process = start_etl_runtime(
        ["run", "--local", "runtime_sample_jobs.SlowJob", "--database-url", taskdb_url]
    )
    wait_for_output(process, "slow load started", timeout=60)
    time.sleep(0.2)

    os.kill(process.pid, signal_number)
    output, _ = process.communicate(timeout=30)

    assert process.returncode == exit_code, output
    run = only_local_run(task_database, "slow-job")
    assert run.status == "Cancelled"
    assert run.exit_code == exit_code
    assert run.error is not None
    assert "TaskStopRequested" in run.error
    statistics = task_database.read_statistics(run.id)
    assert statistics["task.loops"] >= 1
    assert "task.load.seconds" in statistics


def test_second_signal_interrupts_step(
    start_etl_runtime: StartEtlRuntime, taskdb_url: str, task_database: TaskDatabase
) -> None:
    process = start_etl_runtime(
        ["run", "--local", "runtime_sample_jobs.UncheckedSlowJob", "--database-url", taskdb_url]
    )
    wait_for_output(process, "unchecked load started", timeout=60)
    time.sleep(0.2)

    os.kill(process.pid, signal.SIGTERM)
    wait_for_output(process, "stops at its next check", timeout=10)
    os.kill(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=30)

    assert process.returncode == 143, output
    run = only_local_run(task_database, "unchecked-slow-job")
    assert run.status == "Cancelled"
    statistics = task_database.read_statistics(run.id)
    assert "task.woke_up" not in statistics
    assert "task.load.seconds" in statistics


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "etl-runtime"
    if not script.exists():
        pytest.skip("the etl-runtime console script exists only after pip install of the project")

    result = subprocess.run(
        [str(script), "run", "--help"], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0
    assert "--local" in result.stdout
