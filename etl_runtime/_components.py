"""Objects that a task registers so that their statistics are saved and they are closed.

``ETLTask.register_object`` adds readers, writers and other helpers here. After the run,
``ETLTask.run`` saves each one's ``statistics`` under the component's name, and ``ETLTask.close``
closes them once, in the reverse order of registration.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from etl_runtime._statistics import Statistics, StatisticValue

# The task's own statistics are saved under this prefix, so no component may use it.
TASK_STATISTICS_PREFIX = "task"


@dataclass
class Component:
    name: str
    obj: Any

    @property
    def statistics(self) -> Statistics | None:
        if isinstance(self.obj, Statistics):
            return self.obj
        statistics = getattr(self.obj, "statistics", None)
        return statistics if isinstance(statistics, Statistics) else None


def default_component_name(obj: Any) -> str:
    """Name a component after its ``name`` attribute, or its class name in snake_case."""
    name = getattr(obj, "name", None)
    if isinstance(name, str) and name.strip():
        return name.strip()
    class_name = type(obj).__name__
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", class_name).lower()


class ComponentRegistry:
    def __init__(self) -> None:
        self._components: list[Component] = []

    def register(self, obj: Any, name: str | None = None) -> str:
        """Add ``obj`` and return its unique name; a taken name gets a suffix such as ``_2``."""
        base = (name or default_component_name(obj)).replace(".", "_")
        taken_names = {component.name for component in self._components} | {TASK_STATISTICS_PREFIX}
        unique = base
        suffix = 2
        while unique in taken_names:
            unique = f"{base}_{suffix}"
            suffix += 1
        self._components.append(Component(unique, obj))
        return unique

    def __len__(self) -> int:
        return len(self._components)

    def flat_statistics(self) -> dict[str, StatisticValue]:
        flat: dict[str, StatisticValue] = {}
        for component in self._components:
            statistics = component.statistics
            if statistics is not None:
                flat.update(statistics.flatten(component.name))
        return flat

    def close_all(self, log: logging.LoggerAdapter[logging.Logger]) -> None:
        """Close every component that has a ``close`` method, newest first.

        A failing ``close`` is logged and the others are still closed. The components stay
        registered, so their statistics can still be read after the task is closed.
        """
        for component in reversed(self._components):
            close = getattr(component.obj, "close", None)
            if not callable(close):
                continue
            try:
                close()
            except Exception:
                log.exception("closing component %r failed", component.name)
