"""``ETLTask``, the base class of every ETL job that kube-etl runs.

A job subclasses ``ETLTask`` and overrides ``load`` (and ``init`` and ``finish`` where needed).
``etl-runtime run`` builds the class named by the ETLTask resource, calls ``run()`` and exits with
its outcome. ``run()`` reads the parameters from the task database, runs the three steps, and
writes statistics, parameters and the error text back, on failure too, then sends the failure
mail when the run failed. Phases belong to the operator: the task never writes them, except
through the runner's ``--local`` mode. A parent task requests child runs through the task
database (``_children``), because job pods have no access to the Kubernetes API. The values of
secret parameters are masked in the task database, the error text, the failure mail and the
task's log (``_secrets``).
"""

from __future__ import annotations

import configparser
import enum
import logging
import os
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from etl_runtime._children import CANCELLED, ChildTask, ChildTracker, RelatedTask
from etl_runtime._components import TASK_STATISTICS_PREFIX, ComponentRegistry
from etl_runtime._config import DatabaseMetadata, create_database_metadata, load_config, load_config_from_env
from etl_runtime._declarations import (
    Dependency,
    DependencyDeclaration,
    TaskDeclarations,
    normalize_dependencies,
    normalize_patterns,
)
from etl_runtime._errors import (
    ConfigError,
    ParameterError,
    TaskClassNotFoundError,
    TaskStopRequested,
    WorkflowFinished,
)
from etl_runtime._logging import SecretRedactor, TaskLoggerAdapter
from etl_runtime._mail import FailedRun, MailSettings, no_mail_from_env, send_failure_mail
from etl_runtime._parameters import (
    MISSING,
    UNAVAILABLE,
    ParameterInput,
    ParameterSet,
    ParameterValues,
    parameter_items,
)
from etl_runtime._secrets import redact, redacting, secret_parameter_variable
from etl_runtime._statistics import Statistics, StatisticValue
from etl_runtime.taskdb import APPROVED, REJECTED, RunRecord, TaskDatabase, TaskDatabaseError

ComponentT = TypeVar("ComponentT")

# Tracebacks saved to the task database keep at most this many of the innermost frames.
ERROR_TRACEBACK_FRAMES = 30

# Seconds between two reads of the task database while process_messages(block=True) waits.
CHILD_POLL_INTERVAL_SECONDS = 0.2


