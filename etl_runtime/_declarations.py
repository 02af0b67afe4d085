"""Scheduling declarations of a task class: dependencies and mutual exclusion.

A task class states them by overriding ``depends_on``, ``mutually_exclusive_execution`` and
``allow_concurrent_runs``. ``ETLTask.declarations`` normalizes them into ``TaskDeclarations``, the
value that a manifest generator turns into an ETLTask's ``dependsOn``, ``mutuallyExclusiveWith``
and ``allowConcurrentRuns``. The runtime does not enforce them: the operator does.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Dependency:
    """One ``dependsOn`` entry: exactly one of ``name`` and ``task`` is set.

    ``name`` is an ETLTask name that must reach ``Succeeded``. ``task`` is a task class pattern
    (fnmatch), and a dependent waits while any task of a matching class is not finished.
    """

    name: str | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        if (self.name is None) == (self.task is None):
            raise ValueError(
                f"a dependency needs exactly one of name and task, got name={self.name!r}, task={self.task!r}"
            )

    @classmethod
    def on_task(cls, pattern: str) -> Dependency:
        return cls(task=pattern)

    @classmethod
    def on_name(cls, name: str) -> Dependency:
        return cls(name=name)

    def as_manifest(self) -> dict[str, str]:
        """Return the entry as it appears under ``spec.dependsOn``."""
        return {"name": self.name} if self.name is not None else {"task": str(self.task)}


DependencyDeclaration = str | Dependency


def normalize_dependencies(declared: Iterable[DependencyDeclaration]) -> frozenset[Dependency]:
    """Turn ``depends_on`` output into Dependency values. A plain string is a task class pattern."""
    normalized = set()
    for entry in declared:
        if isinstance(entry, Dependency):
            normalized.add(entry)
        elif isinstance(entry, str) and entry.strip():
            normalized.add(Dependency(task=entry.strip()))
        else:
            raise ValueError(
                f"dependency {entry!r} is invalid: expected a task class pattern or a Dependency"
            )
    return frozenset(normalized)


def normalize_patterns(declared: Iterable[str]) -> frozenset[str]:
    """Turn ``mutually_exclusive_execution`` output into a set of non-empty patterns."""
    normalized = set()
    for entry in declared:
        if not isinstance(entry, str) or not entry.strip():
            raise ValueError(
                f"mutual exclusion entry {entry!r} is invalid: expected a task class pattern or name"
            )
        normalized.add(entry.strip())
    return frozenset(normalized)


@dataclass(frozen=True)
class TaskDeclarations:
    """Everything a task class declares for the scheduler."""

    task_class: str
    depends_on: frozenset[Dependency]
    mutually_exclusive_with: frozenset[str]
    allow_concurrent_runs: bool
