"""The scheduling rules of kube-etl as pure functions over TaskViews.

The reconciler asks these functions whether a task's dependencies are met, whether two tasks conflict and
which waiting tasks may start; they read nothing from the API and write nothing, so the unit tests
exercise every rule without a cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from ._spec import TaskView
from .phases import TERMINAL_PHASES, UNSUCCESSFUL_PHASES, Phase

TaskLookup = Callable[[str, str], "TaskView | None"]


@dataclass(frozen=True)
class DependencyResult:
    """The current outcome of a task's spec.dependsOn."""

    # Dependencies that have not succeeded yet, as described in status.waitingFor.
    waiting_for: tuple[str, ...] = ()
    # Named dependencies that do not exist (yet).
    missing: tuple[str, ...] = ()
    # Named dependencies that ended Failed, Cancelled or UpstreamFailed.
    failed: tuple[str, ...] = ()

    @property
    def met(self) -> bool:
        return not self.waiting_for and not self.failed


def evaluate_dependencies(
    task: TaskView, lookup: TaskLookup, unfinished_in_namespace: Iterable[TaskView]
) -> DependencyResult:
    """Check spec.dependsOn of a task against the tasks in the operator's store."""
    waiting: list[str] = []
    missing: list[str] = []
    failed: list[str] = []
    unfinished = list(unfinished_in_namespace)

    for dependency in task.spec.depends_on:
        if dependency.name is not None:
            other = lookup(task.namespace, dependency.name)
            if other is None:
                missing.append(dependency.name)
                waiting.append(dependency.name)
            elif other.phase in UNSUCCESSFUL_PHASES:
                failed.append(dependency.name)
            elif other.phase != Phase.SUCCEEDED:
                waiting.append(dependency.name)
            continue

        pattern = dependency.task_pattern or ""
        blockers = sorted(
            other.name
            for other in unfinished
            if other.key != task.key
            and other.phase not in TERMINAL_PHASES
            and fnmatchcase(other.spec.task, pattern)
        )
        waiting.extend(blockers)

    return DependencyResult(waiting_for=tuple(waiting), missing=tuple(missing), failed=tuple(failed))


def find_cycle(task: TaskView, lookup: TaskLookup) -> tuple[str, ...] | None:
    """Return the names along a dependency cycle through `task` (first name repeated at the end), or None.

    Only name dependencies are followed; a name that no task has yet ends that branch of the search.
    """
    path: list[str] = [task.name]
    on_path = {task.name}
    visited: set[str] = set()

    def visit(current: TaskView) -> tuple[str, ...] | None:
        for dependency in current.spec.depends_on:
            if dependency.name is None:
                continue
            if dependency.name == task.name:
                return (*path, task.name)
            if dependency.name in on_path or dependency.name in visited:
                continue
            nxt = lookup(task.namespace, dependency.name)
            if nxt is None:
                continue
            path.append(nxt.name)
            on_path.add(nxt.name)
            found = visit(nxt)
            if found is not None:
                return found
            path.pop()
            on_path.discard(nxt.name)
            visited.add(nxt.name)
        return None

    return visit(task)


def _lists(task: TaskView, other: TaskView) -> bool:
    """Tell whether `task` names `other` in spec.mutuallyExclusiveWith, by class pattern or by name."""
    return any(
        fnmatchcase(other.spec.task, entry) or fnmatchcase(other.name, entry)
        for entry in task.spec.mutually_exclusive_with
    )


def conflicts(a: TaskView, b: TaskView) -> bool:
    """Tell whether two tasks must never run at the same time. The relation is symmetric.

    Two tasks conflict when either lists the other in spec.mutuallyExclusiveWith (by class pattern or
    name), when both list the same entry (each entry is also a lock name), or when they run the same
    class and either one does not allow concurrent runs.
    """
    if a.key == b.key:
        return False
    if a.namespace != b.namespace:
        return False
    if _lists(a, b) or _lists(b, a):
        return True
    if set(a.spec.mutually_exclusive_with) & set(b.spec.mutually_exclusive_with):
        return True
    same_class = a.spec.task == b.spec.task
    return same_class and not (a.spec.allow_concurrent_runs and b.spec.allow_concurrent_runs)


def claims_of(task: TaskView) -> tuple[str, ...]:
    """Return the claims written to status.claims while the task is Starting or Running."""
    return tuple(
        sorted({f"task:{task.spec.task}", *(f"mutex:{entry}" for entry in task.spec.mutually_exclusive_with)})
    )


@dataclass
class AdmissionResult:
    """The outcome of one admission pass."""

    admitted: list[TaskView] = field(default_factory=list)
    # Task key -> names of the holders it conflicts with.
    blocked_by: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    # Task keys held back by the concurrency limit of their namespace.
    over_limit: set[tuple[str, str]] = field(default_factory=set)


class _NamespaceHolders:
    """The claim holders of one namespace, grouped by what they can conflict with."""

    def __init__(self) -> None:
        self.count = 0
        self.all: list[TaskView] = []
        self.by_class: dict[str, list[TaskView]] = {}
        # Holders with spec.mutuallyExclusiveWith entries: they may conflict with a task of any class.
        self.listing: list[TaskView] = []

    def add(self, holder: TaskView) -> None:
        self.count += 1
        self.all.append(holder)
        self.by_class.setdefault(holder.spec.task, []).append(holder)
        if holder.spec.mutually_exclusive_with:
            self.listing.append(holder)

    def conflicting(self, candidate: TaskView) -> tuple[str, ...]:
        """Return the names of the holders that conflict with `candidate`, sorted.

        A candidate without mutuallyExclusiveWith entries can only conflict with holders of its own
        class and with holders that list something, so only those are compared.
        """
        if candidate.spec.mutually_exclusive_with:
            pool: Iterable[TaskView] = self.all
        else:
            pool = (*self.by_class.get(candidate.spec.task, ()), *self.listing)
        return tuple(sorted({holder.name for holder in pool if conflicts(candidate, holder)}))


def admit(
    candidates: Iterable[TaskView],
    holders: Iterable[TaskView],
    limit_for: Callable[[str], int],
) -> AdmissionResult:
    """Decide which waiting tasks may start now, first come first served.

    Candidates are taken in queue order (priority, creation time, name). Each one that conflicts with no
    holder, and whose namespace is under its concurrency limit, is admitted and becomes a holder for the
    candidates after it. A candidate that is blocked does not hold back later candidates whose own claims
    are free. `limit_for(namespace)` returns the namespace's limit, 0 for none.
    """
    by_namespace: dict[str, _NamespaceHolders] = {}
    for holder in holders:
        by_namespace.setdefault(holder.namespace, _NamespaceHolders()).add(holder)

    result = AdmissionResult()
    for candidate in sorted(candidates, key=lambda view: view.queue_order):
        namespace_holders = by_namespace.setdefault(candidate.namespace, _NamespaceHolders())
        blockers = namespace_holders.conflicting(candidate)
        if blockers:
            result.blocked_by[candidate.key] = blockers
            continue
        limit = limit_for(candidate.namespace)
        if limit and namespace_holders.count >= limit:
            result.over_limit.add(candidate.key)
            continue
        result.admitted.append(candidate)
        namespace_holders.add(candidate)
    return result
