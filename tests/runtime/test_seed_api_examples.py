"""The examples of docs/runtime.md (examples/seed_api), run the way the page shows them.

Most run through ``etl-runtime run --local`` against the real task database. The children example
also needs an operator: ``ChildOperatorStandIn`` plays its part through TaskDatabase and runs each
approved child with ``etl-runtime run`` in pod mode, as a pod would.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from etl_runtime import ETLTask, resolve_task_class
from etl_runtime.taskdb import RunRecord, TaskDatabase
from tests.runtime.conftest import REPO_ROOT, SmtpServer, runtime_environment
from tests.runtime.crd_schema import etltask_schema, schema_errors

RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]
DOC = REPO_ROOT / "docs" / "runtime.md"


@pytest.fixture
def run_local(
    run_etl_runtime: RunEtlRuntime, taskdb_url: str
) -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(*arguments: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return run_etl_runtime(["run", "--local", *arguments, "--database-url", taskdb_url], env=env)

    return run


def only_local_run(database: TaskDatabase, name: str) -> RunRecord:
    runs = database.runs_for("local", name)
    assert len(runs) == 1, runs
    return runs[0]


def test_doc_names_only_existing_classes() -> None:
    names = set(re.findall(r"\bseed_api\.\w+\.[A-Z]\w*\b(?!\*)", DOC.read_text()))

    assert len(names) >= 8
    for name in sorted(names):
        assert issubclass(resolve_task_class(name, base_modules=[]), ETLTask), name


def test_lifecycle_runs_in_process() -> None:
    from seed_api.lifecycle import CountWords

    with CountWords(parameters={"lines": ["a b c", "d e"]}) as task:
        succeeded = task.run(no_mail=True)

    assert succeeded is True
    assert task.run_statistics()["counter.words"] == 5
    assert task.get_parameter("word_count") == 5
    assert task.counter.closed is True


def test_lifecycle_records_run(
    run_local: Callable[..., subprocess.CompletedProcess[str]], task_database: TaskDatabase
) -> None:
    result = run_local("seed_api.lifecycle.CountWords", "--param", 'lines=["a b c", "d e"]')

    assert result.returncode == 0, result.stdout + result.stderr
    assert "class version 1.1 counted 5 words" in result.stdout
    run = only_local_run(task_database, "count-words")
    statistics = task_database.read_statistics(run.id)
    assert statistics["counter.words"] == 5
    assert statistics["counter.lines"] == 2
    assert statistics["task.longest_line"] == "a b c"
    assert task_database.load_parameters(run.id)["word_count"] == 5


def test_parameters_written_back(
    run_local: Callable[..., subprocess.CompletedProcess[str]], task_database: TaskDatabase
) -> None:
    result = run_local(
        "seed_api.parameters.IncrementalExtract",
        *("--param", "since=2026-12-01", "--param", "MODE=delta", "--param", "batch_size=3"),
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "as expected: parameter 'required_but_missing' is not set" in result.stdout
    task_id = only_local_run(task_database, "incremental-extract").id
    assert task_database.load_parameters(task_id) == {
        "since": "2026-12-01",
        "MODE": "delta",
        "batch_size": 3,
        "watermark": "2026-12-03",
        "rows_seen": 3,
    }
    with ETLTask(task_id, task_database=task_database) as reader:
        assert reader.get_parameter("WATERMARK") == "2026-12-03"
        assert reader.get_parameter("cursor", None) is None


def test_secret_parameters_stay_masked(
    run_local: Callable[..., subprocess.CompletedProcess[str]], task_database: TaskDatabase
) -> None:
    token = f"token-{uuid.uuid4().hex}"
    result = run_local(
        "seed_api.secret_parameters.SignRequests",
        *("--secret-param", "api_token", "--param", 'cities=["Seattle", "Tacoma"]'),
        env={"KUBE_ETL_SECRET_PARAMETER_API_TOKEN": token},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert token not in result.stdout + result.stderr
    assert "signed the request for Tacoma with token ********" in result.stdout
    assert "'api_token': '********'" in result.stdout
    assert "'session_key': '********'" in result.stdout
    task_id = only_local_run(task_database, "sign-requests").id
    assert task_database.load_parameters(task_id) == {
        "api_token": "********",
        "cities": ["Seattle", "Tacoma"],
        "session_key": "********",
    }
    assert task_database.read_statistics(task_id)["task.requests_signed"] == 2


def test_config_databases_write_scratch_table(
    run_local: Callable[..., subprocess.CompletedProcess[str]], task_database: TaskDatabase, tmp_path: Path
) -> None:
    scratch = tmp_path / "scratch.db"
    config = tmp_path / "config.ini"
    config.write_text(
        f"[scratch]\nurl = sqlite:///{scratch}\n\n"
        "[seed_api.config_databases.CopyCities]\ntable_name = cities\n"
    )

    result = run_local("seed_api.config_databases.CopyCities", "--config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    with sqlite3.connect(scratch) as connection:
        assert connection.execute("SELECT count(*) FROM cities").fetchone() == (3,)
    statistics = task_database.read_statistics(only_local_run(task_database, "copy-cities").id)
    assert statistics["task.total_population"] == 2_047_824


def test_declarations_print_documented_manifest(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(
        ["manifest", "seed_api.declarations.LoadOrders", "--name", "load-orders", "--param", "region=emea"]
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout in DOC.read_text()
    manifest = yaml.safe_load(result.stdout)
    assert schema_errors(manifest, etltask_schema()) == []
    assert manifest["spec"]["dependsOn"] == [
        {"name": "build-customers-emea"},
        {"task": "seed_api.declarations.ExtractOrders"},
    ]


def test_partial_name_prints_manifest(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["manifest", "declarations.Load*"], env={"KUBE_ETL_BASE_MODULES": "seed_api"})

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["spec"]["task"] == "seed_api.declarations.LoadOrders"


@pytest.mark.parametrize("partial_name", ["LoadOrders", "declarations.LoadOrders", "declarations.Load*"])
def test_partial_names_select_one_class(partial_name: str) -> None:
    task_class = resolve_task_class(partial_name, base_modules=["seed_api"])

    assert f"{task_class.__module__}.{task_class.__qualname__}" == "seed_api.declarations.LoadOrders"


def test_ambiguous_partial_name_lists_both(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["manifest", "Load*"], env={"KUBE_ETL_BASE_MODULES": "seed_api"})

    assert result.returncode == 2
    assert "seed_api.children.LoadRegion, seed_api.declarations.LoadOrders" in result.stderr


def test_logging_writes_json_fields(run_local: Callable[..., subprocess.CompletedProcess[str]]) -> None:
    result = run_local(
        "seed_api.task_logging.AuditLogins", "--param", "verbose=true", env={"KUBE_ETL_LOG_FORMAT": "json"}
    )

    assert result.returncode == 0, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    task_records = [record for record in records if record["logger"] == "seed_api.task_logging.AuditLogins"]
    assert {record["task_id"] for record in task_records} == {task_records[0]["task_id"]}
    assert task_records[0]["message"].startswith("task started")
    warnings = [record for record in task_records if record["level"] == "WARNING"]
    assert [record["user"] for record in warnings] == ["bob", "bob"]
    debug = [record for record in task_records if record["level"] == "DEBUG" and "user" in record]
    assert [(record["user"], record["succeeded"]) for record in debug][:2] == [
        ("alice", True),
        ("bob", False),
    ]
    assert any("logs at level" in record["message"] for record in task_records)


def test_failure_mail_arrives(
    run_local: Callable[..., subprocess.CompletedProcess[str]], smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config = tmp_path / "config.ini"
    config.write_text(
        "[kube_etl]\nenvironment = dev\n\n" + smtp_server.config_text(**{"from": "etl@example.org"})
    )

    result = run_local(
        "seed_api.failure_mail.CheckRowCount",
        *("--param", "actual_rows=5", "--config", str(config)),
        env={"KUBE_ETL_NOTIFY_EMAIL": "bi-team@example.org"},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    mail = smtp_server.received[0]
    assert mail.message["Subject"] == "[dev] seed_api.failure_mail.CheckRowCount failed"
    assert mail.recipients == ("bi-team@example.org",)
    assert (
        "ValueError: only 5 rows arrived, expected at least 100"
        in mail.message.get_payload(decode=True).decode()
    )


class ChildOperatorStandIn:
    """Plays the operator's part for child requests, through TaskDatabase, in a thread.

    For each request of the parent it records the child ETLTask ``<parent-name>-c<id>`` and a
    Pending run row with the parent's ids. A request that needs approval waits in
    AwaitingApproval. A rejected child ends Cancelled. An approved one runs in a subprocess
    through ``etl-runtime run`` with the pod's environment, and ends Succeeded or Failed by its
    exit code.
    """

    def __init__(self, database: TaskDatabase, taskdb_url: str, parent_name: str) -> None:
        self.database = database
        self.taskdb_url = taskdb_url
        self.parent_name = parent_name
        self.pod_outputs: dict[str, str] = {}
        self._stop = threading.Event()
        self._waiting: dict[int, int] = {}
        self._thread = threading.Thread(target=self._work, daemon=True)

    def __enter__(self) -> ChildOperatorStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _work(self) -> None:
        parent: RunRecord | None = None
        while not self._stop.is_set():
            runs = self.database.runs_for("local", self.parent_name)
            parent = runs[0] if runs else None
            if parent is not None:
                self._create_children(parent)
                self._start_decided_children(parent)
            time.sleep(0.1)

    def _create_children(self, parent: RunRecord) -> None:
        for request in self.database.child_requests(parent.id, only_unassigned=True):
            name = f"{parent.name}-c{request.id}"
            self.database.assign_child(request.id, parent.namespace, name)
            task_id = self.database.create_run(
                namespace=parent.namespace,
                name=name,
                uid=str(uuid.uuid4()),
                attempt=1,
                task_class=request.task_class,
                display_name=request.display_name,
                parameters=request.parameters,
                pod_name=f"{name}-1",
                parent_task_id=parent.id,
                root_task_id=parent.root_task_id or parent.id,
            )
            if request.needs_approval:
                self.database.record_status(task_id, "AwaitingApproval")
            self._waiting[request.id] = task_id

    def _start_decided_children(self, parent: RunRecord) -> None:
        for request_id, task_id in list(self._waiting.items()):
            request = self.database.get_child_request(request_id)
            if request.awaits_approval:
                continue
            del self._waiting[request_id]
            if request.approval == "rejected":
                self.database.record_status(task_id, "Cancelled", message="the parent rejected the run")
                continue
            self.database.record_status(task_id, "Running")
            child = self.database.get_run(task_id)
            pod = subprocess.run(
                [sys.executable, "-m", "etl_runtime", "run"],
                env=runtime_environment(
                    {
                        "KUBE_ETL_TASK_ID": str(task_id),
                        "KUBE_ETL_TASK_CLASS": child.task_class,
                        "KUBE_ETL_TASK_NAME": child.name,
                        "KUBE_ETL_NAMESPACE": child.namespace,
                        "KUBE_ETL_ATTEMPT": "1",
                        "KUBE_ETL_PARENT_TASK_ID": str(parent.id),
                        "KUBE_ETL_ROOT_TASK_ID": str(parent.root_task_id or parent.id),
                        "KUBE_ETL_DATABASE_URL": self.taskdb_url,
                    }
                ),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            self.pod_outputs[child.name] = pod.stdout + pod.stderr
            status = "Succeeded" if pod.returncode == 0 else "Failed"
            self.database.record_status(task_id, status, exit_code=pod.returncode)


@pytest.fixture
def run_parent(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str
) -> Iterator[Callable[..., tuple[subprocess.CompletedProcess[str], ChildOperatorStandIn]]]:
    def run(*params: str) -> tuple[subprocess.CompletedProcess[str], ChildOperatorStandIn]:
        arguments = ["run", "--local", "seed_api.children.NightlyBatch", "--database-url", taskdb_url]
        for param in params:
            arguments += ["--param", param]
        with ChildOperatorStandIn(task_database, taskdb_url, "nightly-batch") as operator:
            result = run_etl_runtime(arguments, timeout=120)
        return result, operator

    yield run


def test_children_run_and_parent_waits(
    run_parent: Callable[..., tuple[subprocess.CompletedProcess[str], ChildOperatorStandIn]],
    task_database: TaskDatabase,
) -> None:
    result, operator = run_parent('regions=["emea", "apac", "amer"]', 'skip=["apac"]')

    assert result.returncode == 0, result.stdout + result.stderr
    parent = only_local_run(task_database, "nightly-batch")
    statistics = task_database.read_statistics(parent.id)
    assert statistics["task.children.Succeeded"] == 2
    assert statistics["task.children.Cancelled"] == 1
    children = task_database.child_runs(parent.id)
    assert [child.status for child in children] == ["Succeeded", "Cancelled", "Succeeded"]
    assert all(child.root_task_id == parent.id for child in children)
    assert [request.approval for request in task_database.child_requests(parent.id)] == [
        "approved",
        "rejected",
        "approved",
    ]
    emea = children[0]
    assert task_database.load_parameters(emea.id) == {"region": "emea", "fail_region": None}
    assert f"loading emea for nightly-batch (task run {parent.id})" in operator.pod_outputs[emea.name]


def test_failed_child_ends_wait_and_fails_parent(
    run_parent: Callable[..., tuple[subprocess.CompletedProcess[str], ChildOperatorStandIn]],
    task_database: TaskDatabase,
) -> None:
    result, _ = run_parent('regions=["emea"]', "fail_region=emea")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "workflow finished: child request" in result.stdout
    parent = only_local_run(task_database, "nightly-batch")
    assert parent.status == "Failed"
    assert parent.message is not None
    assert "1 child run(s) failed" in parent.message
