"""A lost node, seen by an operator limited to one namespace, which may not watch Nodes.

Such an operator learns of the lost node from its pods: the node lifecycle controller marks every pod
of a node that stopped reporting not Ready.
"""

from __future__ import annotations

import pytest

from ..conftest import ClusterUnderTest
from .support import OperatorProcess, Tasks, strand_task_on_lost_node

pytestmark = pytest.mark.integration


def test_namespaced_operator_fails_attempt_on_lost_node(
    tasks: Tasks, operator: OperatorProcess | None, test_cluster: ClusterUnderTest
) -> None:
    local = test_cluster.local
    if local is None or local.runner is None or operator is None:
        pytest.skip("losing the node needs the local cluster's pod runner and an operator of the suite")
    # The session's operator watches Nodes; it must not act on this namespace beside the namespaced one.
    operator.stop()
    namespaced = OperatorProcess(
        test_cluster.operator_environment(KUBE_ETL_NODE_LOST_SECONDS="5"),
        test_cluster.work_dir,
        arguments=["--namespace", tasks.namespace],
        name="namespaced-operator",
    )
    try:
        namespaced.start()
        status = strand_task_on_lost_node(tasks, local.runner.pid, local.restart_pod_runner)
        log = namespaced.log()
    finally:
        namespaced.stop()

    assert status["phase"] == "Failed"
    conditions = {item["type"]: item for item in status["conditions"]}
    assert conditions["Complete"]["reason"] == "PodLost"
    assert "has not been Ready for 5 s; the node may be lost" in status["message"]
    # The operator never watched Nodes: its node watch would have logged the node going down.
    assert "is not Ready; its job pods count as lost" not in log
