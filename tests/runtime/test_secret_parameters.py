"""Secret parameters in the runtime: real values for the job, the mask everywhere else.

The tests without a task database check the job's API, the log, the error text and the failure
mail. The others check what the task database stores, for runs that the operator creates (by
calling ``TaskDatabase.create_run`` as it does) and for ``etl-runtime run --local``. Every test
uses a new secret value, because the runtime remembers each secret value for the life of the
process.
"""

from __future__ import annotations

import configparser
import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import text

from etl_runtime import SECRET_MASK, ETLTask, ParameterError, TaskStatus, secret_parameter_variable
from etl_runtime._logging import configure_logging
from etl_runtime.taskdb import StoredParameter, TaskDatabase
from tests.runtime.conftest import RunEtlRuntime, SmtpServer


def new_secret() -> str:
    return f"s3cr3t-{uuid.uuid4().hex}"


class UsesToken(ETLTask):
    """Read the secret parameter api_token and record whether it matches `expected`."""

    def load(self) -> None:
        token = self.get_parameter("api_token")
        self.statistics.set("token_matches", token == self.get_parameter("expected", None))
        self.statistics.set("token_length", len(token))
        self.log.info("calling the API with token %s", token)


class FailsWithToken(ETLTask):
    """Fail with the secret in the exception message, as careless job code does."""

    def load(self) -> None:
        token = self.get_parameter("api_token")
        raise RuntimeError(f"the API refused token {token}")


class SetsOwnSecret(ETLTask):
    """Receive a session key during the run and keep it as a secret parameter."""

    def load(self) -> None:
        self.set_parameter("session_key", self.get_parameter("fresh_key"), secret=True)
        self.set_parameter("session_key", "still secret after a second set")


class Child(ETLTask):
    def load(self) -> None:
        pass


class PassesTokenToChild(ETLTask):
    def load(self) -> None:
        self.add_child_task_to_scheduler(Child, {"token": self.get_parameter("api_token")})


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def operator_run(database: TaskDatabase, parameters: dict[str, Any], secret_parameters: list[str]) -> int:
    """Create a run the way the operator does for an ETLTask with spec.secretParameters."""
    return database.create_run(
        namespace="analytics",
        name="call-api",
        uid=str(uuid.uuid4()),
        attempt=1,
        task_class="tests.runtime.test_secret_parameters.UsesToken",
        display_name=None,
        parameters=parameters,
        secret_parameters=secret_parameters,
    )


def stored_rows(database: TaskDatabase, task_id: int) -> str:
    with database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT * FROM task_parameter WHERE task_id = :id"), {"id": task_id}
        ).all()
        run = connection.execute(text("SELECT * FROM task_run WHERE id = :id"), {"id": task_id}).all()
    return " ".join(str(row) for row in [*rows, *run])


# The job's API, without a task database


def test_job_secret_masked_in_repr() -> None:
    secret = new_secret()
    job = UsesToken()

    job.set_parameter("api_token", secret, secret=True)

    assert job.get_parameter("API_TOKEN") == secret
    assert job.parameters()["api_token"] == secret
    assert secret not in repr(job.parameters())
    assert secret not in str(job.parameters())
    assert repr(job.parameters()) == f"{{'api_token': '{SECRET_MASK}'}}"
    assert job.parameters().masked() == {"api_token": SECRET_MASK}
    assert job.secret_parameter_names() == ["api_token"]


def test_secret_stays_secret_when_set_again() -> None:
    first, second = new_secret(), new_secret()
    job = UsesToken()
    job.set_parameter("api_token", first, secret=True)

    job.set_parameter("Api_Token", second)

    assert job.get_parameter("api_token") == second
    assert second not in repr(job.parameters())


def test_secret_value_need_not_be_json() -> None:
    job = UsesToken()

    job.set_parameter("client", object(), secret=True)

    assert job.secret_parameter_names() == ["client"]


