"""Phases, condition types and reasons of an ETLTask, in one place.

The reconciler and the status writer import these names; tests and the docs use the same strings. The
values are persisted in ETLTask statuses and in the task database, so a Python name may be renamed but a
value never changes.
"""

from __future__ import annotations

from enum import StrEnum


class Phase(StrEnum):
    """The stage of an ETLTask's lifecycle."""

    # The operator has seen the task but not yet decided anything.
    PENDING = "Pending"
    # At least one dependency has not succeeded yet.
    WAITING = "Waiting"
    # Dependencies are met, but a conflicting task or the concurrency limit keeps it waiting.
    BLOCKED = "Blocked"
    # Claims are held and the pod of the current attempt is being created.
    STARTING = "Starting"
    # The pod of the current attempt runs.
    RUNNING = "Running"
    # An attempt failed and the next one starts at status.retryAt; no claims are held.
    RETRYING = "Retrying"
    # The parent's own pod finished while its children still run.
    WAITING_FOR_CHILDREN = "WaitingForChildren"
    # A child waits for its parent to approve the run.
    AWAITING_APPROVAL = "AwaitingApproval"
    # Terminal phases: nothing more happens to the task.
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UPSTREAM_FAILED = "UpstreamFailed"
    CANCELLED = "Cancelled"


TERMINAL_PHASES = frozenset({Phase.SUCCEEDED, Phase.FAILED, Phase.UPSTREAM_FAILED, Phase.CANCELLED})
# Phases in which a task holds its mutual-exclusion claims and counts against the concurrency limit.
ACTIVE_PHASES = frozenset({Phase.STARTING, Phase.RUNNING})
# Phases in which a task still waits for approval, its dependencies or its claims.
QUEUED_PHASES = frozenset({Phase.PENDING, Phase.AWAITING_APPROVAL, Phase.WAITING, Phase.BLOCKED})
# A dependency in one of these phases makes its dependents UpstreamFailed.
UNSUCCESSFUL_PHASES = frozenset({Phase.FAILED, Phase.UPSTREAM_FAILED, Phase.CANCELLED})


def is_terminal(phase: str | None) -> bool:
    """Tell whether a phase string is one of the terminal phases."""
    return phase in TERMINAL_PHASES


class ConditionType(StrEnum):
    """Types of the conditions in status.conditions."""

    DEPENDENCIES_MET = "DependenciesMet"
    ADMITTED = "Admitted"
    POD_READY = "PodReady"
    COMPLETE = "Complete"
    TASK_DATABASE_READY = "TaskDatabaseReady"
    APPROVED = "Approved"


class Reason(StrEnum):
    """Machine-readable reasons for conditions and Kubernetes Events."""

    DEPENDENCIES_SUCCEEDED = "DependenciesSucceeded"
    DEPENDENCY_NOT_FOUND = "DependencyNotFound"
    DEPENDENCY_PENDING = "DependencyPending"
    DEPENDENCY_FAILED = "DependencyFailed"
    DEPENDENCY_CYCLE = "DependencyCycle"
    CLAIMS_HELD = "ClaimsHeld"
    MUTUAL_EXCLUSION = "MutualExclusion"
    CONCURRENCY_LIMIT = "ConcurrencyLimit"
    POD_CREATED = "PodCreated"
    POD_RUNNING = "PodRunning"
    POD_NOT_STARTING = "PodNotStarting"
    POD_SUCCEEDED = "PodSucceeded"
    POD_FAILED = "PodFailed"
    POD_LOST = "PodLost"
    DEADLINE_EXCEEDED = "DeadlineExceeded"
    RETRY_SCHEDULED = "RetryScheduled"
    CANCELLED = "Cancelled"
    INVALID_SPEC = "InvalidSpec"
    SPEC_CHANGE_IGNORED = "SpecChangeIgnored"
    APPROVAL_PENDING = "ApprovalPending"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    CHILDREN_RUNNING = "ChildrenRunning"
    CHILD_FAILED = "ChildFailed"
    DATABASE_UNAVAILABLE = "DatabaseUnavailable"
    DATABASE_AVAILABLE = "DatabaseAvailable"
