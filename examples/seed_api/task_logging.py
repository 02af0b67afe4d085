"""Logging: the task's logger adds the task id to every record, and fields go along as ``extra``.

    KUBE_ETL_LOG_FORMAT=json etl-runtime run --local seed_api.task_logging.AuditLogins ...

writes one JSON object per line, with ``task_id`` and the ``extra`` fields as keys.
"""

from __future__ import annotations

import logging

from etl_runtime import ETLTask

LOGINS = [("alice", True), ("bob", False), ("carol", True), ("bob", False)]


class AuditLogins(ETLTask):
    DISPLAY_NAME = "Audit logins"

    def init(self) -> None:
        self.log_logging_level()
        if self.get_parameter("verbose", False):
            self.log.setLevel(logging.DEBUG)

    def load(self) -> None:
        failures = 0
        for user, succeeded in LOGINS:
            self.log.debug("login of %s", user, extra={"user": user, "succeeded": succeeded})
            if not succeeded:
                failures += 1
                self.log.warning("failed login", extra={"user": user})
        self.statistics.set("failed_logins", failures)
