"""Resolution of a task class name (``module.Class``) to the class.

Called by ``etl-runtime run`` with the ``$KUBE_ETL_TASK_CLASS`` that the operator copied from
``spec.task``, or with the class given to ``--local``. Error messages name the module and class
that were tried, so that a wrong image or PYTHONPATH is easy to spot in the pod log.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from etl_runtime._errors import TaskClassNotFoundError
from etl_runtime._task import ETLTask


def resolve_task_class(class_path: str) -> type[ETLTask]:
    """Import ``module.Class`` and return the class, which must subclass ``ETLTask``."""
    class_path = class_path.strip()
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name or not all(part.isidentifier() for part in class_path.split(".")):
        raise TaskClassNotFoundError(
            f"task class {class_path!r} is invalid: expected a dotted name such as 'package.module.ClassName'"
        )

    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        if module_name == missing or module_name.startswith(missing + "."):
            raise TaskClassNotFoundError(
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
        raise TaskClassNotFoundError(
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


def _task_classes_hint(module: ModuleType) -> str:
    """Return " (task classes there: A, B)" listing the module's ETLTask subclasses, or ""."""
    names = sorted(
        name
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, ETLTask) and value is not ETLTask
    )
    return f" (task classes there: {', '.join(names)})" if names else ""
