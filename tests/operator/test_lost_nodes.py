"""Telling from a pod's conditions that the node lifecycle controller gave up on its node."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from etl_operator._reconciler import _marked_not_ready_since

MARKED_AT = "2026-12-04T10:00:30Z"


def pod_status(phase: str, ready: str, containers_ready: str) -> dict[str, Any]:
    return {
        "phase": phase,
        "conditions": [
            {
                "type": "ContainersReady",
                "status": containers_ready,
                "lastTransitionTime": "2026-12-04T10:00:00Z",
            },
            {"type": "Ready", "status": ready, "lastTransitionTime": MARKED_AT},
        ],
    }


def test_marked_pod_counts_from_mark() -> None:
    since = _marked_not_ready_since(pod_status("Running", "False", "True"))
    assert since == datetime(2026, 12, 4, 10, 0, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("phase", "ready", "containers_ready"),
    [
        ("Running", "True", "True"),  # healthy
        ("Running", "False", "False"),  # the container itself is not ready, as the node reported
        ("Pending", "False", "True"),  # not started yet
        ("Succeeded", "False", "True"),  # finished pods are followed by their phase
    ],
)
def test_other_pods_are_not_taken_for_lost(phase: str, ready: str, containers_ready: str) -> None:
    assert _marked_not_ready_since(pod_status(phase, ready, containers_ready)) is None


def test_pod_without_conditions_is_not_taken_for_lost() -> None:
    assert _marked_not_ready_since({"phase": "Running"}) is None
