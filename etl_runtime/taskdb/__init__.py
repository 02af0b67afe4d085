"""The task database: the record of every ETLTask run, kept in Postgres.

The operator imports this package to create a row per attempt and record phase changes. The
runtime uses it inside the pod to read parameters and write statistics and errors. The schema is
owned by the Alembic migrations in ``migrations/``, applied by ``TaskDatabase.upgrade``.
"""

from etl_runtime._errors import ParameterError
from etl_runtime.taskdb._database import DATABASE_URL_VARIABLE, TaskDatabase
from etl_runtime.taskdb._records import (
    TERMINAL_STATUSES,
    RunRecord,
    StatusChange,
    TaskDatabaseError,
    TaskNotFoundError,
)

__all__ = [
    "DATABASE_URL_VARIABLE",
    "TERMINAL_STATUSES",
    "ParameterError",
    "RunRecord",
    "StatusChange",
    "TaskDatabase",
    "TaskDatabaseError",
    "TaskNotFoundError",
]
