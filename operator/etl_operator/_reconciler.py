"""The reconciler: it moves each ETLTask through its phases, one patch per transition.

The kopf handlers feed watch events into the TaskStore and call `enqueue`. A pool of workers takes keys
from one queue, never the same key twice at a time, and runs `reconcile`. A phase change wakes exactly
the tasks it can affect: the dependents of the task (from the store's indexes) and, when claims are
released, one admission pass over the tasks that wait for their claims. A slow safety timer re-checks
only tasks that still wait. Terminal tasks cost nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from etl_runtime.taskdb import APPROVED, REJECTED, ChildRequestNotFoundError, TaskDatabase, TaskDatabaseError

from ._children import ANNOTATION_CHILD_REQUEST
from ._kube import ApiError, ApiUnavailable, Conflict, KubeClient, NotFound
from ._pods import LABEL_TASK, build_pod, pod_name, secret_parameter_hint
from ._rules import AdmissionResult, admit, claims_of, evaluate_dependencies, find_cycle
from ._settings import OperatorSettings
from ._spec import API_GROUP, API_VERSION, KIND, TaskView
from ._status import (
    Condition,
    Transition,
    condition_is,
    condition_patch,
    format_time,
    statistics_summary,
    status_patch,
    utc_now,
)
from ._store import Change, Key, TaskStore
from .phases import (
    ACTIVE_PHASES,
    QUEUED_PHASES,
    UNSUCCESSFUL_PHASES,
    ConditionType,
    Phase,
    Reason,
    is_terminal,
)

logger = logging.getLogger("etl_operator")

T = TypeVar("T")

# The C library the interpreter runs on (None where it cannot be loaded).
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None)
except OSError:
    _LIBC = None

PURGE_INTERVAL_SECONDS = 3600
# Container waiting reasons that need a person: the pod does not start until the cause is fixed.
STUCK_CONTAINER_REASONS = frozenset(
    {
        "CreateContainerConfigError",
        "CreateContainerError",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
    }
)
# The runtime's exit code when a task cannot start at all; such attempts are not retried.
SETUP_FAILED_EXIT_CODE = 2
# Seconds between checks whether an earlier ETLTask's pod of the same name is gone.
FOREIGN_POD_RECHECK_SECONDS = 1.0
# Seconds past a pod's deletion grace period before its attempt counts as lost.
POD_DELETION_MARGIN_SECONDS = 15
NAMESPACE_LIMIT_ANNOTATION = f"{API_GROUP}/max-concurrent-tasks"
# Seconds before a reconcile that failed on the API or the database runs again, doubling up to the max.
RETRY_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


# Seconds after the start before the memory of the start-up lists is handed back to the system.
MEMORY_SETTLE_SECONDS = 10.0


def _return_free_memory() -> None:
    """Hand the free pages of the C heap back to the system, where the C library is glibc.

    Parsing thousands of ETLTasks at start leaves much of the heap free but still mapped, and glibc
    keeps such pages until it is asked to trim them. Elsewhere this does nothing.
    """
    trim = getattr(_LIBC, "malloc_trim", None)
    if trim is not None:
        trim(0)


class ForeignPodError(Exception):
    """A pod with the attempt's name belongs to an earlier ETLTask of the same name."""


def _describe(view: TaskView) -> str:
    return f"ETLTask {view.namespace}/{view.name}"


