"""Resolution of a task name to its class: a full ``module.Class``, or a unique partial name.

Called by ``etl-runtime run`` with the ``$KUBE_ETL_TASK_CLASS`` that the operator copied from
``spec.task`` or with the class given to ``--local``, by ``etl-runtime manifest``, and by
``ETLTask.add_child_task_*``. A partial name (``etl_task_d*``, a module name, a class name) is
matched against the task classes found under the configured base modules. Error messages name
what was tried, so that a wrong image or PYTHONPATH is easy to spot in the pod log.
"""

from __future__ import annotations

import configparser
import importlib
import inspect
import os
import pkgutil
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import ModuleType

from etl_runtime._config import read_option
from etl_runtime._errors import AmbiguousTaskNameError, TaskClassNotFoundError
from etl_runtime._task import ETLTask

BASE_MODULES_VARIABLE = "KUBE_ETL_BASE_MODULES"
RUNTIME_SECTION = "kube_etl"
BASE_MODULES_OPTION = "base_modules"

# A partial name may contain identifiers, dots and fnmatch wildcards.
PARTIAL_NAME_RE = re.compile(r"[A-Za-z0-9_*?\[\]!]+(\.[A-Za-z0-9_*?\[\]!]+)*")


def resolve_task_class(class_path: str, *, base_modules: Sequence[str] | None = None) -> type[ETLTask]:
    """Return the ETLTask subclass named by a full ``module.Class`` or by a unique partial name.

    A full name is imported directly. A name that is not one, or whose import finds no such module
    or class, is matched as a partial name against the task classes under ``base_modules``
    (default: ``$KUBE_ETL_BASE_MODULES``), as ``find_by_partial_name`` describes. Raises
    TaskClassNotFoundError, or its subclass AmbiguousTaskNameError when several classes match.
    """
    class_path = class_path.strip()
    modules = base_modules_from_env() if base_modules is None else list(base_modules)
    if not PARTIAL_NAME_RE.fullmatch(class_path):
        raise TaskClassNotFoundError(
            f"task class {class_path!r} is invalid: expected a dotted name such as 'package.module.Class', "
            "or a partial name such as 'module.Class', 'Class' or 'etl_task_*'"
        )

    if is_full_name(class_path):
        try:
            return import_task_class(class_path)
        except _NotImportable as exc:
            if not modules:
                raise TaskClassNotFoundError(str(exc)) from exc
            full_name_error: _NotImportable | None = exc
    else:
        full_name_error = None
        if not modules:
            raise TaskClassNotFoundError(
                f"task class {class_path!r} not found: it is not a full module.Class name, and partial "
                f"names need base modules to search; set option {BASE_MODULES_OPTION} in section "
                f"[{RUNTIME_SECTION}] of the config, or ${BASE_MODULES_VARIABLE}"
            )

    try:
        return find_by_partial_name(class_path, modules)
    except AmbiguousTaskNameError:
        raise
    except TaskClassNotFoundError as exc:
        if full_name_error is None:
            raise
        raise TaskClassNotFoundError(f"{full_name_error}; as a partial name: {exc}") from full_name_error


def is_full_name(name: str) -> bool:
    """Return whether ``name`` has the form ``module.Class``: two or more identifiers joined by dots."""
    parts = name.split(".")
    return len(parts) >= 2 and all(part.isidentifier() for part in parts)


class _NotImportable(TaskClassNotFoundError):
    """A full name whose module or class does not exist, so a partial-name search may still find it."""


