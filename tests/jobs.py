"""Tiny task classes that the integration tests run as ETLTasks.

The pod runner puts the repository root on the pods' PYTHONPATH, so `tests.jobs.Sleep` resolves in a
pod the way a job module resolves in an image.
"""

from __future__ import annotations

import os
import time

from etl_runtime import ETLTask


class Sleep(ETLTask):
    """Sleep for the `seconds` parameter (default 0.2) and count one row."""

    def load(self) -> None:
        seconds = float(self.get_parameter("seconds", 0.2))
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.raise_if_stop_requested()
            time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        self.statistics.add("rows_read")


class Fail(ETLTask):
    """Count two rows, then raise; the tests check that the count survives the failure."""

    def load(self) -> None:
        self.statistics.add("rows_read", 2)
        raise RuntimeError("Fail job raised on purpose")


class FailUntilAttempt(ETLTask):
    """Fail every attempt before the `succeed_on` parameter (default 3), then succeed."""

    def load(self) -> None:
        attempt = int(os.environ.get("KUBE_ETL_ATTEMPT", "1"))
        succeed_on = int(self.get_parameter("succeed_on", 3))
        if attempt < succeed_on:
            raise RuntimeError(f"attempt {attempt} fails on purpose; attempt {succeed_on} succeeds")
