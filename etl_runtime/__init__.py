"""kube-etl runtime: the ``ETLTask`` base class that ETL jobs subclass, and its helpers.

Job code imports from here. ``etl-runtime run`` (``etl_runtime.cli``) runs a task class inside
the pod that the operator starts. The task database layer is ``etl_runtime.taskdb``. This
package never imports kopf or the operator.
"""

from etl_runtime._config import DatabaseMetadata
from etl_runtime._declarations import Dependency, TaskDeclarations
from etl_runtime._errors import ConfigError, ParameterError, TaskClassNotFoundError, TaskStopRequested
from etl_runtime._resolve import resolve_task_class
from etl_runtime._statistics import Statistics
from etl_runtime._task import ETLTask, TaskStatus

__all__ = [
    "ConfigError",
    "DatabaseMetadata",
    "Dependency",
    "ETLTask",
    "ParameterError",
    "Statistics",
    "TaskClassNotFoundError",
    "TaskDeclarations",
    "TaskStatus",
    "TaskStopRequested",
    "resolve_task_class",
]