def import_task_class(class_path: str) -> type[ETLTask]:
    """Import ``module.Class`` and return the class, which must subclass ``ETLTask``."""
    module_name, _, class_name = class_path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise _NotImportable(
                f"task class {class_path!r} not found: no module named {missing!r} "
                f"on the Python path {sys.path}; check the image and PYTHONPATH"
            ) from exc
        # The module exists but imports something that is missing.
        raise TaskClassNotFoundError(
            f"task class {class_path!r} not found: importing module {module_name!r} failed: {exc}"
        ) from exc
    except Exception as exc:
        raise TaskClassNotFoundError(
            f"task class {class_path!r} not found: importing module {module_name!r} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc

    found = getattr(module, class_name, None)
    if found is None:
        raise _NotImportable(
            f"task class {class_path!r} not found: module {module_name!r} has no class {class_name!r}"
            + _task_classes_hint(module)
        )
    if not isinstance(found, type) or not issubclass(found, ETLTask):
        kind = "class" if isinstance(found, type) else type(found).__name__
        raise TaskClassNotFoundError(
            f"task class {class_path!r} is invalid: {kind} {class_name!r} in module {module_name!r} "
            "is not a subclass of etl_runtime.ETLTask"
        )
    return found


def task_class_name(task_class: type[ETLTask]) -> str:
    """Return the ``module.Class`` name of a task class, as ``ETLTask.name`` and ``spec.task`` give it."""
    return f"{task_class.__module__}.{task_class.__qualname__}"


def partial_name_patterns(partial_name: str) -> tuple[str, ...]:
    """Return the fnmatch patterns that a partial name stands for, most specific first."""
    return (partial_name, f"*.{partial_name}.*", f"*.{partial_name}", f"{partial_name}.*")


def find_by_partial_name(partial_name: str, base_modules: Sequence[str]) -> type[ETLTask]:
    """Return the one task class under ``base_modules`` whose ``module.Class`` matches ``partial_name``.

    A class matches when its full name matches any of the patterns ``p``, ``*.p.*``, ``*.p`` and
    ``p.*`` (fnmatch, case-sensitive), so ``p`` may be a full name, a module, a class name or a
    wildcard pattern. Raises AmbiguousTaskNameError listing the candidates when several classes
    match, and TaskClassNotFoundError naming the base modules searched when none does.
    """
    found = find_task_classes(base_modules)
    patterns = partial_name_patterns(partial_name)
    matches = {
        name: task_class
        for name, task_class in found.classes.items()
        if any(fnmatchcase(name, pattern) for pattern in patterns)
    }
    searched = ", ".join(base_modules)
    if len(matches) == 1:
        return next(iter(matches.values()))
    if matches:
        candidates = tuple(sorted(matches))
        raise AmbiguousTaskNameError(
            f"task name {partial_name!r} is ambiguous: it matches {len(candidates)} task classes under "
            f"the base modules {searched}: {', '.join(candidates)}; give more of the module.Class name",
            candidates,
        )
    raise TaskClassNotFoundError(
        f"task class {partial_name!r} not found: no task class under the base modules {searched} "
        f"matches the patterns {', '.join(patterns)}" + found.failures_hint()
    )


@dataclass(frozen=True)
class FoundTaskClasses:
    """Task classes found under base modules by full name, and the modules that failed to import."""

    classes: Mapping[str, type[ETLTask]]
    failures: Mapping[str, str]

    def failures_hint(self) -> str:
        if not self.failures:
            return ""
        listed = "; ".join(f"{module}: {error}" for module, error in sorted(self.failures.items()))
        return f" (modules that failed to import: {listed})"


def find_task_classes(base_modules: Iterable[str]) -> FoundTaskClasses:
    """Import every module under ``base_modules`` and collect the ETLTask subclasses defined there.

    A base module may be a package, which is walked with pkgutil, or a plain module. A class
    counts under the module that defines it, not under modules that import it. ETLTask itself and
    abstract classes are left out. Import errors are collected, not raised.
    """
    classes: dict[str, type[ETLTask]] = {}
    failures: dict[str, str] = {}
    for module in _walk_modules(base_modules, failures):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, ETLTask)
                and value is not ETLTask
                and value.__module__ == module.__name__
                and not inspect.isabstract(value)
            ):
                classes[task_class_name(value)] = value
    return FoundTaskClasses(classes, failures)


def _walk_modules(base_modules: Iterable[str], failures: dict[str, str]) -> Iterable[ModuleType]:
    def record_failure(module_name: str) -> None:
        error = sys.exc_info()[1]
        failures[module_name] = f"{type(error).__name__}: {error}"

    for base in base_modules:
        try:
            package = importlib.import_module(base)
        except Exception as exc:
            failures[base] = f"{type(exc).__name__}: {exc}"
            continue
        yield package
        package_path = getattr(package, "__path__", None)
        if package_path is None:
            continue
        for info in pkgutil.walk_packages(package_path, prefix=f"{base}.", onerror=record_failure):
            try:
                yield importlib.import_module(info.name)
            except Exception as exc:
                failures[info.name] = f"{type(exc).__name__}: {exc}"


def split_module_list(text: str) -> list[str]:
    """Split a comma- or whitespace-separated list of module names, dropping empty entries."""
    return [entry for entry in re.split(r"[\s,]+", text) if entry]


def base_modules_from_env(environ: Mapping[str, str] | None = None) -> list[str]:
    """Return the base modules listed in ``$KUBE_ETL_BASE_MODULES``."""
    environ = os.environ if environ is None else environ
    return split_module_list(environ.get(BASE_MODULES_VARIABLE, ""))


def configured_base_modules(
    config: configparser.ConfigParser, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return the base modules of the config's ``[kube_etl] base_modules``, then of the environment.

    Both sources count. A module listed in both appears once.
    """
    listed = split_module_list(read_option(config, RUNTIME_SECTION, BASE_MODULES_OPTION) or "")
    listed += base_modules_from_env(environ)
    return list(dict.fromkeys(listed))


def _task_classes_hint(module: ModuleType) -> str:
    """Return " (task classes there: A, B)" listing the module's ETLTask subclasses, or ""."""
    names = sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, ETLTask) and value is not ETLTask
    )
    return f" (task classes there: {', '.join(names)})" if names else ""
