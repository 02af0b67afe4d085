"""Parents and children: a nightly batch that requests one child run per region.

``NightlyBatch`` requests a ``LoadRegion`` child per entry of ``regions``, approves each unless
its region is in ``skip``, and waits until every child has finished. The runtime writes the
requests to the task database; the operator creates each child ETLTask, named
``<parent-name>-c<request id>``, and records its runs, which ``process_messages`` reads.
"""

from __future__ import annotations

from etl_runtime import ChildTask, ETLTask, WorkflowFinished


class LoadRegion(ETLTask):
    DISPLAY_NAME = "Load one region"

    def load(self) -> None:
        region = self.get_parameter("region")
        parent = self.parent_task
        if parent is not None:
            self.log.info("loading %s for %s (task run %s)", region, parent.name, parent.task_id)
        if region == self.get_parameter("fail_region", None):
            raise RuntimeError(f"region {region} failed on purpose")
        self.statistics.set("region", region)


class NightlyBatch(ETLTask):
    DISPLAY_NAME = "Nightly batch"

    def needs_to_ok_child_runs(self) -> bool:
        return True

    def process_child_run_requested(self, child: ChildTask) -> bool:
        return child.parameters.get("region") not in self.get_parameter("skip", [])

    def process_child_status_update(self, child: ChildTask, status: str) -> None:
        self.log.info("%s is %s", child.describe(), status)
        if child.is_finished:
            self.statistics.add(f"children.{status}")
        if status == "Failed" and self.get_parameter("stop_on_failure", True):
            raise WorkflowFinished(f"{child.describe()} failed")

    def load(self) -> None:
        fail_region = self.get_parameter("fail_region", None)
        for region in self.get_parameter("regions", ["emea", "apac", "amer"]):
            self.add_child_task_to_scheduler(
                LoadRegion, {"region": region, "fail_region": fail_region}, display_name=f"Load {region}"
            )
        self.process_messages(block=True, timeout=float(self.get_parameter("timeout_seconds", 3600)))

        failed = [child.describe() for child in self.children if child.status == "Failed"]
        if failed:
            raise RuntimeError(f"{len(failed)} child run(s) failed: {', '.join(failed)}")
