"""The two ways ``etl-runtime run`` runs a task: in a pod started by the operator, or locally.

``cli.main`` parses the command line and calls ``run_in_pod`` or ``run_local``. Both resolve the
task class (a full ``module.Class`` or a unique partial name), build the task, run it with SIGTERM
and SIGINT turned into stop requests, and return the process exit code. Only ``run_local``
records phases, because in a pod the operator owns them.
"""

from __future__ import annotations

import logging
import os
import signal
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any

from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from etl_runtime._config import load_config
from etl_runtime._errors import ConfigError, ParameterError, TaskClassNotFoundError, TaskStopRequested
from etl_runtime._manifest import default_task_name
from etl_runtime._resolve import configured_base_modules, resolve_task_class, task_class_name
from etl_runtime._secrets import secret_parameter_variable
from etl_runtime._task import ETLTask, TaskStatus, format_error, retry_database_errors
from etl_runtime.taskdb import TaskDatabase, TaskNotFoundError

log = logging.getLogger("etl_runtime.runner")

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
# The runtime could not start the task: invalid arguments or environment, unknown task class,
# or no task run row. The task's own code never ran.
EXIT_SETUP_FAILED = 2

# Namespace of the task run rows that ``run --local`` creates.
LOCAL_NAMESPACE = "local"


class RunnerSetupError(Exception):
    """The runner cannot start the task. The message names the invalid or missing input."""


@dataclass(frozen=True)
class PodEnvironment:
    """Identity of the run, as the operator sets it in the pod's environment."""

    task_id: int
    task_class: str
    database_url: str
    task_name: str | None
    namespace: str | None
    attempt: int | None
    config_path: str | None
    parent_task_id: int | None
    root_task_id: int | None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> PodEnvironment:
        def required(variable: str) -> str:
            value = environ.get(variable, "").strip()
            if not value:
                raise RunnerSetupError(
                    f"environment variable {variable} is not set; the operator sets it in the pod, "
                    "and a run outside Kubernetes needs etl-runtime run --local"
                )
            return value

        def optional(variable: str) -> str | None:
            return environ.get(variable, "").strip() or None

        def optional_int(variable: str) -> int | None:
            value = optional(variable)
            if value is None:
                return None
            try:
                return int(value)
            except ValueError as exc:
                raise RunnerSetupError(
                    f"environment variable {variable} is not an integer: {value!r}"
                ) from exc

        task_id_text = required("KUBE_ETL_TASK_ID")
        try:
            task_id = int(task_id_text)
        except ValueError as exc:
            raise RunnerSetupError(
                f"environment variable KUBE_ETL_TASK_ID is not an integer: {task_id_text!r}"
            ) from exc
        return cls(
            task_id=task_id,
            task_class=required("KUBE_ETL_TASK_CLASS"),
            database_url=required("KUBE_ETL_DATABASE_URL"),
            task_name=optional("KUBE_ETL_TASK_NAME"),
            namespace=optional("KUBE_ETL_NAMESPACE"),
            attempt=optional_int("KUBE_ETL_ATTEMPT"),
            config_path=optional("KUBE_ETL_CONFIG"),
            parent_task_id=optional_int("KUBE_ETL_PARENT_TASK_ID"),
            root_task_id=optional_int("KUBE_ETL_ROOT_TASK_ID"),
        )


def exit_code_for(task: ETLTask) -> int:
    """Map the task's status after ``run`` to the process exit code."""
    if task.status is TaskStatus.SUCCEEDED:
        return EXIT_SUCCEEDED
    if task.status is TaskStatus.CANCELLED:
        return 128 + (task.stop_signal or signal.SIGTERM)
    return EXIT_FAILED


def resolve_configured_task_class(name: str, config_path: str | None) -> type[ETLTask]:
    """Resolve a task name with the base modules of the config file and ``$KUBE_ETL_BASE_MODULES``.

    Raises TaskClassNotFoundError, also when the config file cannot be read.
    """
    try:
        base_modules = configured_base_modules(load_config(config_path))
    except ConfigError as exc:
        raise TaskClassNotFoundError(f"task class {name!r} cannot be resolved: {exc}") from exc
    task_class = resolve_task_class(name, base_modules=base_modules)
    full_name = task_class_name(task_class)
    if full_name != name.strip():
        log.info("task name %r resolved to %s", name, full_name)
    return task_class


