"""Tiny task classes that the integration tests run as ETLTasks.

The test suite's local cluster puts the repository root on the pods' PYTHONPATH, so `tests.jobs.Sleep`
resolves in a pod the way a job module resolves in an image. The demo's cluster does not.
"""

from __future__ import annotations

import hashlib
import os
import time

from etl_runtime import ChildTask, ETLTask


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


class ParentOfThree(ETLTask):
    """Start three Sleep children, wait for them, and count the status changes delivered to it."""

    def init(self) -> None:
        self.updates: list[tuple[str, str]] = []

    def load(self) -> None:
        for index in range(3):
            self.add_child_task_to_scheduler("tests.jobs.Sleep", {"seconds": 0.2}, f"child {index}")
        self.process_messages(block=True, timeout=120)
        succeeded = [child for child in self.children if child.status == "Succeeded"]
        self.statistics.set("children_succeeded", len(succeeded))
        self.statistics.set("child_updates", len(self.updates))

    def process_child_status_update(self, child: ChildTask, status: str) -> None:
        self.updates.append((child.name or str(child.request_id), status))


class ParentThatLeaves(ETLTask):
    """Request the children named in the `children` parameter (task classes) and end without waiting.

    The `delay_seconds` parameter (default 0) makes it wait that long before the requests.
    """

    def load(self) -> None:
        time.sleep(float(self.get_parameter("delay_seconds", 0)))
        for task_class in self.get_parameter("children"):
            self.add_child_task_to_scheduler(task_class, {"seconds": 1.0})


class ApprovingParent(ETLTask):
    """Request two children that need approval; approve the one displayed "approve me", reject the other."""

    def needs_to_ok_child_runs(self) -> bool:
        return True

    def load(self) -> None:
        self.add_child_task_to_scheduler("tests.jobs.Sleep", {"seconds": 0.1}, "approve me")
        self.add_child_task_to_scheduler("tests.jobs.Sleep", {"seconds": 0.1}, "reject me")
        # Decide only once both children wait, so the test finds them in AwaitingApproval.
        deadline = time.monotonic() + 60
        while any(child.task_id is None or child.status != "AwaitingApproval" for child in self.children):
            if time.monotonic() > deadline:
                raise TimeoutError(f"children did not reach AwaitingApproval: {self.children}")
            time.sleep(0.1)
        self.process_messages(block=True, timeout=120)

    def process_child_run_requested(self, child: ChildTask) -> bool:
        return child.display_name == "approve me"


class CheckSecretToken(ETLTask):
    """Check the secret parameter `api_token` against the `expected_sha256` parameter.

    Records `token_matches` (whether the SHA-256 of the value it got is the expected one) and
    `token_length`, and logs the token, so a test can check that the log masks it. The expected
    value itself never reaches the job as an ordinary parameter. With `fail` true, it then raises
    an error whose message contains the token.
    """

    def load(self) -> None:
        token = self.get_parameter("api_token")
        digest = hashlib.sha256(str(token).encode()).hexdigest()
        self.statistics.set("token_matches", digest == self.get_parameter("expected_sha256"))
        self.statistics.set("token_length", len(str(token)))
        self.log.info("calling the API with token %s", token)
        if self.get_parameter("fail", False):
            raise RuntimeError(f"the API rejected token {token}")