class TaskStatus(enum.StrEnum):
    """Outcome of ``ETLTask.run`` as seen inside the process. The values are phase names."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    CANCELLED = "Cancelled"


def format_error(exc: BaseException) -> str:
    """Return the exception's traceback, limited to the innermost frames, as saved in ``task_run.error``.

    The values of secret parameters are masked.
    """
    return redact("".join(traceback.format_exception(exc, limit=-ERROR_TRACEBACK_FRAMES)))


# Seconds the results of a run may take to reach the task database while it is unreachable.
WRITE_RETRY_VARIABLE = "KUBE_ETL_DATABASE_RETRY_SECONDS"
DEFAULT_WRITE_RETRY_SECONDS = 120.0


def _write_retry_seconds() -> float:
    raw = os.environ.get(WRITE_RETRY_VARIABLE, "")
    try:
        return max(0.0, float(raw)) if raw else DEFAULT_WRITE_RETRY_SECONDS
    except ValueError:
        return DEFAULT_WRITE_RETRY_SECONDS


R = TypeVar("R")


def retry_database_errors(
    call: Callable[[], R], description: str, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> R:
    """Run `call`, retrying connection errors with backoff for up to $KUBE_ETL_DATABASE_RETRY_SECONDS.

    The last error is raised once the deadline has passed.
    """
    deadline = time.monotonic() + _write_retry_seconds()
    delay = 0.5
    while True:
        try:
            return call()
        except OperationalError as exc:
            if time.monotonic() + delay > deadline:
                raise
            logger.warning("%s failed; retrying in %.1f s: %s", description, delay, exc)
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class ETLTask:
    """Base class of an ETL job: parameters, config, databases, statistics, children and the run lifecycle.

    A subclass that overrides ``__init__`` must accept the same arguments and pass them on.
    """

    # Version of the task class's code, for the job's own use. kube-etl does not read it yet.
    CLASS_VERSION: ClassVar[float] = 1.0
    # Human-readable name. The ETLTask's spec.displayName takes precedence.
    DISPLAY_NAME: ClassVar[str | None] = None

    def __init__(
        self,
        task_id: int | None = None,
        *,
        task_database: TaskDatabase | None = None,
        config: configparser.ConfigParser | str | os.PathLike[str] | None = None,
        parent_task_id: int | None = None,
        root_task_id: int | None = None,
        display_name: str | None = None,
        parameters: ParameterInput | None = None,
    ) -> None:
        """Create the task object. Nothing connects to a database until it is needed.

        Without ``task_database``, a task with a ``task_id`` connects to ``$KUBE_ETL_DATABASE_URL``
        on first use and closes that connection in ``close``. Without ``config``, the config is
        read from ``$KUBE_ETL_CONFIG``. ``parameters`` are set as by ``set_parameters`` and written
        at the end of ``run``.
        """
        self._task_id = task_id
        self._task_database = task_database
        self._owns_task_database = False
        self._config_source = config
        self._config: configparser.ConfigParser | None = None
        self.parent_task_id = parent_task_id
        self.root_task_id = root_task_id
        self._display_name = display_name

        self._parameters = ParameterSet()
        self._parameters_loaded = False
        self.statistics = Statistics(TASK_STATISTICS_PREFIX)
        self._components = ComponentRegistry()
        self._databases: dict[tuple[str, str | None, str | None], DatabaseMetadata] = {}
        self._status = TaskStatus.PENDING
        self._error: str | None = None
        self._stop_signal: int | None = None
        self._in_step = threading.Event()
        self._closed = False
        self._children = ChildTracker()
        # The parent task object when a parent in this process registered this task as its child.
        self._parent_object: ETLTask | None = None
        self.log = TaskLoggerAdapter(
            logging.getLogger(self.name), {"task_id": task_id if task_id is not None else "-"}
        )
        # Masks secret values also where etl-runtime has not configured the log handler.
        if not any(isinstance(item, SecretRedactor) for item in self.log.logger.filters):
            self.log.logger.addFilter(SecretRedactor())

        if parameters is not None:
            self.set_parameters(parameters, commit=False)

    def __repr__(self) -> str:
        return f"<{self.name} task_id={self._task_id} status={self._status.value}>"

    # Identity

    @property
    def task_id(self) -> int | None:
        """Id of this run's ``task_run`` row, or None for a task built outside a run."""
        return self._task_id

    @property
    def name(self) -> str:
        """Task class name as ``module.Class``, the value of an ETLTask's ``spec.task``."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    @property
    def display_name(self) -> str:
        return self._display_name or self.DISPLAY_NAME or self.name

    @property
    def status(self) -> TaskStatus:
        return self._status

    @property
    def error(self) -> str | None:
        """Traceback of the exception that failed the last ``run``, or None."""
        return self._error

    @property
    def task_database(self) -> TaskDatabase | None:
        """Task database of this run, or None for a task without ``task_id``."""
        if self._task_database is None and self._task_id is not None:
            self._task_database = TaskDatabase.from_env()
            self._owns_task_database = True
        return self._task_database

    @property
    def task_rec(self) -> RunRecord | None:
        """This run's ``task_run`` row, read now, or None for a task without ``task_id``."""
        database = self.task_database
        if database is None or self._task_id is None:
            return None
        return database.get_run(self._task_id)

    # Lifecycle: override these.

    def init(self) -> None:
        """Prepare the run: open sources, check parameters. Runs before ``load``."""

    def load(self) -> None:
        """Do the work of the job. Every task class must override it."""
        raise NotImplementedError(f"{self.name} must override load()")

    def finish(self) -> None:
        """Clean up after ``load`` succeeded, e.g. swap in a table or analyse it."""

    def start_following_tasks(self) -> None:
        """Start the work that follows a successful ``finish``, e.g. request child tasks.

        ``run`` calls it last, and an exception here fails the run. Does nothing by default.
        """

    def run(self, no_mail: bool | None = None) -> bool:
        """Run ``init``, ``load``, ``finish`` and ``start_following_tasks``; return whether all succeeded.

        Each step's duration is saved as ``task.<step>.seconds``. An exception fails the run, and
        ``TaskStopRequested`` cancels it. Both are logged, not raised. In every case the
        statistics, the unwritten parameters and the error text are then written to the task
        database, and the outcome is in ``status``. A failed run then sends the failure mail,
        unless ``no_mail`` is true, or is None and ``$KUBE_ETL_NO_MAIL`` is set. A cancelled run
        sends no mail.
        """
        self._status = TaskStatus.RUNNING
        self._error = None
        self.log.info("task started: %s (%s)", self.display_name, self.name)
        try:
            self._load_parameters_once()
            for step_name, step in (("init", self.init), ("load", self.load), ("finish", self.finish)):
                self._run_step(step_name, step)
            self.commit_parameters()
            self.raise_if_stop_requested()
            self.start_following_tasks()
        except TaskStopRequested as stop:
            self._status = TaskStatus.CANCELLED
            self._error = redact(f"TaskStopRequested: {stop}")
            self.log.warning("task cancelled: %s", stop)
        except Exception as exc:
            self._status = TaskStatus.FAILED
            self._error = format_error(exc)
            self.log.error("task failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
        else:
            self._status = TaskStatus.SUCCEEDED
            self.log.info("task succeeded")
        finally:
            self._save_results()
        if self._status is TaskStatus.FAILED:
            self._send_failure_mail(no_mail)
        return self._status is TaskStatus.SUCCEEDED

    def close(self) -> None:
        """Close registered objects, dispose database engines, and the task database if owned."""
        if self._closed:
            return
        self._closed = True
        self._components.close_all(self.log)
        for database in self._databases.values():
            database.dispose()
        self._databases.clear()
        if self._owns_task_database and self._task_database is not None:
            self._task_database.dispose()
            self._task_database = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Stop requests (SIGTERM)

    def request_stop(self, signal_number: int) -> None:
        """Ask the task to stop at its next check. Called from the runner's signal handler."""
        self._stop_signal = signal_number

    @property
    def stop_requested(self) -> bool:
        return self._stop_signal is not None

    @property
    def stop_signal(self) -> int | None:
        """Number of the signal that requested the stop, or None."""
        return self._stop_signal

    @property
    def in_step(self) -> bool:
        """Whether ``init``, ``load`` or ``finish`` is running now."""
        return self._in_step.is_set()

    def raise_if_stop_requested(self) -> None:
        """Raise TaskStopRequested when a stop was requested. Long steps call it between batches."""
        if self._stop_signal is not None:
            raise TaskStopRequested(self._stop_signal)

    # Parents and children

    @property
    def parent_task(self) -> RelatedTask | None:
        """The parent task run as the task database records it now, or None for a task without parent."""
        if self._parent_object is not None:
            return RelatedTask.from_task(self._parent_object)
        return self._related_task(self.parent_task_id, "parent")

    @property
    def root_task(self) -> RelatedTask | None:
        """The first task of this task's parent chain, read now, or None for a task without parent."""
        if self._parent_object is not None:
            top = self._parent_object
            while top._parent_object is not None:
                top = top._parent_object
            return RelatedTask.from_task(top)
        return self._related_task(self.root_task_id, "root")

    @property
    def children(self) -> list[ChildTask]:
        """Handles of this task's children, with their statuses read from the task database now."""
        self._children.refresh(self._child_database(), self._task_id)
        return self._children.children

    def needs_to_ok_child_runs(self) -> bool:
        """Return whether each requested child waits for ``process_child_run_requested`` to approve it."""
        return False

    def process_child_run_requested(self, child: ChildTask) -> bool:
        """Return whether to run a child that awaits approval (True by default); see ``process_messages``."""
        return True

    def needs_to_get_child_statuses(self) -> bool:
        """Return whether ``process_messages`` passes child status changes to the handler. True by default."""
        return True

    def needs_to_get_ancestor_statuses(self) -> bool:
        """Return whether ``process_messages`` stops this task when its parent or root run was cancelled."""
        return False

    def process_child_status_update(self, child: ChildTask, status: str) -> None:
        """Handle one status change of a child. Does nothing by default.

        ``status`` is the status of this change. ``child.status`` may already be newer, since
        changes are delivered in order, each once. Raise WorkflowFinished to end
        ``process_messages``.
        """

    def add_child_task_to_scheduler(
        self,
        task: type[ETLTask] | str,
        parameters: Mapping[str, Any] | None = None,
        display_name: str | None = None,
    ) -> ChildTask:
        """Ask the operator to run a child task, and return the child's handle.

        ``task`` is a task class or its full ``module.Class`` name. It must be importable by that
        name here, as the child's pod imports it the same way. The request goes to the task
        database with ``parameters`` and ``display_name``, and the operator creates the child
        ETLTask ``<parent-name>-c<request id>``. When ``needs_to_ok_child_runs`` returns True, the
        child waits in AwaitingApproval until ``process_messages`` approves it. Raises
        TaskClassNotFoundError for a class that does not resolve, ParameterError for a parameter
        that is not JSON or contains the value of a secret parameter, and TaskDatabaseError for a
        task that has no task run.
        """
        task_class = self._child_task_class_name(task)
        self._check_child_parameters(parameters)
        database, task_id = self._require_task_run("requesting a child task")
        request_id = database.request_child(
            task_id,
            task_class,
            parameters=parameters,
            display_name=display_name,
            needs_approval=self.needs_to_ok_child_runs(),
        )
        child = self._children.add_request(database.get_child_request(request_id))
        self.log.info(
            "requested %s%s", child.describe(), "; it awaits approval" if child.needs_approval else ""
        )
        return child

    def add_child_task_by_partial_name_to_scheduler(
        self,
        partial_name: str,
        parameters: Mapping[str, Any] | None = None,
        display_name: str | None = None,
    ) -> ChildTask:
        """Ask the operator to run the child task class that a partial name selects.

        The name resolves against the base modules of ``[kube_etl] base_modules`` and
        ``$KUBE_ETL_BASE_MODULES``, as ``resolve_task_class`` does, and must match exactly one
        class. Otherwise the same as ``add_child_task_to_scheduler``.
        """
        # Imported here because _resolve imports this module.
        from etl_runtime._resolve import configured_base_modules, resolve_task_class

        task_class = resolve_task_class(partial_name, base_modules=configured_base_modules(self.config))
        return self.add_child_task_to_scheduler(task_class, parameters, display_name)

    def register_child(self, child: ETLTask) -> ChildTask:
        """Adopt a task object that runs in this process as a child, and return its handle.

        The child gets this task as its parent, so its ``parent_task`` and ``root_task`` lead
        here, and ``process_messages`` reports its status changes like those of requested children.
        """
        child._parent_object = self
        child.parent_task_id = self._task_id
        child.root_task_id = self.root_task_id if self.root_task_id is not None else self._task_id
        return self._children.add_local(child)

    def process_messages(self, block: bool = False, timeout: float | None = None) -> None:
        """Decide child approvals and deliver child status changes; with ``block``, wait for the children.

        Each pass raises TaskStopRequested when a stop was requested, reads the children from the
        task database, calls ``process_child_run_requested`` for each request that awaits
        approval and writes the decision, and passes each child status change not delivered before
        to ``process_child_status_update``, in order. With ``needs_to_get_ancestor_statuses``, a
        pass raises TaskStopRequested when the parent or root run was cancelled.

        Without ``block``, one pass runs. With ``block``, passes repeat every 0.2 s until every
        child is finished, and a TimeoutError names the unfinished children when ``timeout``
        seconds pass first. A handler that raises WorkflowFinished ends the call at once, and it
        returns normally.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                self._process_messages_once()
                if not block or self._children.all_finished():
                    return
                if deadline is not None and time.monotonic() >= deadline:
                    unfinished = ", ".join(
                        f"{child.describe()} is {child.status}" for child in self._children.unfinished()
                    )
                    raise TimeoutError(
                        f"task run {self._task_id}: children still unfinished after {timeout} s: {unfinished}"
                    )
                pause = CHILD_POLL_INTERVAL_SECONDS
                if deadline is not None:
                    pause = max(0.0, min(pause, deadline - time.monotonic()))
                time.sleep(pause)
        except WorkflowFinished as finished:
            self.log.info("workflow finished%s", f": {finished}" if str(finished) else "")

    # Parameters

    def set_parameter(
        self, name: str, value: Any, *, local_only: bool = False, commit: bool = True, secret: bool = False
    ) -> None:
        """Set a parameter. Names are case-insensitive.

        The value must be JSON unless ``local_only``, which keeps it out of the task database.
        ``commit=False`` defers the write to the next committing call, ``commit_parameters``,
        or the end of ``run``. A task without ``task_id`` keeps its parameters in memory only.
        ``secret=True`` writes the mask instead of the value and masks the value in ``repr``,
        the log, the error text and the failure mail; ``get_parameter`` in this process still
        returns it. A secret parameter stays secret when it is set again.
        """
        self._parameters.set(name, value, local_only=local_only, secret=secret)
        if commit and not local_only:
            self.commit_parameters()

    def set_parameters(
        self,
        values: ParameterInput | None = None,
        *,
        local_only: bool = False,
        commit: bool = True,
        **kwargs: Any,
    ) -> None:
        """Set several parameters from a dict, a list of (name, value) pairs, and keyword arguments."""
        for name, value in parameter_items(values, kwargs):
            self._parameters.set(name, value, local_only=local_only)
        if commit and not local_only:
            self.commit_parameters()

    def add_parameter(
        self, name: str, value: Any, *, local_only: bool = False, commit: bool = True, secret: bool = False
    ) -> None:
        """Set a parameter; the same as ``set_parameter``."""
        self.set_parameter(name, value, local_only=local_only, commit=commit, secret=secret)

    def add_parameters(
        self,
        values: ParameterInput | None = None,
        *,
        local_only: bool = False,
        commit: bool = True,
        **kwargs: Any,
    ) -> None:
        """Set several parameters; the same as ``set_parameters``."""
        self.set_parameters(values, local_only=local_only, commit=commit, **kwargs)

    def get_parameter(self, name: str, default: Any = MISSING) -> Any:
        """Return the parameter's value, or ``default`` when it is not set.

        Raises ParameterError naming the parameter when it is not set and no default is given.
        ``None`` is a valid default. A secret parameter returns its real value. When the task
        database lists a secret parameter whose value this process does not have, ParameterError
        names the environment variable that should hold it, whatever the default.
        """
        self._load_parameters_once()
        parameter = self._parameters.find(name)
        if parameter is not None:
            if parameter.value is UNAVAILABLE:
                raise ParameterError(self._unavailable_secret_message(parameter.name))
            return parameter.value
        if default is MISSING:
            where = f"task run {self._task_id}" if self._task_id is not None else self.name
            raise ParameterError(
                f"parameter {name!r} is not set for {where} and no default was given; set it in the "
                f"ETLTask's spec.parameters, or pass --param {name}=VALUE to etl-runtime run --local"
            )
        return default

    def parameter_names(self) -> list[str]:
        self._load_parameters_once()
        return self._parameters.names()

    def parameters(self) -> ParameterValues:
        """Return all parameters by name, as given.

        The result is a dict whose items contain the real values, but its ``repr`` and ``str``
        show the secret ones as the mask. A secret value that this process does not have is the mask.
        """
        self._load_parameters_once()
        return self._parameters.as_dict()

    def secret_parameter_names(self) -> list[str]:
        """Return the names of the secret parameters, as given."""
        self._load_parameters_once()
        return sorted(self._parameters.as_dict().secret_names)

    def load_parameters(self) -> None:
        """Read this run's parameters from the task database.

        Values set by the job but not written yet, and local-only values, are kept. A secret
        parameter's value comes from its environment variable, which the operator sets from
        ``spec.secretParameters``, since the task database holds only the mask.
        """
        database = self.task_database
        if database is None or self._task_id is None:
            self._parameters_loaded = True
            return
        records = database.parameter_records(self._task_id)
        secret = [record.name for record in records if record.secret]
        self._parameters.merge_loaded({record.name: record.value for record in records}, secret_names=secret)
        self._parameters_loaded = True
        names = sorted(record.name for record in records)
        secret.sort()
        self.log.info(
            "loaded %d parameter(s): %s%s",
            len(names),
            ", ".join(names) or "none",
            f"; secret: {', '.join(secret)}" if secret else "",
        )

    def commit_parameters(self) -> None:
        """Write the parameters set with ``commit=False`` to the task database.

        Secret parameters are written as the mask.
        """
        pending = self._parameters.pending()
        database = self.task_database
        if not pending or database is None or self._task_id is None:
            return
        database.set_parameters(self._task_id, pending, secret_names=self._parameters.pending_secret_names())
        self._parameters.mark_written(pending)

    def _unavailable_secret_message(self, name: str) -> str:
        where = f"task run {self._task_id}" if self._task_id is not None else self.name
        try:
            variable = secret_parameter_variable(name)
        except ValueError:
            return (
                f"parameter {name!r} of {where} is secret, and the task database keeps only its mask; "
                "its value exists only in the process that set it"
            )
        return (
            f"parameter {name!r} of {where} is secret, and the task database keeps only its mask; its "
            f"value comes from environment variable {variable}, which is not set. In a pod the operator "
            "sets it from spec.secretParameters; for etl-runtime run --local, set it and pass "
            f"--secret-param {name}"
        )

    def _check_child_parameters(self, parameters: Mapping[str, Any] | None) -> None:
        """Raise ParameterError for a child parameter that contains a secret value, which would be stored."""
        if not parameters or not redacting():
            return
        for name, value in parameters.items():
            text = repr(value)
            if redact(text) != text or redact(str(value)) != str(value):
                raise ParameterError(
                    f"child parameter {name!r} contains the value of a secret parameter, and a child's "
                    "parameters are stored in clear in its ETLTask and the task database; leave it out: "
                    "a child inherits its parent's spec.secretParameters and reads them with get_parameter"
                )

    # Config and databases

    @property
    def config(self) -> configparser.ConfigParser:
        """Parsed config.ini of the task, with ``${section:option}`` interpolation."""
        if self._config is None:
            source = self._config_source
            if isinstance(source, configparser.ConfigParser):
                self._config = source
            elif source is not None:
                self._config = load_config(source)
            else:
                self._config = load_config_from_env()
        return self._config

    def get_setting(self, name: str) -> str:
        """Return option ``name`` from the section named ``module.Class``, else ``Class``."""
        sections = (self.name, type(self).__name__)
        for section in sections:
            if self.config.has_option(section, name):
                try:
                    return self.config.get(section, name)
                except configparser.Error as exc:
                    raise ConfigError(f"config option [{section}] {name} is invalid: {exc}") from exc
        raise ConfigError(
            f"setting {name!r} not found: the config has no option {name!r} "
            f"in section [{sections[0]}] or [{sections[1]}]"
        )

    def get_setting_or_default(self, name: str, default: Any) -> Any:
        """Return option ``name`` as ``get_setting`` finds it, or ``default`` when it is missing."""
        if not any(self.config.has_option(section, name) for section in (self.name, type(self).__name__)):
            return default
        return self.get_setting(name)

    def get_database(self, name: str, user: str | None = None, schema: str | None = None) -> DatabaseMetadata:
        """Return metadata bound to an engine for the database in config section ``name``.

        Repeated calls with the same arguments return the same object. ``close`` disposes it.
        """
        key = (name, user, schema)
        database = self._databases.get(key)
        if database is None:
            database = create_database_metadata(self.config, name, user=user, schema=schema)
            self._databases[key] = database
            url = database.engine.url.render_as_string(hide_password=True)
            self.log.info("database %r is %s (schema %s)", name, url, database.schema or "default")
        return database

    def add_database(self, database: DatabaseMetadata) -> DatabaseMetadata:
        """Register metadata built elsewhere, which ``close`` then disposes.

        ``get_database(database.database_name)``, without user or schema, returns it from now on.
        """
        self._databases[(database.database_name, None, None)] = database
        return database

    def debug_sql(self, enabled: bool = True) -> None:
        """Log every SQL statement that SQLAlchemy sends (INFO level of ``sqlalchemy.engine``)."""
        logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO if enabled else logging.WARNING)

    def log_logging_level(self) -> None:
        """Log the effective level of this task's logger."""
        level = logging.getLevelName(self.log.logger.getEffectiveLevel())
        self.log.info("logger %s logs at level %s", self.log.logger.name, level)

    # Components and statistics

    def register_object(self, obj: ComponentT, name: str | None = None) -> ComponentT:
        """Register a component and return it.

        After the run, its ``statistics`` (a ``Statistics``; or the object itself, when it is one)
        are saved under its name. ``close`` calls its ``close()``, if it has one. The name
        defaults to the object's ``name`` attribute, or its class name in snake_case.
        """
        registered_name = self._components.register(obj, name)
        self.log.debug("registered component %r", registered_name)
        return obj

    def run_statistics(self) -> dict[str, StatisticValue]:
        """Return the task's and each component's statistics under dotted names."""
        flat = self.statistics.flatten(TASK_STATISTICS_PREFIX)
        flat.update(self._components.flat_statistics())
        return flat

    # Scheduling declarations: override these.

    def depends_on(self) -> Iterable[DependencyDeclaration]:
        """Return the task's dependencies: task class patterns, or ``Dependency`` values."""
        return ()

    def mutually_exclusive_execution(self) -> Iterable[str]:
        """Return task class patterns or ETLTask names that must never run at the same time."""
        return ()

    def allow_concurrent_runs(self) -> bool:
        """Return whether two runs of this task class may run at the same time."""
        return False

    def normalized_dependents_set(self) -> frozenset[Dependency]:
        return normalize_dependencies(self.depends_on())

    def mutually_exclusive_with_set(self) -> frozenset[str]:
        return normalize_patterns(self.mutually_exclusive_execution())

    def declarations(self) -> TaskDeclarations:
        return TaskDeclarations(
            task_class=self.name,
            depends_on=self.normalized_dependents_set(),
            mutually_exclusive_with=self.mutually_exclusive_with_set(),
            allow_concurrent_runs=self.allow_concurrent_runs(),
        )

    # Internals of the children API

    def _child_database(self) -> TaskDatabase | None:
        return self.task_database if self._task_id is not None else None

    def _require_task_run(self, action: str) -> tuple[TaskDatabase, int]:
        database = self.task_database
        if database is None or self._task_id is None:
            raise TaskDatabaseError(
                f"{action} needs a task run in the task database, but this {self.name} object has no "
                "task id; run the task with etl-runtime run"
            )
        return database, self._task_id

    def _related_task(self, task_id: int | None, relation: str) -> RelatedTask | None:
        if task_id is None:
            return None
        database = self.task_database
        if database is None:
            raise TaskDatabaseError(
                f"reading the {relation} task run {task_id} needs the task database; "
                "pass task_database or set KUBE_ETL_DATABASE_URL"
            )
        return RelatedTask.from_run(database.get_run(task_id), database.load_parameters(task_id))

    def _child_task_class_name(self, task: type[ETLTask] | str) -> str:
        """Return the ``module.Class`` name of a child task, checking that it imports by that name."""
        # Imported here because _resolve imports this module.
        from etl_runtime._resolve import import_task_class, is_full_name, task_class_name

        if isinstance(task, str):
            requested = task.strip()
            if not is_full_name(requested):
                raise TaskClassNotFoundError(
                    f"child task {requested!r} is invalid: expected a full module.Class name; "
                    "use add_child_task_by_partial_name_to_scheduler for a partial name"
                )
        elif isinstance(task, type) and issubclass(task, ETLTask):
            requested = task_class_name(task)
        else:
            raise TypeError(f"child task {task!r} is invalid: expected an ETLTask subclass or its name")

        problem = None
        if not is_full_name(requested) or requested.startswith("__main__."):
            problem = "it is not defined at the top level of an importable module"
        else:
            try:
                resolved = import_task_class(requested)
            except TaskClassNotFoundError as exc:
                problem = str(exc)
            else:
                if isinstance(task, type) and resolved is not task:
                    problem = f"that name imports another class, {resolved!r}"
        if problem is not None:
            raise TaskClassNotFoundError(
                f"child task class {requested!r} cannot be requested, because its pod could not import "
                f"it: {problem}"
            )
        return task_class_name(resolved)

    def _process_messages_once(self) -> None:
        self.raise_if_stop_requested()
        database = self._child_database()
        self._children.refresh(database, self._task_id)
        self._decide_child_approvals(database)
        if self.needs_to_get_child_statuses():
            self._deliver_child_statuses(database)
        if self.needs_to_get_ancestor_statuses():
            self._stop_if_ancestor_cancelled()

    def _decide_child_approvals(self, database: TaskDatabase | None) -> None:
        for child in self._children.children:
            if not child.awaits_approval or database is None or child.request_id is None:
                continue
            approved = bool(self.process_child_run_requested(child))
            database.set_child_approval(child.request_id, approved)
            self._children.set_approval(child, APPROVED if approved else REJECTED)
            self.log.info("%s %s", "approved" if approved else "rejected", child.describe())

    def _deliver_child_statuses(self, database: TaskDatabase | None) -> None:
        for update in self._children.pending_updates(database):
            self._children.mark_delivered(update)
            self.log.debug("%s is %s", update.child.describe(), update.status)
            self.process_child_status_update(update.child, update.status)

    def _stop_if_ancestor_cancelled(self) -> None:
        for relation, ancestor in (("parent", self.parent_task), ("root", self.root_task)):
            if ancestor is not None and ancestor.status == CANCELLED:
                raise TaskStopRequested(
                    reason=f"the {relation} task run {ancestor.task_id} ({ancestor.name}) was cancelled"
                )

    # Internals of run()

    def _load_parameters_once(self) -> None:
        if not self._parameters_loaded:
            retry_database_errors(self.load_parameters, "loading the parameters", self.log)

    def _run_step(self, step_name: str, step: Callable[[], None]) -> None:
        self.raise_if_stop_requested()
        self.log.info("step %s started", step_name)
        self._in_step.set()
        try:
            with self.statistics.timer(step_name) as stopwatch:
                step()
        finally:
            self._in_step.clear()
        self.log.info("step %s finished in %.3f s", step_name, stopwatch.seconds)

    def _send_failure_mail(self, no_mail: bool | None) -> None:
        """Send the failure mail as configured. Every problem is logged, not raised."""
        if no_mail is None:
            no_mail = no_mail_from_env()
        if no_mail:
            self.log.info("no failure mail sent: turned off by no_mail or $KUBE_ETL_NO_MAIL")
            return
        try:
            settings = MailSettings.from_config(self.config)
        except ConfigError as exc:
            self.log.error("no failure mail sent: %s", exc)
            return
        try:
            send_failure_mail(settings, self._failed_run(), self.log)
        except Exception:
            # send_failure_mail handles SMTP and network errors. This catches the rest, such as an
            # address that the email package rejects, so that the mail never changes the outcome.
            self.log.exception("sending the failure mail failed")

    def _failed_run(self) -> FailedRun:
        """Describe this failed run for the mail, from its task_run row or else the pod's environment."""
        record: RunRecord | None = None
        if self._task_id is not None:
            try:
                record = self.task_rec
            except (SQLAlchemyError, TaskDatabaseError) as exc:
                self.log.warning(
                    "the failure mail names no ETLTask: reading task run %s failed: %s", self._task_id, exc
                )
        if record is not None:
            namespace, name, attempt = record.namespace, record.name, record.attempt
        else:
            attempt_text = os.environ.get("KUBE_ETL_ATTEMPT", "")
            namespace = os.environ.get("KUBE_ETL_NAMESPACE") or ""
            name = os.environ.get("KUBE_ETL_TASK_NAME") or ""
            attempt = int(attempt_text) if attempt_text.isdigit() else 0
        return FailedRun(
            task_class=self.name,
            display_name=self.display_name,
            task_id=self._task_id,
            namespace=namespace or None,
            name=name or None,
            attempt=attempt or None,
            error=self._error or "(no error text)",
        )

    def _write_with_retries(self, description: str, write: Callable[[], None]) -> None:
        """Run one results write, retrying connection errors; log a write that still fails, never raise."""
        task_id = self._task_id
        try:
            retry_database_errors(write, f"writing the {description} of task run {task_id}", self.log)
        except Exception:
            self.log.exception(
                "writing the %s of task run %s to the task database failed", description, task_id
            )
        else:
            self.log.info("saved the %s of task run %s to the task database", description, task_id)

    def _save_results(self) -> None:
        """Write statistics, unwritten parameters and the error text. Failures are logged, not raised."""
        task_id = self._task_id
        if task_id is None:
            return
        try:
            database = self.task_database
        except TaskDatabaseError as exc:
            self.log.error("the results of task run %d are not saved: %s", task_id, exc)
            return
        if database is None:
            return

        statistics = self.run_statistics()
        writes: list[tuple[str, Callable[[], None]]] = [
            (f"{len(statistics)} statistic(s)", lambda: database.write_statistics(task_id, statistics)),
        ]
        if self._parameters.pending():
            writes.append(("parameters", self.commit_parameters))
        error = self._error
        if error is not None:
            writes.append(("error text", lambda: database.record_error(task_id, error)))
        for description, write in writes:
            self._write_with_retries(description, write)
