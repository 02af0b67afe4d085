"""Status patches of an ETLTask: conditions, timestamps and the summary of statistics.

The reconciler describes a transition as a `Transition`; `status_patch` turns it into the one merge
patch that the transition costs. Conditions keep their lastTransitionTime while their status stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .phases import ConditionType, Reason


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    status: bool
    reason: Reason
    message: str = ""


@dataclass(frozen=True)
class Transition:
    """One change of an ETLTask's status, written as one patch."""

    phase: str
    message: str
    reason: Reason
    conditions: Sequence[Condition] = ()
    # Other status fields to set; a None value removes the field.
    fields: Mapping[str, Any] = field(default_factory=dict)


def merge_conditions(
    current: Sequence[Mapping[str, Any]],
    updates: Sequence[Condition],
    *,
    now: datetime,
    generation: int,
) -> list[dict[str, Any]]:
    """Return status.conditions with `updates` applied, in a stable order by type."""
    by_type: dict[str, dict[str, Any]] = {str(item.get("type")): dict(item) for item in current}
    for update in updates:
        status = "True" if update.status else "False"
        previous = by_type.get(update.type)
        changed = previous is None or previous.get("status") != status
        by_type[update.type] = {
            "type": str(update.type),
            "status": status,
            "reason": str(update.reason),
            "message": update.message,
            "lastTransitionTime": format_time(now)
            if changed
            else (previous or {}).get("lastTransitionTime", format_time(now)),
            "observedGeneration": generation,
        }
    return [by_type[key] for key in sorted(by_type)]


def status_patch(
    body: Mapping[str, Any], transition: Transition, *, now: datetime, precondition: bool = False
) -> dict[str, Any]:
    """Build the merge patch for `transition` on top of the object `body`."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    generation = int(metadata.get("generation") or 0)
    patch_status: dict[str, Any] = {
        "phase": transition.phase,
        "message": transition.message,
        "observedGeneration": generation,
        **transition.fields,
    }
    if transition.conditions:
        patch_status["conditions"] = merge_conditions(
            status.get("conditions") or [], transition.conditions, now=now, generation=generation
        )
    patch: dict[str, Any] = {"status": patch_status}
    if precondition:
        patch["metadata"] = {"resourceVersion": metadata.get("resourceVersion")}
    return patch


def condition_patch(body: Mapping[str, Any], condition: Condition, *, now: datetime) -> dict[str, Any]:
    """Build a merge patch that sets one condition and leaves the phase alone."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    generation = int(metadata.get("generation") or 0)
    conditions = merge_conditions(status.get("conditions") or [], [condition], now=now, generation=generation)
    return {"status": {"conditions": conditions}}


def condition_is(body: Mapping[str, Any], condition_type: ConditionType, status: bool) -> bool:
    """Tell whether the object's status has the condition with the given truth value."""
    wanted = "True" if status else "False"
    return any(
        item.get("type") == condition_type and item.get("status") == wanted
        for item in (body.get("status") or {}).get("conditions") or ()
    )


# Counters that make up the row totals in status.statistics.
_SUMMARY_COUNTERS = {
    "rowsRead": ("rows_read",),
    "rowsWritten": ("rows_written", "rows_inserted", "rows_updated"),
}
_STEP_TIMERS = ("task.init.seconds", "task.load.seconds", "task.finish.seconds")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _sum_counter(flat: Mapping[str, Any], counters: tuple[str, ...], *, own: bool) -> float | None:
    """Sum the counters named `counters` at any depth, in the task's own statistics or its components'."""
    values = [
        number
        for name, value in flat.items()
        if name.startswith("task.") == own
        and name.rpartition(".")[2] in counters
        and (number := _number(value)) is not None
    ]
    return sum(values) if values else None


def _row_total(flat: Mapping[str, Any], counters: tuple[str, ...]) -> int | None:
    """Total a group of counters: the task's own first counter, else its own other counters, else its
    components' counters.

    A job usually copies its components' counts into its own statistics (task.rows_read), so adding
    both would count each row twice.
    """
    first, *others = counters
    for total in (
        _sum_counter(flat, (first,), own=True),
        _sum_counter(flat, tuple(others), own=True),
        _sum_counter(flat, counters, own=False),
    ):
        if total is not None:
            return int(total)
    return None


def statistics_summary(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Summarise a task's flattened statistics for its status: row totals and the time of its steps."""
    summary: dict[str, Any] = {}
    for label, counters in _SUMMARY_COUNTERS.items():
        total = _row_total(flat, counters)
        if total is not None:
            summary[label] = total
    step_seconds = [number for name in _STEP_TIMERS if (number := _number(flat.get(name))) is not None]
    if step_seconds:
        summary["seconds"] = round(sum(step_seconds), 3)
    return summary
