"""Run statistics: counters and timers per component, nested by name.

A task counts into ``ETLTask.statistics``, and each object passed to ``ETLTask.register_object``
brings its own ``Statistics``. After the run, ``ETLTask.run`` flattens them to dotted names
(``task.rows_read``, ``reader.rows_read``, ``task.load.seconds``) and writes them to the task
database, on success and on failure.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

StatisticValue = int | float | str | bool | None


class Stopwatch:
    """Elapsed time of one ``Statistics.timer`` block, in seconds."""

    def __init__(self) -> None:
        self._started = time.perf_counter()
        self._stopped: float | None = None

    def stop(self) -> float:
        self._stopped = time.perf_counter()
        return self.seconds

    @property
    def seconds(self) -> float:
        end = self._stopped if self._stopped is not None else time.perf_counter()
        return end - self._started


class Statistics:
    """Named counters, values and child groups of one task or component.

    A dotted name addresses a child group, so ``add("reader.rows_read")`` counts ``rows_read`` in
    the child ``reader``. A name cannot be a value and a child group at once. All methods are
    thread-safe.
    """

    def __init__(self, name: str = "") -> None:
        self.name = name
        self._entries: dict[str, StatisticValue | Statistics] = {}
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"Statistics({self.name!r}, {self.as_dict()!r})"

    def add(self, name: str, n: int | float = 1) -> None:
        """Add ``n`` to the counter ``name``, which starts at 0."""
        group, leaf = self._parent_of(name)
        with group._lock:
            current = group._entries.get(leaf, 0)
            if isinstance(current, Statistics):
                raise ValueError(f"statistic {name!r} is a group of statistics, not a counter")
            if not isinstance(current, int | float) or isinstance(current, bool):
                raise ValueError(f"statistic {name!r} contains {current!r}, which is not a number")
            group._entries[leaf] = current + n

    def set(self, name: str, value: StatisticValue) -> None:
        """Set the statistic ``name`` to ``value``, replacing a counter or earlier value."""
        group, leaf = self._parent_of(name)
        with group._lock:
            if isinstance(group._entries.get(leaf), Statistics):
                raise ValueError(f"statistic {name!r} is a group of statistics, not a value")
            group._entries[leaf] = value

    def get(self, name: str, default: StatisticValue = 0) -> StatisticValue:
        """Return the value of ``name``, or ``default`` when nothing was counted under it."""
        group, leaf = self._parent_of(name)
        with group._lock:
            value = group._entries.get(leaf, default)
        if isinstance(value, Statistics):
            raise ValueError(f"statistic {name!r} is a group of statistics; use child({name!r})")
        return value

    def count(self, name: str) -> int | float:
        """Return the number counted under ``name``, 0 when nothing was counted."""
        value = self.get(name, 0)
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"statistic {name!r} contains {value!r}, which is not a number")
        return value

    def child(self, name: str) -> Statistics:
        """Return the child group ``name``, creating it on first use."""
        group = self
        for part in _split(name):
            group = group._child_group(part, name)
        return group

    @contextmanager
    def timer(self, name: str) -> Iterator[Stopwatch]:
        """Time the block and add its duration to ``<name>.seconds``, also when the block raises."""
        group = self.child(name)
        stopwatch = Stopwatch()
        try:
            yield stopwatch
        finally:
            group.add("seconds", round(stopwatch.stop(), 6))

    def as_dict(self) -> dict[str, Any]:
        """Return the statistics as nested dicts, child groups as dicts."""
        with self._lock:
            entries = list(self._entries.items())
        return {key: value.as_dict() if isinstance(value, Statistics) else value for key, value in entries}

    def flatten(self, prefix: str = "") -> dict[str, StatisticValue]:
        """Return every value under a dotted name, e.g. ``{"reader.rows_read": 10}``."""
        flat: dict[str, StatisticValue] = {}
        with self._lock:
            entries = list(self._entries.items())
        for key, value in entries:
            full_name = f"{prefix}.{key}" if prefix else key
            if isinstance(value, Statistics):
                flat.update(value.flatten(full_name))
            else:
                flat[full_name] = value
        return flat

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        group, leaf = self._parent_of(name, create=False)
        return leaf in group._entries

    def _child_group(self, part: str, full_name: str) -> Statistics:
        with self._lock:
            existing = self._entries.get(part)
            if existing is None:
                existing = Statistics(part)
                self._entries[part] = existing
            if not isinstance(existing, Statistics):
                raise ValueError(f"statistic {part!r} in {full_name!r} is a value, not a group of statistics")
            return existing

    def _parent_of(self, name: str, *, create: bool = True) -> tuple[Statistics, str]:
        parts = _split(name)
        group = self
        for part in parts[:-1]:
            if not create and not isinstance(group._entries.get(part), Statistics):
                return _EMPTY, parts[-1]
            group = group._child_group(part, name)
        return group, parts[-1]


def _split(name: str) -> list[str]:
    parts = name.split(".")
    if not name or any(not part for part in parts):
        raise ValueError(f"statistic name {name!r} is invalid: expected names separated by single dots")
    return parts


# Stands in for a missing group when ``in`` looks up a path, so lookups create nothing.
_EMPTY = Statistics()
