"""Background processes that outlive the command that started them, recorded so another command can stop them.

The cluster's components use these through `cluster`; the demo starts the operator with them.
"""

from etl_localcluster._processes import (
    ProcessError,
    ProcessRecord,
    is_alive,
    start_process,
    stop_process,
    tail,
)

__all__ = ["ProcessError", "ProcessRecord", "is_alive", "start_process", "stop_process", "tail"]