def test_job_log_masks_secret(caplog: pytest.LogCaptureFixture) -> None:
    secret = new_secret()
    job = UsesToken(parameters={"expected": secret})
    job.set_parameter("api_token", secret, secret=True, commit=False)

    with caplog.at_level(logging.INFO):
        assert job.run(no_mail=True)

    assert f"calling the API with token {SECRET_MASK}" in caplog.text
    assert secret not in caplog.text
    assert job.run_statistics()["task.token_matches"] is True


def test_error_text_masks_secret() -> None:
    secret = new_secret()
    job = FailsWithToken()
    job.set_parameter("api_token", secret, secret=True)

    job.run(no_mail=True)

    assert job.status is TaskStatus.FAILED
    assert job.error is not None
    assert f"the API refused token {SECRET_MASK}" in job.error
    assert secret not in job.error


def test_failure_mail_masks_secret(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_ETL_NO_MAIL", raising=False)
    secret = new_secret()
    config = configparser.ConfigParser()
    config.read_string(smtp_server.config_text(to="bi-team@example.org"))
    job = FailsWithToken(config=config)
    job.set_parameter("api_token", secret, secret=True)

    job.run()

    body = smtp_server.received[0].message.get_payload(decode=True).decode()
    assert f"the API refused token {SECRET_MASK}" in body
    assert secret not in body


def test_runtime_handler_masks_every_logger(restore_root_logger: None) -> None:
    secret = new_secret()
    stream = io.StringIO()
    configure_logging(logging.INFO, stream, "json")
    UsesToken().set_parameter("api_token", secret, secret=True)

    other = logging.getLogger("job.helpers")
    other.warning("token is %s", secret, extra={"header": f"Bearer {secret}"})
    try:
        raise ValueError(f"bad token {secret}")
    except ValueError:
        other.exception("request failed")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert secret not in stream.getvalue()
    assert lines[0]["message"] == f"token is {SECRET_MASK}"
    assert lines[0]["header"] == f"Bearer {SECRET_MASK}"
    assert f"ValueError: bad token {SECRET_MASK}" in lines[1]["exception"]


def test_child_parameter_cannot_carry_secret() -> None:
    secret = new_secret()
    parent = PassesTokenToChild()
    parent.set_parameter("api_token", secret, secret=True)

    with pytest.raises(
        ParameterError, match="child parameter 'token' contains the value of a secret parameter"
    ):
        parent.add_child_task_to_scheduler(Child, {"token": secret})


def test_secret_parameter_variable_names() -> None:
    assert secret_parameter_variable("api_token") == "KUBE_ETL_SECRET_PARAMETER_API_TOKEN"
    with pytest.raises(ValueError, match="secret parameter name 'api-token' is invalid"):
        secret_parameter_variable("api-token")


# The task database


def test_create_run_stores_secret_as_mask(task_database: TaskDatabase) -> None:
    task_id = operator_run(task_database, {"batch_size": 10}, ["api_token"])

    assert task_database.load_parameters(task_id) == {"batch_size": 10, "api_token": SECRET_MASK}
    assert sorted(task_database.parameter_records(task_id), key=lambda record: record.name) == [
        StoredParameter("api_token", SECRET_MASK, True),
        StoredParameter("batch_size", 10, False),
    ]


def test_create_run_rejects_name_in_both(task_database: TaskDatabase) -> None:
    with pytest.raises(ParameterError, match="parameter 'API_TOKEN' is given both as a value and as"):
        operator_run(task_database, {"API_TOKEN": "x"}, ["api_token"])


def test_create_run_rejects_secret_given_twice(task_database: TaskDatabase) -> None:
    with pytest.raises(ParameterError, match="secret parameters 'token' and 'TOKEN' name the same parameter"):
        operator_run(task_database, {}, ["token", "TOKEN"])


def test_secret_row_keeps_mask_when_written_in_clear(task_database: TaskDatabase) -> None:
    secret = new_secret()
    task_id = operator_run(task_database, {}, ["api_token"])

    task_database.set_parameters(task_id, {"Api_Token": secret})

    assert task_database.parameter_records(task_id) == [StoredParameter("Api_Token", SECRET_MASK, True)]
    assert secret not in stored_rows(task_database, task_id)


def test_pod_run_reads_secret_from_environment(
    task_database: TaskDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = new_secret()
    monkeypatch.setenv("KUBE_ETL_SECRET_PARAMETER_API_TOKEN", secret)
    task_id = operator_run(task_database, {}, ["api_token"])

    with FailsWithToken(task_id, task_database=task_database) as job:
        job.set_parameter("note", "written after the secret was loaded")
        job.run(no_mail=True)

    assert job.status is TaskStatus.FAILED
    assert task_database.load_parameters(task_id)["api_token"] == SECRET_MASK
    assert secret not in stored_rows(task_database, task_id)
    assert f"the API refused token {SECRET_MASK}" in (task_database.get_run(task_id).error or "")


def test_secret_without_its_variable_names_the_variable(
    task_database: TaskDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBE_ETL_SECRET_PARAMETER_API_TOKEN", raising=False)
    task_id = operator_run(task_database, {}, ["api_token"])

    with UsesToken(task_id, task_database=task_database) as job:
        with pytest.raises(ParameterError, match="KUBE_ETL_SECRET_PARAMETER_API_TOKEN, which is not set"):
            job.get_parameter("api_token", "a default does not hide it")
        assert job.parameters()["api_token"] == SECRET_MASK


def test_secret_set_by_job_is_stored_masked(task_database: TaskDatabase) -> None:
    fresh_key = new_secret()
    task_id = operator_run(task_database, {}, [])
    # The fresh key reaches the job as an ordinary parameter here, only to hand it a value.
    task_database.set_parameters(task_id, {"fresh_key": fresh_key})

    with SetsOwnSecret(task_id, task_database=task_database) as job:
        assert job.run(no_mail=True)
        assert job.get_parameter("session_key") == "still secret after a second set"

    records = {record.name: record for record in task_database.parameter_records(task_id)}
    assert records["session_key"] == StoredParameter("session_key", SECRET_MASK, True)
    assert "still secret after a second set" not in stored_rows(task_database, task_id)


# etl-runtime run --local


def test_local_run_takes_secret_from_environment(
    run_etl_runtime: RunEtlRuntime, task_database: TaskDatabase, taskdb_url: str
) -> None:
    secret = new_secret()
    result = run_etl_runtime(
        [
            "run",
            "--local",
            "tests.runtime.test_secret_parameters.UsesToken",
            "--secret-param",
            "api_token",
            "--database-url",
            taskdb_url,
        ],
        env={"KUBE_ETL_SECRET_PARAMETER_API_TOKEN": secret},
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert secret not in result.stdout + result.stderr
    assert f"calling the API with token {SECRET_MASK}" in result.stdout
    [run] = task_database.runs_for("local", "uses-token")
    assert task_database.load_parameters(run.id) == {"api_token": SECRET_MASK}
    assert task_database.read_statistics(run.id)["task.token_length"] == len(secret)


def test_local_run_without_secret_variable_exits_2(run_etl_runtime: RunEtlRuntime, taskdb_url: str) -> None:
    result = run_etl_runtime(
        ["run", "--local", "tests.runtime.test_secret_parameters.UsesToken", "--secret-param", "api_token"],
        env={"KUBE_ETL_DATABASE_URL": taskdb_url},
    )

    assert result.returncode == 2
    assert "KUBE_ETL_SECRET_PARAMETER_API_TOKEN, which is not set" in result.stderr + result.stdout


def test_local_run_refuses_secret_value_on_command_line(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(
        ["run", "--local", "tests.runtime.test_secret_parameters.UsesToken", "--secret-param", "api_token=x"]
    )

    assert result.returncode == 2
    assert "give only its name" in result.stderr
