"""kube-etl runtime: the ``ETLTask`` base class that ETL jobs subclass, and its helpers.

Job code imports from here. ``etl-runtime run`` (``etl_runtime.cli``) runs a task class inside
the pod that the operator starts. The task database layer is ``etl_runtime.taskdb``. This
package never imports kopf, kubernetes or the operator.
"""

from etl_runtime._children import ChildTask, RelatedTask
from etl_runtime._config import DatabaseMetadata
from etl_runtime._declarations import Dependency, TaskDeclarations
from etl_runtime._errors import (
    AmbiguousTaskNameError,
    ConfigError,
    ParameterError,
    TaskClassNotFoundError,
    TaskStopRequested,
    WorkflowFinished,
)
from etl_runtime._manifest import build_manifest
from etl_runtime._resolve import find_task_classes, resolve_task_class
from etl_runtime._secrets import SECRET_MASK, secret_parameter_variable
from etl_runtime._statistics import Statistics
from etl_runtime._task import ETLTask, TaskStatus

__all__ = [
    "SECRET_MASK",
    "AmbiguousTaskNameError",
    "ChildTask",
    "ConfigError",
    "DatabaseMetadata",
    "Dependency",
    "ETLTask",
    "ParameterError",
    "RelatedTask",
    "Statistics",
    "TaskClassNotFoundError",
    "TaskDeclarations",
    "TaskStatus",
    "TaskStopRequested",
    "WorkflowFinished",
    "build_manifest",
    "find_task_classes",
    "resolve_task_class",
    "secret_parameter_variable",
]