class Reconciler:
    """Drives ETLTasks from Pending to a terminal phase."""

    def __init__(
        self,
        settings: OperatorSettings,
        store: TaskStore,
        kube: KubeClient,
        database: TaskDatabase,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._store = store
        self._kube = kube
        self._database = database
        self._clock = clock
        self._database_executor = ThreadPoolExecutor(
            max_workers=settings.workers, thread_name_prefix="taskdb"
        )

        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._busy: set[Key] = set()
        self._dirty: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._timers: dict[Key, asyncio.TimerHandle] = {}
        self._workers: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[Any]] = set()

        # Tasks whose dependencies are met and that wait for their claims, and tasks admitted in memory
        # whose Starting patch is not written yet. Both take part in every admission pass.
        self._ready: set[Key] = set()
        self._reserved: dict[Key, TaskView] = {}
        self._last_admission = AdmissionResult()
        self._admission_requested = False
        # (ETLTask uid, pod name) of the pods this process created, so a create is not repeated before
        # its watch event arrives. A task deleted and created again under its name has a new uid.
        self._pods_created: set[tuple[str, str]] = set()
        # Tasks whose Blocked status the safety pass may refresh.
        self._refresh: set[Key] = set()
        self._namespace_limits: dict[str, int] = {}
        # Node name -> when its Ready condition stopped being True, for nodes that are not Ready.
        self._nodes_down_since: dict[str, datetime] = {}
        # Children whose parent approved their run; the approval never changes once given.
        self._approved: set[Key] = set()

    # Feeding the reconciler

    def prime(self, tasks: Iterable[Mapping[str, Any]], pods: Iterable[Mapping[str, Any]]) -> None:
        """Load the objects listed at start, so that held claims are known before anything is admitted."""
        for pod in pods:
            self._store.upsert_pod(pod)
        for body in tasks:
            self._store.upsert(body)
        for key in self._store.task_keys():
            self.enqueue(key)

    def task_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        if event_type == "DELETED":
            stored = self._store.body(key)
            if stored is not None and (stored.get("metadata") or {}).get("uid") != metadata.get("uid"):
                return
            self._on_deleted(self._store.remove(key))
            return
        change = self._store.upsert(body)
        if change is not None:
            self._after_change(change)
        # Also an event that only repeats what a patch response stored wakes the task: the reconcile
        # that sent the patch ended before the new phase's own step, such as its TTL timer, was taken.
        self.enqueue(key)

    def pod_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        metadata = body.get("metadata") or {}
        namespace, name = metadata.get("namespace", ""), metadata.get("name", "")
        if event_type == "DELETED":
            self._store.remove_pod(namespace, name)
        elif not self._store.upsert_pod(body):
            return
        for owner in metadata.get("ownerReferences") or ():
            if owner.get("kind") == KIND and owner.get("apiVersion", "").startswith(f"{API_GROUP}/"):
                self.enqueue((namespace, owner["name"]))

    def namespace_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Track the per-namespace concurrency limit from the namespace's annotation."""
        metadata = body.get("metadata") or {}
        name = metadata.get("name", "")
        raw = (metadata.get("annotations") or {}).get(NAMESPACE_LIMIT_ANNOTATION)
        previous = self._namespace_limits.get(name)
        if event_type == "DELETED" or raw is None:
            self._namespace_limits.pop(name, None)
        else:
            try:
                self._namespace_limits[name] = max(0, int(raw))
            except ValueError:
                logger.warning(
                    "namespace %s: annotation %s=%r is not an integer; using the operator's limit",
                    name,
                    NAMESPACE_LIMIT_ANNOTATION,
                    raw,
                )
                self._namespace_limits.pop(name, None)
        if self._namespace_limits.get(name) != previous:
            self._request_admission()

    def node_event(self, event_type: str | None, body: Mapping[str, Any]) -> None:
        """Track which nodes are not Ready, and wake the running tasks whose pods are on them."""
        name = (body.get("metadata") or {}).get("name", "")
        ready = next(
            (
                item
                for item in (body.get("status") or {}).get("conditions") or ()
                if item.get("type") == "Ready"
            ),
            None,
        )
        was_down = name in self._nodes_down_since
        if event_type == "DELETED" or ready is None or ready.get("status") != "True":
            if not was_down:
                since = (ready or {}).get("lastTransitionTime")
                self._nodes_down_since[name] = (
                    datetime.fromisoformat(since.replace("Z", "+00:00")) if since else self._clock()
                )
                logger.warning(
                    "node %s is not Ready; its job pods count as lost after %d s",
                    name,
                    self._settings.node_lost_seconds,
                )
        else:
            self._nodes_down_since.pop(name, None)
        if was_down != (name in self._nodes_down_since):
            for view in self._store.active():
                pod = self._store.pod(view.namespace, view.pod_name or "")
                if pod is not None and (pod.get("spec") or {}).get("nodeName") == name:
                    self.enqueue(view.key)

    def enqueue(self, key: Key) -> None:
        if key in self._busy:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    # Workers and timers

    def start(self) -> None:
        for index in range(self._settings.workers):
            self._workers.append(asyncio.create_task(self._work(), name=f"reconcile-worker-{index}"))
        self._workers.append(asyncio.create_task(self._safety_timer(), name="safety-timer"))
        if self._settings.retention_days:
            self._workers.append(asyncio.create_task(self._purge_history(), name="history-purge"))

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        for handle in self._timers.values():
            handle.cancel()
        self._database_executor.shutdown(wait=False, cancel_futures=True)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._busy.add(key)
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except (SQLAlchemyError, TaskDatabaseError) as error:
                self._retry_later(key, error)
                self._spawn(self._report_database_down(key, error))
            except Exception as error:
                self._retry_later(key, error)
            finally:
                self._busy.discard(key)
                if key in self._dirty:
                    self._dirty.discard(key)
                    self.enqueue(key)

    def _retry_later(self, key: Key, error: Exception) -> None:
        count = self._failures.get(key, 0)
        self._failures[key] = count + 1
        delay = RETRY_DELAYS[min(count, len(RETRY_DELAYS) - 1)]
        level = logging.WARNING if count < 3 else logging.ERROR
        logger.log(
            level,
            "ETLTask %s/%s: reconcile failed; retrying in %.1f s: %s",
            key[0],
            key[1],
            delay,
            error,
            exc_info=not isinstance(error, ApiError | ConnectionError | OSError),
        )
        self._call_later(key, delay)

    async def _report_database_down(self, key: Key, error: Exception) -> None:
        """Set TaskDatabaseReady to False on the task, once, so `kubectl describe` shows why it is stuck."""
        body = self._store.body(key)
        if body is None or condition_is(body, ConditionType.TASK_DATABASE_READY, False):
            return
        if is_terminal((body.get("status") or {}).get("phase")):
            return
        cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        message = f"the task database is unreachable; the operator keeps retrying: {cause}"
        patch = condition_patch(
            body,
            Condition(ConditionType.TASK_DATABASE_READY, False, Reason.DATABASE_UNAVAILABLE, message),
            now=self._clock(),
        )
        try:
            self._apply(await self._kube.patch_task_status(key[0], key[1], patch))
        except (ApiError, ApiUnavailable) as patch_error:
            logger.debug("ETLTask %s/%s: setting TaskDatabaseReady failed: %s", key[0], key[1], patch_error)

    def _call_later(self, key: Key, delay: float) -> None:
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        loop = asyncio.get_running_loop()
        self._timers[key] = loop.call_later(max(delay, 0.0), self._fire_timer, key)

    def _fire_timer(self, key: Key) -> None:
        self._timers.pop(key, None)
        self.enqueue(key)

    async def _safety_timer(self) -> None:
        # By now the start-up lists and the watches' first events are parsed and stored.
        await asyncio.sleep(MEMORY_SETTLE_SECONDS)
        _return_free_memory()
        while True:
            await asyncio.sleep(self._settings.safety_interval_seconds)
            for view in self._store.unfinished():
                if view.phase is None or view.phase in QUEUED_PHASES:
                    self._refresh.add(view.key)
                    self.enqueue(view.key)
            _return_free_memory()

    async def _purge_history(self) -> None:
        """Delete task trees that finished more than retention_days ago, once an hour."""
        while True:
            cutoff = self._clock() - timedelta(days=self._settings.retention_days)
            try:
                await self._in_database(self._database.purge_runs, cutoff)
            except (SQLAlchemyError, TaskDatabaseError) as error:
                logger.warning(
                    "purging task runs older than %d days failed; retrying in an hour: %s",
                    self._settings.retention_days,
                    error,
                )
            await asyncio.sleep(PURGE_INTERVAL_SECONDS)

    async def _in_database(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._database_executor, partial(function, *args, **kwargs))

    def _spawn(self, coroutine: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # Waking the tasks a change affects

    def _after_change(self, change: Change) -> None:
        view = change.current or change.previous
        if view is None:
            return
        if change.phase_changed:
            for key in self._store.dependents_of(view):
                self.enqueue(key)
            if view.spec.parent:
                self.enqueue((view.namespace, view.spec.parent))
        if change.released_claims:
            self._request_admission()

    def _on_deleted(self, change: Change) -> None:
        view = change.previous
        if view is None:
            return
        self._ready.discard(view.key)
        self._reserved.pop(view.key, None)
        self._pods_created = {item for item in self._pods_created if item[0] != view.uid}
        handle = self._timers.pop(view.key, None)
        if handle is not None:
            handle.cancel()
        if view.task_id is not None and not is_terminal(view.phase):
            logger.info("%s was deleted while %s; recording it as Cancelled", _describe(view), view.phase)
            self._spawn(self._record_deleted(view))
        for key in self._store.dependents_of(view):
            self.enqueue(key)
        if view.phase in ACTIVE_PHASES:
            self._request_admission()

    async def _record_deleted(self, view: TaskView) -> None:
        assert view.task_id is not None
        for delay in RETRY_DELAYS:
            try:
                await self._in_database(
                    self._database.record_status,
                    view.task_id,
                    Phase.CANCELLED,
                    message="the ETLTask was deleted",
                )
                return
            except Exception as error:
                logger.warning(
                    "%s: recording the deletion failed; retrying in %.1f s: %s", _describe(view), delay, error
                )
                await asyncio.sleep(delay)

    def _limit_for(self, namespace: str) -> int:
        return self._namespace_limits.get(namespace, self._settings.max_concurrent_tasks)

    def _request_admission(self) -> None:
        """Run one admission pass soon; requests made before it runs share that pass.

        A thousand tasks created at once, or a burst of finished ones, then cost one pass over the
        waiting tasks instead of one pass per reconcile.
        """
        if not self._admission_requested:
            self._admission_requested = True
            asyncio.get_running_loop().call_soon(self._admission_pass)

    def _admission_pass(self) -> None:
        """Admit every ready task whose claims are free, in queue order, and wake the tasks it decided.

        The pass reads and writes only memory and never awaits, so two passes never interleave: this
        is what makes claims all-or-nothing within one operator process. It wakes the admitted tasks,
        and the blocked ones whose status does not say Blocked yet or is due for a refresh.
        """
        self._admission_requested = False
        candidates: list[TaskView] = []
        for key in list(self._ready):
            view = self._store.view(key)
            if (
                view is None
                or view.spec.cancel
                or view.deleting
                or not (view.phase is None or view.phase in QUEUED_PHASES)
            ):
                self._ready.discard(key)
                continue
            candidates.append(view)
        holders = {view.key: view for view in self._store.active()}
        holders.update(self._reserved)
        result = admit(candidates, holders.values(), self._limit_for)
        for view in result.admitted:
            self._ready.discard(view.key)
            self._reserved[view.key] = view
            self.enqueue(view.key)
        for view in candidates:
            if view.key in self._reserved:
                continue
            if view.phase != Phase.BLOCKED or view.task_id is None or view.key in self._refresh:
                self.enqueue(view.key)
        self._last_admission = result

    # The reconcile entry point

    async def reconcile(self, key: Key) -> None:
        """Take the next step for one ETLTask, as its phase and the world around it decide."""
        body = self._store.body(key)
        if body is None:
            return
        view = self._store.view(key)

        # A spec the schema let through but the operator cannot run fails once, with the reason.
        if view is None:
            await self._fail_invalid(key, body)
            return

        # Finished tasks cost nothing, except the one deletion that ttlSecondsAfterFinished requests.
        if is_terminal(view.phase):
            self._reserved.pop(key, None)
            self._ready.discard(key)
            await self._report_ignored_edit(view, body)
            await self._delete_when_expired(view, body)
            return
        if view.deleting:
            return

        # A cancel wins over every other step.
        if view.spec.cancel:
            await self._cancel(view)
            return

        if view.phase is None or view.phase in QUEUED_PHASES:
            await self._schedule(view)
        elif view.phase == Phase.RETRYING:
            await self._retry_when_due(view)
        elif view.phase in ACTIVE_PHASES:
            await self._follow_pod(view)
        elif view.phase == Phase.WAITING_FOR_CHILDREN:
            await self._finish_after_children(view)

    # Queued tasks: dependencies, then claims

    async def _schedule(self, view: TaskView) -> None:
        # A child whose parent approves child runs waits for that decision before anything else.
        if (
            view.spec.requires_approval
            and view.key not in self._approved
            and not await self._approval_given(view)
        ):
            return

        # A dependency cycle can never resolve, so every task on it fails with the cycle in its message.
        cycle = find_cycle(view, self._store.lookup)
        if cycle is not None:
            self._ready.discard(view.key)
            path = " -> ".join(cycle)
            for name in set(cycle):
                if name != view.name:
                    self.enqueue((view.namespace, name))
            await self._finish(
                view,
                Phase.FAILED,
                Reason.DEPENDENCY_CYCLE,
                f"dependency cycle: {path}; remove one of these dependsOn entries and create the tasks again",
                condition=Condition(ConditionType.DEPENDENCIES_MET, False, Reason.DEPENDENCY_CYCLE, path),
            )
            return

        dependencies = evaluate_dependencies(
            view, self._store.lookup, self._store.unfinished_in(view.namespace)
        )
        if dependencies.failed:
            self._ready.discard(view.key)
            names = ", ".join(dependencies.failed)
            await self._finish(
                view,
                Phase.UPSTREAM_FAILED,
                Reason.DEPENDENCY_FAILED,
                f"dependency {names} did not succeed, so this task will not run",
                condition=Condition(ConditionType.DEPENDENCIES_MET, False, Reason.DEPENDENCY_FAILED, names),
            )
            return
        if not dependencies.met:
            self._ready.discard(view.key)
            await self._set_waiting(view, dependencies.waiting_for, dependencies.missing)
            return

        # One in-memory pass over every ready task decides admission, so queue order is kept. The
        # pass enqueues this task again once it has decided.
        self._ready.add(view.key)
        if view.key in self._reserved:
            await self._start(view)
        elif view.key in self._last_admission.blocked_by or view.key in self._last_admission.over_limit:
            await self._set_blocked(view)
        else:
            self._request_admission()

    async def _approval_given(self, view: TaskView) -> bool:
        """Return True once the parent approved the run; otherwise park the task or end it Cancelled."""
        body = self._store.body(view.key) or {}
        raw_id = ((body.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION_CHILD_REQUEST)
        approval: str | None = None
        if raw_id is not None and raw_id.isdigit():
            try:
                request = await self._in_database(self._database.get_child_request, int(raw_id))
                approval = request.approval
            except ChildRequestNotFoundError:
                approval = None
        if approval == APPROVED:
            self._approved.add(view.key)
            return True
        if approval == REJECTED:
            await self._finish(
                view,
                Phase.CANCELLED,
                Reason.REJECTED,
                "the parent rejected this child run",
                condition=Condition(ConditionType.APPROVED, False, Reason.REJECTED),
            )
            return False
        if view.phase == Phase.AWAITING_APPROVAL and view.task_id is not None:
            return False
        task_id = await self._ensure_run(view, max(view.attempt, 1))
        message = (
            f"waiting for parent {view.spec.parent} to approve the run"
            if raw_id is not None
            else f"spec.requiresApproval is true but annotation {ANNOTATION_CHILD_REQUEST} names no request; "
            "only children that a parent task requested can be approved"
        )
        await self._transition(
            view,
            Transition(
                phase=Phase.AWAITING_APPROVAL,
                message=message,
                reason=Reason.APPROVAL_PENDING,
                conditions=(Condition(ConditionType.APPROVED, False, Reason.APPROVAL_PENDING, message),),
                fields={"taskId": task_id, "attempt": max(view.attempt, 1)},
            ),
            task_id=task_id,
        )
        return False

    async def _ensure_run(self, view: TaskView, attempt: int, *, status: str = Phase.PENDING) -> int:
        """Create (or find) the task database row of an attempt and return its id."""
        if view.task_id is not None and view.attempt == attempt:
            return view.task_id
        parent_id, root_id = self._lineage(view)
        return await self._in_database(
            self._database.create_run,
            namespace=view.namespace,
            name=view.name,
            uid=view.uid,
            attempt=attempt,
            task_class=view.spec.task,
            display_name=view.spec.display_name,
            parameters=view.spec.parameters,
            secret_parameters=[parameter.name for parameter in view.spec.secret_parameters],
            pod_name=pod_name(view.name, attempt),
            parent_task_id=parent_id,
            root_task_id=root_id,
            status=status,
        )

    def _lineage(self, view: TaskView) -> tuple[int | None, int | None]:
        """Return (parent task id, root task id) from the parent ETLTask's status, when there is one."""
        if not view.spec.parent:
            return None, None
        parent_body = self._store.body((view.namespace, view.spec.parent))
        if parent_body is None:
            return None, None
        status = parent_body.get("status") or {}
        parent_id = status.get("taskId")
        root_id = status.get("rootTaskId") or parent_id
        return parent_id, root_id

    async def _set_waiting(
        self, view: TaskView, waiting_for: tuple[str, ...], missing: tuple[str, ...]
    ) -> None:
        body = self._store.body(view.key) or {}
        status = body.get("status") or {}
        if (
            view.phase == Phase.WAITING
            and tuple(status.get("waitingFor") or ()) == waiting_for
            and view.task_id
        ):
            return
        task_id = await self._ensure_run(view, max(view.attempt, 1))
        reason = Reason.DEPENDENCY_NOT_FOUND if missing else Reason.DEPENDENCY_PENDING
        if missing:
            message = f"waiting for {', '.join(waiting_for)}; not found yet: {', '.join(missing)}"
        else:
            message = f"waiting for {', '.join(waiting_for)}"
        await self._transition(
            view,
            Transition(
                phase=Phase.WAITING,
                message=message,
                reason=reason,
                conditions=(Condition(ConditionType.DEPENDENCIES_MET, False, reason, message),),
                fields={
                    "taskId": task_id,
                    "attempt": max(view.attempt, 1),
                    "waitingFor": list(waiting_for),
                    "blockedBy": [],
                },
            ),
            task_id=task_id,
            record=view.phase != Phase.WAITING,
        )

    async def _set_blocked(self, view: TaskView) -> None:
        result = self._last_admission
        blockers = result.blocked_by.get(view.key, ())
        over_limit = view.key in result.over_limit
        if not blockers and not over_limit:
            # Admission has not looked at this task in its latest pass; the next pass will.
            self._request_admission()
            return
        refresh = view.key in self._refresh
        self._refresh.discard(view.key)
        body = self._store.body(view.key) or {}
        current_blockers = tuple((body.get("status") or {}).get("blockedBy") or ())
        if view.phase == Phase.BLOCKED and view.task_id and (not refresh or current_blockers == blockers):
            # NOTE: blockedBy is written when a task becomes Blocked and refreshed by the safety timer,
            # not on every hand-off, so that N waiters on one mutex cost N writes rather than N squared.
            return
        task_id = await self._ensure_run(view, max(view.attempt, 1))
        if over_limit and not blockers:
            reason = Reason.CONCURRENCY_LIMIT
            limit = self._limit_for(view.namespace)
            message = (
                f"waiting for a slot: namespace {view.namespace} already runs its limit of {limit} tasks"
            )
        else:
            reason = Reason.MUTUAL_EXCLUSION
            holds = "holds" if len(blockers) == 1 else "hold"
            message = f"blocked by {', '.join(blockers)}, which {holds} a conflicting claim"
        await self._transition(
            view,
            Transition(
                phase=Phase.BLOCKED,
                message=message,
                reason=reason,
                conditions=(
                    Condition(ConditionType.DEPENDENCIES_MET, True, Reason.DEPENDENCIES_SUCCEEDED),
                    Condition(ConditionType.ADMITTED, False, reason, message),
                ),
                fields={
                    "taskId": task_id,
                    "attempt": max(view.attempt, 1),
                    "waitingFor": [],
                    "blockedBy": list(blockers),
                },
            ),
            task_id=task_id,
            record=view.phase != Phase.BLOCKED,
        )

    async def _start(self, view: TaskView) -> None:
        """Write the claims to status (Starting), then create the attempt's pod."""
        attempt = max(view.attempt, 1)
        try:
            task_id = await self._ensure_run(view, attempt)
        except BaseException:
            self._release_reservation(view.key)
            raise
        body = self._store.body(view.key) or {}
        status = body.get("status") or {}
        name = pod_name(view.name, attempt)
        parent_id, root_id = self._lineage(view)
        transition = Transition(
            phase=Phase.STARTING,
            message=f"claims taken; creating pod {name} for attempt {attempt}",
            reason=Reason.CLAIMS_HELD,
            conditions=(
                Condition(ConditionType.DEPENDENCIES_MET, True, Reason.DEPENDENCIES_SUCCEEDED),
                Condition(ConditionType.ADMITTED, True, Reason.CLAIMS_HELD),
            ),
            fields={
                "taskId": task_id,
                "parentTaskId": parent_id,
                "rootTaskId": root_id if root_id is not None else task_id,
                "attempt": attempt,
                "podName": name,
                "claims": list(claims_of(view)),
                "waitingFor": [],
                "blockedBy": [],
                "startTime": status.get("startTime") or format_time(self._clock()),
            },
        )
        try:
            # The resourceVersion precondition makes the claim fail if the task changed since the
            # admission decision, for example when it was cancelled in the meantime.
            updated = await self._transition(view, transition, task_id=task_id, precondition=True)
        except (Conflict, NotFound):
            self._release_reservation(view.key)
            self.enqueue(view.key)
            return
        except BaseException:
            self._release_reservation(view.key)
            raise
        self._reserved.pop(view.key, None)
        await self._create_pod(updated, task_id)

    def _release_reservation(self, key: Key) -> None:
        if self._reserved.pop(key, None) is not None:
            self._request_admission()

    # Active tasks: the pod of the current attempt

    def _own_pod(self, view: TaskView, name: str) -> dict[str, Any] | None:
        """Return the pod `name` if this ETLTask (by uid) owns it; call back later if another one does.

        A task deleted and created again under the same name finds the old task's pod with its own
        pod name until the garbage collector removes it.
        """
        pod = self._store.pod(view.namespace, name)
        if pod is None:
            return None
        owners = {owner.get("uid") for owner in (pod.get("metadata") or {}).get("ownerReferences") or ()}
        if view.uid in owners:
            return pod
        logger.info(
            "%s: pod %s belongs to an earlier ETLTask of this name; waiting until it is gone",
            _describe(view),
            name,
        )
        self._call_later(view.key, FOREIGN_POD_RECHECK_SECONDS)
        raise ForeignPodError(name)

    async def _create_pod(self, view: TaskView, task_id: int) -> None:
        name = pod_name(view.name, view.attempt)
        created_key = (view.uid, name)
        try:
            if self._own_pod(view, name) is not None or created_key in self._pods_created:
                return
        except ForeignPodError:
            return
        parent_id, root_id = self._lineage(view)
        manifest = build_pod(
            view, task_id=task_id, settings=self._settings, parent_task_id=parent_id, root_task_id=root_id
        )
        try:
            created = await self._kube.create_pod(manifest)
            self._store.upsert_pod(created)
            logger.info("%s: created pod %s for attempt %d", _describe(view), name, view.attempt)
        except Conflict:
            # The pod exists but its watch event has not arrived; the event decides whether it is ours.
            logger.info("%s: pod %s already exists; checking its owner again shortly", _describe(view), name)
            self._call_later(view.key, FOREIGN_POD_RECHECK_SECONDS)
            return
        except NotFound:
            raise
        except ApiError as error:
            if 400 <= error.status < 500 and error.status not in (403, 429):
                await self._attempt_failed(
                    view,
                    exit_code=None,
                    reason=Reason.POD_FAILED,
                    detail=f"the pod was rejected: {error.message}",
                )
                return
            raise
        self._pods_created.add(created_key)

    async def _follow_pod(self, view: TaskView) -> None:
        name = view.pod_name or pod_name(view.name, view.attempt)
        try:
            pod = self._own_pod(view, name)
        except ForeignPodError:
            return
        if pod is None:
            if view.phase == Phase.STARTING and (view.uid, name) not in self._pods_created:
                assert view.task_id is not None
                await self._create_pod(view, view.task_id)
            elif view.phase == Phase.RUNNING or (view.uid, name) in self._pods_created:
                await self._attempt_failed(
                    view,
                    exit_code=None,
                    reason=Reason.POD_LOST,
                    detail=f"pod {name} disappeared before it finished",
                )
            return

        pod_status = pod.get("status") or {}
        pod_phase = pod_status.get("phase")
        pod_metadata = pod.get("metadata") or {}
        node_name = str((pod.get("spec") or {}).get("nodeName"))
        node_down_since = self._nodes_down_since.get(node_name) or _marked_not_ready_since(pod_status)
        if node_down_since is not None and pod_phase not in ("Succeeded", "Failed"):
            await self._fail_when_node_stays_down(view, node_name, node_down_since)
            return
        if pod_metadata.get("deletionTimestamp") and pod_phase not in ("Succeeded", "Failed"):
            await self._fail_when_deletion_stalls(view, pod_metadata)
            return
        if pod_phase == "Pending" and view.phase == Phase.STARTING:
            await self._report_stuck_pod(view, pod)
        elif pod_phase == "Running" and view.phase == Phase.STARTING:
            await self._set_running(view)
        elif pod_phase == "Succeeded":
            await self._succeeded(view)
        elif pod_phase == "Failed":
            exit_code, detail = _termination(pod_status)
            reason = (
                Reason.DEADLINE_EXCEEDED
                if pod_status.get("reason") == "DeadlineExceeded"
                else Reason.POD_FAILED
            )
            await self._attempt_failed(view, exit_code=exit_code, reason=reason, detail=detail)

    async def _fail_when_node_stays_down(self, view: TaskView, node_name: str, since: datetime) -> None:
        """Fail the attempt whose pod runs on a node that has not been Ready for node_lost_seconds.

        Caveat: Kubernetes stops evicting pods when every node of a zone is down (a single-node
        cluster, for one), so the operator does not wait for an eviction that may never come.
        """
        give_up_at = since + timedelta(seconds=self._settings.node_lost_seconds)
        await self._fail_as_lost_at(
            view,
            give_up_at,
            f"node {node_name} of pod {view.pod_name} has not been Ready for "
            f"{self._settings.node_lost_seconds} s; the node may be lost",
        )

    async def _fail_when_deletion_stalls(self, view: TaskView, pod_metadata: Mapping[str, Any]) -> None:
        """Fail the attempt of a pod that is being deleted but whose node never confirms it stopped.

        A pod evicted from a lost node keeps its deletionTimestamp forever, because only the node's
        kubelet would remove it. Once the grace period and a margin have passed, the attempt counts
        as lost.
        """
        deleted_at = datetime.fromisoformat(str(pod_metadata["deletionTimestamp"]).replace("Z", "+00:00"))
        grace = int(pod_metadata.get("deletionGracePeriodSeconds") or 0)
        give_up_at = deleted_at + timedelta(seconds=grace + POD_DELETION_MARGIN_SECONDS)
        await self._fail_as_lost_at(
            view,
            give_up_at,
            f"pod {pod_metadata.get('name')} was deleted but did not stop within {grace} s; "
            "its node may be lost",
        )

    async def _fail_as_lost_at(self, view: TaskView, give_up_at: datetime, detail: str) -> None:
        """Fail the attempt as PodLost once `give_up_at` has passed; until then, check again then."""
        remaining = (give_up_at - self._clock()).total_seconds()
        if remaining > 0:
            self._call_later(view.key, remaining)
            return
        await self._attempt_failed(view, exit_code=None, reason=Reason.POD_LOST, detail=detail)

    async def _report_stuck_pod(self, view: TaskView, pod: Mapping[str, Any]) -> None:
        """Show in the task's status why its pod cannot start, such as a missing Secret or image.

        A pod that still cannot start start_timeout_seconds after it was created is deleted, and its
        attempt fails. The task holds its claims while the pod waits, so until then it blocks every
        task that conflicts with it.
        """
        pod_status = pod.get("status") or {}
        for container in pod_status.get("containerStatuses") or ():
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in STUCK_CONTAINER_REASONS:
                continue
            message = (
                f"pod {view.pod_name} cannot start: {waiting['reason']}: {waiting.get('message', '')}".strip()
            )
            message += secret_parameter_hint(view, str(waiting.get("message") or ""))
            if await self._give_up_starting(view, pod, message):
                return
            body = self._store.body(view.key) or {}
            if (body.get("status") or {}).get("message") == message:
                return
            assert view.task_id is not None
            await self._transition(
                view,
                Transition(
                    phase=Phase.STARTING,
                    message=message,
                    reason=Reason.POD_NOT_STARTING,
                    conditions=(Condition(ConditionType.POD_READY, False, Reason.POD_NOT_STARTING, message),),
                ),
                task_id=view.task_id,
                record=False,
                event_type="Warning",
            )
            return

    async def _give_up_starting(self, view: TaskView, pod: Mapping[str, Any], message: str) -> bool:
        """Delete the pod and fail its attempt once start_timeout_seconds have passed since its creation.

        Return whether it did; until then, the task is checked again when the time comes.
        """
        timeout = self._settings.start_timeout_seconds
        created = (pod.get("metadata") or {}).get("creationTimestamp")
        if not timeout or not created:
            return False
        give_up_at = datetime.fromisoformat(str(created).replace("Z", "+00:00")) + timedelta(seconds=timeout)
        remaining = (give_up_at - self._clock()).total_seconds()
        if remaining > 0:
            self._call_later(view.key, remaining)
            return False
        name = str((pod.get("metadata") or {}).get("name"))
        with contextlib.suppress(NotFound):
            await self._kube.delete_pod(view.namespace, name, grace_period_seconds=0)
        await self._attempt_failed(
            view,
            exit_code=None,
            reason=Reason.POD_NOT_STARTING,
            detail=f"{message}; gave up after {timeout} s (KUBE_ETL_START_TIMEOUT_SECONDS)",
        )
        return True

    async def _set_running(self, view: TaskView) -> None:
        assert view.task_id is not None
        await self._transition(
            view,
            Transition(
                phase=Phase.RUNNING,
                message=f"pod {view.pod_name} runs attempt {view.attempt}",
                reason=Reason.POD_RUNNING,
                conditions=(Condition(ConditionType.POD_READY, True, Reason.POD_RUNNING),),
            ),
            task_id=view.task_id,
            # The Starting Event already named the pod, and the pod's own Events record when it
            # started. Without this Event a task that waited for a dependency costs 8 API writes.
            event=False,
        )

    async def _succeeded(self, view: TaskView) -> None:
        assert view.task_id is not None
        statistics = await self._in_database(self._database.read_statistics, view.task_id)
        waiting_for = await self._unfinished_children(view)
        if waiting_for:
            message = f"pod {view.pod_name} succeeded; waiting for children: {', '.join(waiting_for)}"
            await self._transition(
                view,
                Transition(
                    phase=Phase.WAITING_FOR_CHILDREN,
                    message=message,
                    reason=Reason.CHILDREN_RUNNING,
                    fields={"claims": [], "exitCode": 0, "statistics": statistics_summary(statistics)},
                ),
                task_id=view.task_id,
            )
            return
        failed = self._failed_children(view)
        if failed:
            await self._finish(
                view,
                Phase.FAILED,
                Reason.CHILD_FAILED,
                f"children did not succeed: {', '.join(failed)}",
                exit_code=0,
                extra={"statistics": statistics_summary(statistics)},
            )
            return
        await self._finish(
            view,
            Phase.SUCCEEDED,
            Reason.POD_SUCCEEDED,
            f"attempt {view.attempt} succeeded",
            exit_code=0,
            extra={"statistics": statistics_summary(statistics)},
        )

    async def _unfinished_children(self, view: TaskView) -> list[str]:
        """Names of the task's children that are not finished, and of requests not yet created."""
        assert view.task_id is not None
        names = sorted(child.name for child in self._store.children_of(view) if not is_terminal(child.phase))
        requests = await self._in_database(self._database.child_requests, view.task_id, only_unassigned=True)
        names.extend(f"request {request.id} ({request.task_class})" for request in requests)
        return names

    def _failed_children(self, view: TaskView) -> list[str]:
        return sorted(
            child.name
            for child in self._store.children_of(view)
            if child.phase in UNSUCCESSFUL_PHASES and child.phase != Phase.CANCELLED
        )

    async def _finish_after_children(self, view: TaskView) -> None:
        """End a parent whose pod succeeded with the worst outcome of its children, once they finish."""
        assert view.task_id is not None
        if await self._unfinished_children(view):
            return
        failed = self._failed_children(view)
        if failed:
            await self._finish(
                view, Phase.FAILED, Reason.CHILD_FAILED, f"children did not succeed: {', '.join(failed)}"
            )
        else:
            await self._finish(
                view, Phase.SUCCEEDED, Reason.POD_SUCCEEDED, "the task and its children succeeded"
            )

    async def _attempt_failed(
        self, view: TaskView, *, exit_code: int | None, reason: Reason, detail: str
    ) -> None:
        """End the current attempt as failed: schedule the next one, or fail the task."""
        assert view.task_id is not None
        error = await self._runtime_error(view.task_id)
        cause = error or detail
        code = f" with exit code {exit_code}" if exit_code is not None else ""
        retries = view.spec.retries
        statistics = await self._in_database(self._database.read_statistics, view.task_id)

        # A task that could not start (unknown class, invalid config) would fail the same way again.
        if view.attempt <= retries.limit and exit_code != SETUP_FAILED_EXIT_CODE:
            retry_at = self._clock() + timedelta(seconds=retries.backoff_seconds)
            message = (
                f"attempt {view.attempt} of {retries.limit + 1} failed{code}; "
                f"retrying in {retries.backoff_seconds} s: {cause}"
            )
            # The next attempt's row comes first, so that a parent watching this child through the
            # database never reads its newest attempt as finished while a retry is pending.
            await self._ensure_run(view, view.attempt + 1, status=Phase.RETRYING)
            await self._in_database(
                self._database.record_status, view.task_id, Phase.FAILED, message=message, exit_code=exit_code
            )
            await self._transition(
                view,
                Transition(
                    phase=Phase.RETRYING,
                    message=message,
                    reason=Reason.RETRY_SCHEDULED,
                    conditions=(
                        Condition(
                            ConditionType.ADMITTED,
                            False,
                            Reason.RETRY_SCHEDULED,
                            "claims released during backoff",
                        ),
                        Condition(ConditionType.POD_READY, False, reason, cause),
                    ),
                    fields={
                        "retryAt": format_time(retry_at),
                        "exitCode": exit_code,
                        "claims": [],
                        "statistics": statistics_summary(statistics),
                    },
                ),
                task_id=view.task_id,
                record=False,
                event_type="Warning",
            )
            self._call_later(view.key, retries.backoff_seconds)
            return

        attempts = f" after {view.attempt} attempts" if view.attempt > 1 else ""
        await self._finish(
            view,
            Phase.FAILED,
            reason,
            f"failed{code}{attempts}: {cause}",
            exit_code=exit_code,
            extra={"statistics": statistics_summary(statistics)},
        )

    async def _runtime_error(self, task_id: int) -> str | None:
        """Return the last line of the error that the runtime recorded, which names the exception."""
        run = await self._in_database(self._database.get_run, task_id)
        error = (run.error or "").strip()
        if not error:
            return None
        return error.splitlines()[-1]

    async def _retry_when_due(self, view: TaskView) -> None:
        body = self._store.body(view.key) or {}
        retry_at_text = (body.get("status") or {}).get("retryAt")
        retry_at = (
            datetime.fromisoformat(retry_at_text.replace("Z", "+00:00")) if retry_at_text else self._clock()
        )
        remaining = (retry_at - self._clock()).total_seconds()
        if remaining > 0:
            self._call_later(view.key, remaining)
            return
        attempt = view.attempt + 1
        task_id = await self._ensure_run(view, attempt)
        await self._transition(
            view,
            Transition(
                phase=Phase.PENDING,
                message=f"attempt {attempt} of {view.spec.retries.limit + 1} is queued",
                reason=Reason.RETRY_SCHEDULED,
                fields={
                    "taskId": task_id,
                    "attempt": attempt,
                    "podName": pod_name(view.name, attempt),
                    "retryAt": None,
                },
            ),
            task_id=task_id,
        )

    # Ends

    async def _cancel(self, view: TaskView) -> None:
        self._ready.discard(view.key)
        self._reserved.pop(view.key, None)
        name = view.pod_name
        if name and self._store.pod(view.namespace, name) is not None:
            try:
                await self._kube.delete_pod(view.namespace, name)
                logger.info("%s: cancelled; pod %s was sent SIGTERM", _describe(view), name)
            except NotFound:
                pass
        await self._finish(view, Phase.CANCELLED, Reason.CANCELLED, "cancelled: spec.cancel is true")

    async def _delete_when_expired(self, view: TaskView, body: Mapping[str, Any]) -> None:
        ttl = view.spec.ttl_seconds_after_finished
        completion = (body.get("status") or {}).get("completionTime")
        if ttl is None or not completion:
            return
        expires = datetime.fromisoformat(completion.replace("Z", "+00:00")) + timedelta(seconds=ttl)
        remaining = (expires - self._clock()).total_seconds()
        if remaining > 0:
            self._call_later(view.key, remaining)
            return
        try:
            await self._kube.delete_task(view.namespace, view.name)
            logger.info(
                "%s was deleted %d s after it finished (ttlSecondsAfterFinished)", _describe(view), ttl
            )
        except NotFound:
            pass

    async def _fail_invalid(self, key: Key, body: Mapping[str, Any]) -> None:
        status = body.get("status") or {}
        if is_terminal(status.get("phase")):
            return
        reason = self._store.invalid_reason(key) or "the spec is invalid"
        message = f"invalid spec: {reason}"
        # No task database row is written: the operator cannot tell what the run would be.
        transition = Transition(
            phase=Phase.FAILED,
            message=message,
            reason=Reason.INVALID_SPEC,
            conditions=(Condition(ConditionType.COMPLETE, False, Reason.INVALID_SPEC, message),),
            fields={"completionTime": format_time(self._clock())},
        )
        patch = status_patch(body, transition, now=self._clock())
        updated = await self._kube.patch_task_status(key[0], key[1], patch)
        self._apply(updated)
        logger.warning("ETLTask %s/%s failed: invalid spec: %s", key[0], key[1], reason)
        self._spawn(self._post_event(updated, "Warning", transition))

    async def _report_ignored_edit(self, view: TaskView, body: Mapping[str, Any]) -> None:
        """Say once, in an Event, that a finished task's spec was changed to no effect.

        Setting status.observedGeneration to the new generation marks the change as seen, so each
        edit costs one status patch and one Event.
        """
        generation = int((body.get("metadata") or {}).get("generation") or 0)
        observed = int((body.get("status") or {}).get("observedGeneration") or 0)
        if not observed or generation <= observed:
            return
        message = (
            f"the spec changed after the task finished (generation {generation}); a finished "
            "task never runs again, and only ttlSecondsAfterFinished still takes effect. To run it again, "
            "delete the ETLTask and create it anew"
        )
        updated = await self._kube.patch_task_status(
            view.namespace, view.name, {"status": {"observedGeneration": generation}}
        )
        self._apply(updated)
        logger.info("%s: %s", _describe(view), message)
        event = Transition(phase=str(view.phase), message=message, reason=Reason.SPEC_CHANGE_IGNORED)
        self._spawn(self._post_event(updated, "Warning", event))

    async def _finish(
        self,
        view: TaskView,
        phase: Phase,
        reason: Reason,
        message: str,
        *,
        condition: Condition | None = None,
        exit_code: int | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        task_id = (
            view.task_id if view.task_id is not None else await self._ensure_run(view, max(view.attempt, 1))
        )
        conditions = [Condition(ConditionType.COMPLETE, phase == Phase.SUCCEEDED, reason, message)]
        if condition is not None:
            conditions.append(condition)
        fields: dict[str, Any] = {
            "taskId": task_id,
            "attempt": max(view.attempt, 1),
            "completionTime": format_time(self._clock()),
            "claims": [],
            "waitingFor": [],
            "blockedBy": [],
            **(extra or {}),
        }
        if exit_code is not None:
            fields["exitCode"] = exit_code
        await self._transition(
            view,
            Transition(phase=phase, message=message, reason=reason, conditions=conditions, fields=fields),
            task_id=task_id,
            exit_code=exit_code,
            event_type="Normal" if phase == Phase.SUCCEEDED else "Warning",
        )

    # The one place that writes a transition: database first, then status, then an Event (every phase
    # but Running)

    async def _transition(
        self,
        view: TaskView,
        transition: Transition,
        *,
        task_id: int,
        precondition: bool = False,
        record: bool = True,
        exit_code: int | None = None,
        event_type: str = "Normal",
        event: bool = True,
    ) -> TaskView:
        body = self._store.body(view.key)
        if body is None:
            raise NotFound(404, f"{_describe(view)} is gone")
        if record:
            await self._in_database(
                self._database.record_status,
                task_id,
                transition.phase,
                message=transition.message,
                exit_code=exit_code,
            )
        if condition_is(body, ConditionType.TASK_DATABASE_READY, False):
            # The database call above went through, so the condition set while it was down is stale.
            recovered = Condition(ConditionType.TASK_DATABASE_READY, True, Reason.DATABASE_AVAILABLE)
            transition = replace(transition, conditions=(*transition.conditions, recovered))
        patch = status_patch(body, transition, now=self._clock(), precondition=precondition)
        updated = await self._kube.patch_task_status(view.namespace, view.name, patch)
        self._apply(updated)
        level = logging.WARNING if event_type == "Warning" else logging.INFO
        logger.log(level, "%s is %s: %s", _describe(view), transition.phase, transition.message)
        if event:
            self._spawn(self._post_event(updated, event_type, transition))
        new_view = self._store.view(view.key)
        if new_view is None:
            raise NotFound(404, f"{_describe(view)} is gone")
        return new_view

    def _apply(self, body: Mapping[str, Any]) -> None:
        change = self._store.upsert(body)
        if change is not None:
            self._after_change(change)

    async def _post_event(self, body: Mapping[str, Any], event_type: str, transition: Transition) -> None:
        metadata = body.get("metadata") or {}
        now = format_time(self._clock())
        event = {
            "metadata": {
                "generateName": f"{metadata.get('name', 'etltask')}.",
                "namespace": metadata.get("namespace"),
            },
            "involvedObject": {
                "apiVersion": f"{API_GROUP}/{API_VERSION}",
                "kind": KIND,
                "name": metadata.get("name"),
                "namespace": metadata.get("namespace"),
                "uid": metadata.get("uid"),
                "resourceVersion": metadata.get("resourceVersion"),
            },
            "reason": str(transition.reason),
            "message": f"{transition.phase}: {transition.message}"[:1024],
            "type": event_type,
            "source": {"component": "kube-etl-operator"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await self._kube.create_event(str(metadata.get("namespace")), event)
        except (ApiError, ApiUnavailable) as error:
            logger.debug("posting an Event for ETLTask %s failed: %s", metadata.get("name"), error)


def _marked_not_ready_since(pod_status: Mapping[str, Any]) -> datetime | None:
    """Return when the node lifecycle controller marked a running pod not Ready, or None.

    When a node stops reporting, the controller sets the Ready condition of each of its pods to False
    and leaves ContainersReady as the node last reported it. A running job pod (no probes, no
    readiness gates) with Ready False but ContainersReady True is such a pod. This is how an operator
    limited to namespaces, which may not watch Nodes, learns that a node is lost.
    """
    if pod_status.get("phase") != "Running":
        return None
    conditions = {item.get("type"): item for item in pod_status.get("conditions") or ()}
    ready = conditions.get("Ready") or {}
    containers_ready = conditions.get("ContainersReady") or {}
    if ready.get("status") != "False" or containers_ready.get("status") != "True":
        return None
    since = ready.get("lastTransitionTime")
    if not since:
        return None
    return datetime.fromisoformat(str(since).replace("Z", "+00:00"))


_ERROR_LINE = re.compile(r"\b\w*(Error|Exception)\b|cannot start|failed")


def _telling_line(log_tail: str) -> str:
    """Return the line of a log tail that best explains the failure: the last error line."""
    lines = [line.strip() for line in log_tail.splitlines() if line.strip()]
    # SQLAlchemy ends its errors with a line that only links to its documentation.
    lines = [line for line in lines if not line.startswith("(Background on this error")]
    for line in reversed(lines):
        if _ERROR_LINE.search(line):
            return line
    return lines[-1] if lines else ""


def _termination(pod_status: Mapping[str, Any]) -> tuple[int | None, str]:
    """Return the exit code and a message from the first terminated container of a failed pod."""
    for container in pod_status.get("containerStatuses") or ():
        terminated = (container.get("state") or {}).get("terminated")
        if terminated:
            message = (terminated.get("message") or terminated.get("reason") or "").strip()
            return terminated.get("exitCode"), _telling_line(message) or "the container failed"
    return None, pod_status.get("message") or pod_status.get("reason") or "the pod failed"


__all__ = ["LABEL_TASK", "Reconciler"]
