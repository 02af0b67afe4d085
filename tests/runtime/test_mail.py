"""Failure mail: sent through a real SMTP server (aiosmtpd on 127.0.0.1) when a run fails.

The task runs in this process, except in the tests named ``test_local_run_*``, which run
``etl-runtime run --local`` in a subprocess against the real task database.
"""

from __future__ import annotations

import configparser
import logging
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from etl_runtime import ETLTask, TaskStatus
from tests.runtime.conftest import SmtpServer, StartSmtpServer, free_local_port

RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]


class FailingTask(ETLTask):
    def load(self) -> None:
        raise RuntimeError("the source file is empty")


class CancelledTask(ETLTask):
    def load(self) -> None:
        self.request_stop(signal.SIGTERM)
        self.raise_if_stop_requested()


class SucceedingTask(ETLTask):
    def load(self) -> None:
        pass


@pytest.fixture(autouse=True)
def clean_mail_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for variable in ("KUBE_ETL_NO_MAIL", "KUBE_ETL_NOTIFY_EMAIL", "KUBE_ETL_ENVIRONMENT", "KUBE_ETL_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    yield


def config_for(server: SmtpServer, extra: str = "", **smtp_options: str) -> configparser.ConfigParser:
    config = configparser.ConfigParser()
    config.read_string(server.config_text(**smtp_options) + extra)
    return config


def run_task(
    task_class: type[ETLTask], config: configparser.ConfigParser, **run_options: bool | None
) -> ETLTask:
    with task_class(config=config) as task:
        task.run(**run_options)
    return task


def test_failure_mail_reaches_recipients(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_ETL_NOTIFY_EMAIL", "bi-team@example.org, oncall@example.org")

    task = run_task(FailingTask, config_for(smtp_server, **{"from": "etl@example.org"}))

    assert task.status is TaskStatus.FAILED
    assert len(smtp_server.received) == 1
    mail = smtp_server.received[0]
    assert mail.message["Subject"] == "[kube-etl] tests.runtime.test_mail.FailingTask failed"
    assert mail.recipients == ("bi-team@example.org", "oncall@example.org")
    assert mail.sender == "etl@example.org"
    assert mail.message["To"] == "bi-team@example.org, oncall@example.org"
    body = mail.message.get_payload(decode=True).decode()
    assert "Traceback" in body
    assert "RuntimeError: the source file is empty" in body
    assert "Task id:      (none)" in body


def test_environment_variable_names_environment(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBE_ETL_NOTIFY_EMAIL", "bi-team@example.org")
    monkeypatch.setenv("KUBE_ETL_ENVIRONMENT", "production")

    run_task(FailingTask, config_for(smtp_server, "[kube_etl]\nenvironment = staging\n"))

    assert (
        smtp_server.received[0].message["Subject"]
        == "[production] tests.runtime.test_mail.FailingTask failed"
    )


def test_config_names_environment_and_recipients(smtp_server: SmtpServer) -> None:
    config = config_for(smtp_server, "[kube_etl]\nenvironment = staging\n", to="a@example.org,b@example.org")

    run_task(FailingTask, config)

    mail = smtp_server.received[0]
    assert mail.message["Subject"] == "[staging] tests.runtime.test_mail.FailingTask failed"
    assert mail.recipients == ("a@example.org", "b@example.org")


def test_notify_variable_replaces_config_recipients(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBE_ETL_NOTIFY_EMAIL", "spec@example.org")

    run_task(FailingTask, config_for(smtp_server, to="config@example.org"))

    assert smtp_server.received[0].recipients == ("spec@example.org",)


def test_no_mail_argument_sends_nothing(smtp_server: SmtpServer) -> None:
    task = run_task(FailingTask, config_for(smtp_server, to="a@example.org"), no_mail=True)

    assert task.status is TaskStatus.FAILED
    assert smtp_server.received == []


@pytest.mark.parametrize("value", ["1", "true", "YES"])
def test_no_mail_variable_sends_nothing(
    smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("KUBE_ETL_NO_MAIL", value)

    run_task(FailingTask, config_for(smtp_server, to="a@example.org"))

    assert smtp_server.received == []


def test_no_mail_false_overrides_variable(smtp_server: SmtpServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_ETL_NO_MAIL", "1")

    run_task(FailingTask, config_for(smtp_server, to="a@example.org"), no_mail=False)

    assert len(smtp_server.received) == 1


def test_cancelled_run_sends_nothing(smtp_server: SmtpServer) -> None:
    task = run_task(CancelledTask, config_for(smtp_server, to="a@example.org"))

    assert task.status is TaskStatus.CANCELLED
    assert smtp_server.received == []


def test_successful_run_sends_nothing(smtp_server: SmtpServer) -> None:
    task = run_task(SucceedingTask, config_for(smtp_server, to="a@example.org"))

    assert task.status is TaskStatus.SUCCEEDED
    assert smtp_server.received == []


def test_rejecting_server_is_logged_not_raised(
    start_smtp_server: StartSmtpServer, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_smtp_server(reject_recipients=True)

    with caplog.at_level(logging.ERROR):
        task = run_task(FailingTask, config_for(server, to="a@example.org"))

    assert task.status is TaskStatus.FAILED
    assert server.received == []
    assert f"sending the failure mail to a@example.org through 127.0.0.1:{server.port} failed" in caplog.text
    assert "SMTPRecipientsRefused" in caplog.text


def test_unreachable_server_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    port = free_local_port()
    config = configparser.ConfigParser()
    config.read_string(f"[smtp]\nhost = 127.0.0.1\nport = {port}\nto = a@example.org\ntimeout = 5\n")

    with caplog.at_level(logging.ERROR):
        task = run_task(FailingTask, config)

    assert task.status is TaskStatus.FAILED
    assert f"through 127.0.0.1:{port} failed: ConnectionRefusedError" in caplog.text


def test_server_login_uses_configured_user(start_smtp_server: StartSmtpServer) -> None:
    server = start_smtp_server(users={"etl": "mail-secret"})

    run_task(FailingTask, config_for(server, to="a@example.org", user="etl", password="mail-secret"))

    assert server.handler.logins == [("etl", "mail-secret")]
    assert len(server.received) == 1


def test_missing_host_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    config = configparser.ConfigParser()
    config.read_string("[smtp]\nto = a@example.org\n")

    with caplog.at_level(logging.WARNING):
        run_task(FailingTask, config)

    assert "no failure mail sent to a@example.org: the config has no [smtp] host option" in caplog.text


def test_invalid_port_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    config = configparser.ConfigParser()
    config.read_string("[smtp]\nhost = 127.0.0.1\nport = twenty-five\nto = a@example.org\n")

    with caplog.at_level(logging.ERROR):
        task = run_task(FailingTask, config)

    assert task.status is TaskStatus.FAILED
    assert "config option [smtp] port is not a number: 'twenty-five'" in caplog.text


def test_local_run_mail_names_task_run(
    run_etl_runtime: RunEtlRuntime, smtp_server: SmtpServer, taskdb_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.ini"
    config_file.write_text(smtp_server.config_text() + "[kube_etl]\nenvironment = ci\n")

    result = run_etl_runtime(
        [
            *("run", "--local", "warehouse.jobs.failing.FailingJob", "--param", "rows_before_failure=3"),
            *("--database-url", taskdb_url, "--config", str(config_file)),
        ],
        env={"KUBE_ETL_NOTIFY_EMAIL": "bi-team@example.org"},
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert "sent the failure mail to bi-team@example.org" in result.stdout
    mail = smtp_server.received[0]
    assert mail.message["Subject"] == "[ci] warehouse.jobs.failing.FailingJob failed"
    assert mail.recipients == ("bi-team@example.org",)
    body = mail.message.get_payload(decode=True).decode()
    assert "ETLTask:      local/failing-job" in body
    assert "RuntimeError: FailingJob failed on purpose after reading 3 rows" in body


def test_local_run_no_mail_flag(
    run_etl_runtime: RunEtlRuntime, smtp_server: SmtpServer, taskdb_url: str, tmp_path: Path
) -> None:
    config_file = tmp_path / "config.ini"
    config_file.write_text(smtp_server.config_text(to="bi-team@example.org"))

    result = run_etl_runtime(
        [
            *("run", "--local", "warehouse.jobs.failing.FailingJob", "--no-mail"),
            *("--database-url", taskdb_url, "--config", str(config_file)),
        ]
    )

    assert result.returncode == 1, result.stdout + result.stderr
    assert smtp_server.received == []