def execute(task: ETLTask, *, no_mail: bool | None = None) -> int:
    """Run the task with stop signals handled and return the exit code.

    The first SIGTERM or SIGINT requests a stop at the task's next check (between steps, or where
    the job calls ``raise_if_stop_requested``). A second one during a step raises
    TaskStopRequested at once. Either way the statistics are saved before the process exits
    with 128 + the signal number (143 for SIGTERM).

    NOTE: a second signal that arrives while the job's own code is inside a logging call raises
    there, and ``logging`` prints and swallows the exception, so that step goes on until its
    next check. The next signal interrupts it again.
    """

    # A signal that arrives while the handler still runs, e.g. inside its log call, is handled by
    # the outer call: an exception raised inside a logging handler is printed and swallowed.
    handler_state = {"running": False, "interrupt": False}

    def handle_stop_signal(signal_number: int, frame: FrameType | None) -> None:
        if handler_state["running"]:
            handler_state["interrupt"] = True
            return
        handler_state["running"] = True
        try:
            if task.stop_requested and task.in_step:
                raise TaskStopRequested(signal_number)
            task.request_stop(signal_number)
            log.warning(
                "received %s; task run %s stops at its next check",
                signal.Signals(signal_number).name,
                task.task_id,
            )
            if handler_state["interrupt"] and task.in_step:
                raise TaskStopRequested(signal_number)
        finally:
            handler_state["running"] = False
            handler_state["interrupt"] = False

    previous = {
        number: signal.signal(number, handle_stop_signal) for number in (signal.SIGTERM, signal.SIGINT)
    }
    started = time.monotonic()
    try:
        task.run(no_mail=no_mail)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    exit_code = exit_code_for(task)
    log.info(
        "task run %s finished: %s, exit code %d, %.3f s",
        task.task_id,
        task.status.value,
        exit_code,
        time.monotonic() - started,
    )
    return exit_code


def run_in_pod(environ: Mapping[str, str], *, no_mail: bool | None = None) -> int:
    """Run the task that the operator described in the environment, and return the exit code."""
    try:
        env = PodEnvironment.from_environ(environ)
    except RunnerSetupError as exc:
        log.error("cannot start the task: %s", exc)
        return EXIT_SETUP_FAILED

    log.info(
        "starting task run %d: %s/%s attempt %s, class %s, pid %d",
        env.task_id,
        env.namespace or "-",
        env.task_name or "-",
        env.attempt if env.attempt is not None else "-",
        env.task_class,
        os.getpid(),
    )
    try:
        database = TaskDatabase(env.database_url)
    except ArgumentError as exc:
        log.error("cannot start the task: KUBE_ETL_DATABASE_URL is not a valid database URL: %s", exc)
        return EXIT_SETUP_FAILED
    try:
        return _run_recorded_task(env, database, no_mail)
    finally:
        database.dispose()


def _run_recorded_task(env: PodEnvironment, database: TaskDatabase, no_mail: bool | None) -> int:
    try:
        run = retry_database_errors(
            lambda: database.get_run(env.task_id), f"reading task run {env.task_id}", log
        )
    except TaskNotFoundError as exc:
        log.error("cannot start the task: %s; check KUBE_ETL_TASK_ID and KUBE_ETL_DATABASE_URL", exc)
        return EXIT_SETUP_FAILED
    except SQLAlchemyError as exc:
        log.error(
            "cannot start the task: reading task run %d from the task database failed: %s", env.task_id, exc
        )
        return EXIT_SETUP_FAILED
    if run.task_class != env.task_class:
        log.warning(
            "task run %d was created for class %s, but KUBE_ETL_TASK_CLASS is %s; running %s",
            env.task_id,
            run.task_class,
            env.task_class,
            env.task_class,
        )

    try:
        task_class = resolve_configured_task_class(env.task_class, env.config_path)
    except TaskClassNotFoundError as exc:
        log.error("cannot start the task: %s", exc)
        _record_error_quietly(database, env.task_id, str(exc))
        return EXIT_SETUP_FAILED

    try:
        task = task_class(
            env.task_id,
            task_database=database,
            config=env.config_path,
            parent_task_id=env.parent_task_id if env.parent_task_id is not None else run.parent_task_id,
            root_task_id=env.root_task_id if env.root_task_id is not None else run.root_task_id,
            display_name=run.display_name,
        )
    except Exception as exc:
        log.error("creating %s failed: %s: %s", env.task_class, type(exc).__name__, exc, exc_info=exc)
        _record_error_quietly(database, env.task_id, format_error(exc))
        return EXIT_FAILED

    with task:
        return execute(task, no_mail=no_mail)


