"""JSON checks for parameter and statistic values before they reach a JSONB column.

Called by ``ETLTask.set_parameter`` (to reject a bad value when it is set, not when it is written)
and by ``etl_runtime.taskdb`` before every write.
"""

from __future__ import annotations

import json
from typing import Any

from etl_runtime._errors import ParameterError


def json_problem(value: Any) -> str | None:
    """Return why ``value`` cannot be stored as JSON, or None when it can.

    NaN and infinity are rejected because Postgres JSONB rejects them.
    """
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def check_parameter_value(name: str, value: Any) -> None:
    """Raise ParameterError naming the parameter when ``value`` is not JSON-serialisable."""
    problem = json_problem(value)
    if problem is not None:
        raise ParameterError(
            f"parameter {name!r} has a value of type {type(value).__name__} that cannot be stored as JSON "
            f"({problem}); convert it to a string, number, boolean, list or dict, "
            "or set it with local_only=True"
        )