def run_local(
    class_path: str,
    parameters: Mapping[str, Any],
    *,
    database_url: str,
    config_path: str | None = None,
    display_name: str | None = None,
    no_mail: bool | None = None,
    secret_parameters: Collection[str] = (),
) -> int:
    """Run a task class without Kubernetes, recording the run and its phases itself.

    Brings the task database schema up to date, creates a ``task_run`` row in namespace
    ``local`` with a new uid and the given parameters, and records Running, then the outcome.
    ``class_path`` may be a partial name, and the row records the full ``module.Class``.
    ``secret_parameters`` names parameters whose values the task reads from their environment
    variables, as in a pod; the row stores them masked.
    """
    for name in secret_parameters:
        try:
            variable = secret_parameter_variable(name)
        except ValueError as exc:
            log.error("cannot start the task: %s", exc)
            return EXIT_SETUP_FAILED
        if variable not in os.environ:
            log.error(
                "cannot start the task: secret parameter %r takes its value from environment variable %s, "
                "which is not set; set it, e.g. with read -s %s && export %s",
                name,
                variable,
                variable,
                variable,
            )
            return EXIT_SETUP_FAILED
    try:
        task_class = resolve_configured_task_class(class_path, config_path)
    except TaskClassNotFoundError as exc:
        log.error("cannot start the task: %s", exc)
        return EXIT_SETUP_FAILED
    class_path = task_class_name(task_class)

    try:
        database = TaskDatabase(database_url)
    except ArgumentError as exc:
        log.error("cannot start the task: the task database URL is invalid: %s", exc)
        return EXIT_SETUP_FAILED
    try:
        try:
            database.upgrade()
            task_id = database.create_run(
                namespace=LOCAL_NAMESPACE,
                name=default_task_name(task_class),
                uid=str(uuid.uuid4()),
                attempt=1,
                task_class=class_path,
                display_name=display_name,
                parameters=parameters,
                secret_parameters=secret_parameters,
            )
        except (ParameterError, SQLAlchemyError) as exc:
            log.error("cannot start the task: creating the task run failed: %s", exc)
            return EXIT_SETUP_FAILED
        log.info("created task run %d for %s in namespace %s", task_id, class_path, LOCAL_NAMESPACE)
        database.record_status(task_id, TaskStatus.RUNNING.value)

        try:
            task = task_class(task_id, task_database=database, config=config_path, display_name=display_name)
        except Exception as exc:
            log.error("creating %s failed: %s: %s", class_path, type(exc).__name__, exc, exc_info=exc)
            database.record_error(task_id, format_error(exc))
            database.record_status(task_id, TaskStatus.FAILED.value, message=str(exc), exit_code=EXIT_FAILED)
            return EXIT_FAILED

        with task:
            exit_code = execute(task, no_mail=no_mail)
        message = None if task.status is TaskStatus.SUCCEEDED else _last_line(task.error)
        database.record_status(task_id, task.status.value, message=message, exit_code=exit_code)
        return exit_code
    finally:
        database.dispose()


def _last_line(text: str | None) -> str | None:
    if not text:
        return None
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else None


def _record_error_quietly(database: TaskDatabase, task_id: int, error: str) -> None:
    try:
        database.record_error(task_id, error)
    except Exception:
        log.exception("recording the error of task run %d in the task database failed", task_id)
