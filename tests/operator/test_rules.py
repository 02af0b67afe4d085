"""The scheduling rules: dependencies, cycles, conflicts and admission order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from etl_operator._rules import (
    AdmissionResult,
    admit,
    claims_of,
    conflicts,
    evaluate_dependencies,
    find_cycle,
)
from etl_operator._spec import TaskView

from .factories import task_view


def lookup_in(*views: TaskView):  # type: ignore[no-untyped-def]
    by_key = {view.key: view for view in views}
    return lambda namespace, name: by_key.get((namespace, name))


def test_dependency_on_succeeded_task_is_met() -> None:
    upstream = task_view("a", phase="Succeeded")
    task = task_view("b", dependsOn=[{"name": "a"}])
    result = evaluate_dependencies(task, lookup_in(upstream), [])
    assert result.met


@pytest.mark.parametrize("phase", [None, "Pending", "Waiting", "Blocked", "Starting", "Running", "Retrying"])
def test_dependency_not_finished_waits(phase: str | None) -> None:
    upstream = task_view("a", phase=phase)
    task = task_view("b", dependsOn=[{"name": "a"}])
    result = evaluate_dependencies(task, lookup_in(upstream), [])
    assert not result.met
    assert result.waiting_for == ("a",)
    assert result.failed == ()


@pytest.mark.parametrize("phase", ["Failed", "Cancelled", "UpstreamFailed"])
def test_unsuccessful_dependency_fails_dependent(phase: str) -> None:
    upstream = task_view("a", phase=phase)
    task = task_view("b", dependsOn=[{"name": "a"}])
    result = evaluate_dependencies(task, lookup_in(upstream), [])
    assert result.failed == ("a",)
    assert not result.met


def test_missing_dependency_is_waited_for() -> None:
    task = task_view("b", dependsOn=[{"name": "later"}])
    result = evaluate_dependencies(task, lookup_in(), [])
    assert result.missing == ("later",)
    assert result.waiting_for == ("later",)


def test_pattern_dependency_waits_for_unfinished_match() -> None:
    running = task_view("dim", "warehouse.build_dim_date", phase="Running")
    done = task_view("dim2", "warehouse.build_dim_store", phase="Succeeded")
    other = task_view("fact-x", "warehouse.load_fact", phase="Running")
    task = task_view("fact", "warehouse.load_fact", dependsOn=[{"task": "warehouse.build_dim_*"}])
    result = evaluate_dependencies(task, lookup_in(), [running, done, other, task])
    assert result.waiting_for == ("dim",)


def test_pattern_dependency_ignores_the_task_itself() -> None:
    task = task_view("dim", "warehouse.build_dim_date", dependsOn=[{"task": "warehouse.build_dim_*"}])
    assert evaluate_dependencies(task, lookup_in(), [task]).met


def test_cycle_is_named_in_order() -> None:
    a = task_view("a", dependsOn=[{"name": "b"}])
    b = task_view("b", dependsOn=[{"name": "c"}])
    c = task_view("c", dependsOn=[{"name": "a"}])
    assert find_cycle(a, lookup_in(a, b, c)) == ("a", "b", "c", "a")


def test_self_dependency_is_a_cycle() -> None:
    a = task_view("a", dependsOn=[{"name": "a"}])
    assert find_cycle(a, lookup_in(a)) == ("a", "a")


def test_chain_without_cycle_has_none() -> None:
    a = task_view("a")
    b = task_view("b", dependsOn=[{"name": "a"}])
    c = task_view("c", dependsOn=[{"name": "b"}, {"name": "missing"}])
    assert find_cycle(c, lookup_in(a, b, c)) is None


def test_cycle_elsewhere_does_not_count() -> None:
    x = task_view("x", dependsOn=[{"name": "y"}])
    y = task_view("y", dependsOn=[{"name": "x"}])
    a = task_view("a", dependsOn=[{"name": "x"}])
    assert find_cycle(a, lookup_in(a, x, y)) is None


@pytest.mark.parametrize(
    ("a_spec", "b_spec", "expected"),
    [
        ({}, {}, True),
        ({"allowConcurrentRuns": True}, {}, True),
        ({"allowConcurrentRuns": True}, {"allowConcurrentRuns": True}, False),
    ],
    ids=["same-class-default", "one-allows", "both-allow"],
)
def test_same_class_conflict(a_spec: dict[str, bool], b_spec: dict[str, bool], expected: bool) -> None:
    a = task_view("a", "jobs.Load", **a_spec)
    b = task_view("b", "jobs.Load", **b_spec)
    assert conflicts(a, b) is expected
    assert conflicts(b, a) is expected


@pytest.mark.parametrize("entry", ["jobs.load_*", "b", "jobs.load_stocks.LoadStocks"])
def test_mutex_listing_is_symmetric(entry: str) -> None:
    a = task_view("a", "jobs.load_weather.LoadWeather", mutuallyExclusiveWith=[entry])
    b = task_view("b", "jobs.load_stocks.LoadStocks")
    assert conflicts(a, b)
    assert conflicts(b, a)


def test_different_classes_do_not_conflict() -> None:
    assert not conflicts(task_view("a", "jobs.A"), task_view("b", "jobs.B"))


def test_other_namespace_does_not_conflict() -> None:
    a = task_view("a", "jobs.A", namespace="one")
    b = task_view("b", "jobs.A", namespace="two")
    assert not conflicts(a, b)


def test_claims_list_class_and_mutex_entries() -> None:
    view = task_view("a", "jobs.A", mutuallyExclusiveWith=["warehouse", "jobs.B*"])
    assert claims_of(view) == ("mutex:jobs.B*", "mutex:warehouse", "task:jobs.A")


def no_limit(namespace: str) -> int:
    return 0


def test_admission_takes_queue_order() -> None:
    waiters = [task_view(f"t{i:02d}", "jobs.Same") for i in (3, 1, 2)]
    result = admit(waiters, [], no_limit)
    assert [view.name for view in result.admitted] == ["t01"]
    assert result.blocked_by[("default", "t02")] == ("t01",)


def test_admission_prefers_priority_then_creation_time() -> None:
    early = task_view("z-early", "jobs.Same", created="2026-12-04T10:00:00Z")
    late = task_view("a-late", "jobs.Same", created="2026-12-04T10:00:05Z")
    urgent = task_view("m-urgent", "jobs.Same", created="2026-12-04T10:00:09Z", priority=5)
    assert [v.name for v in admit([late, early], [], no_limit).admitted] == ["z-early"]
    assert [v.name for v in admit([late, early, urgent], [], no_limit).admitted] == ["m-urgent"]


def test_free_waiter_is_not_held_behind_blocked_one() -> None:
    holder = task_view("holder", "jobs.A", phase="Running")
    first = task_view("first", "jobs.A", created="2026-12-04T10:00:00Z")
    second = task_view("second", "jobs.B", created="2026-12-04T10:00:01Z")
    result = admit([first, second], [holder], no_limit)
    assert [view.name for view in result.admitted] == ["second"]
    assert result.blocked_by[first.key] == ("holder",)


def test_crossed_claims_admit_one_then_other() -> None:
    ab = task_view("ab", "jobs.X", mutuallyExclusiveWith=["a", "b"], created="2026-12-04T10:00:00Z")
    ba = task_view("ba", "jobs.Y", mutuallyExclusiveWith=["b", "a"], created="2026-12-04T10:00:01Z")
    result = admit([ab, ba], [], no_limit)
    assert [view.name for view in result.admitted] == ["ab"]
    assert result.blocked_by[ba.key] == ("ab",)


def test_shared_lock_name_conflicts() -> None:
    a = task_view("a", "jobs.A", mutuallyExclusiveWith=["warehouse"])
    b = task_view("b", "jobs.B", mutuallyExclusiveWith=["warehouse"])
    assert conflicts(a, b)


def test_concurrency_limit_holds_back_extra_tasks() -> None:
    running = task_view("r", "jobs.R", phase="Running")
    waiters = [task_view(f"w{i}", f"jobs.W{i}") for i in range(3)]
    result = admit(waiters, [running], lambda namespace: 2)
    assert [view.name for view in result.admitted] == ["w0"]
    assert result.over_limit == {("default", "w1"), ("default", "w2")}


def admit_by_comparing_all(
    candidates: list[TaskView], holders: list[TaskView], limit_for: Callable[[str], int]
) -> AdmissionResult:
    """The admission rule written plainly: every candidate is compared with every holder."""
    holders_so_far = list(holders)
    result = AdmissionResult()
    for candidate in sorted(candidates, key=lambda view: view.queue_order):
        blockers = tuple(sorted(holder.name for holder in holders_so_far if conflicts(candidate, holder)))
        if blockers:
            result.blocked_by[candidate.key] = blockers
            continue
        limit = limit_for(candidate.namespace)
        if limit and sum(1 for holder in holders_so_far if holder.namespace == candidate.namespace) >= limit:
            result.over_limit.add(candidate.key)
            continue
        result.admitted.append(candidate)
        holders_so_far.append(candidate)
    return result


generated_task = st.fixed_dictionaries(
    {
        "namespace": st.sampled_from(["blue", "green"]),
        "task": st.sampled_from(["jobs.A", "jobs.B", "jobs.load_fact", "jobs.load_dim"]),
        "lists": st.lists(st.sampled_from(["jobs.load_*", "jobs.A", "t3", "lock", "t*"]), max_size=2),
        "concurrent": st.booleans(),
        "priority": st.integers(min_value=0, max_value=2),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    tasks=st.lists(generated_task, min_size=1, max_size=14),
    holder_count=st.integers(min_value=0, max_value=5),
    limit=st.integers(min_value=0, max_value=4),
)
def test_indexed_admission_matches_comparing_every_pair(
    tasks: list[dict[str, Any]], holder_count: int, limit: int
) -> None:
    views = [
        task_view(
            f"t{index}",
            entry["task"],
            namespace=entry["namespace"],
            phase="Running" if index < holder_count else None,
            created=f"2026-12-04T10:00:{index:02d}Z",
            mutuallyExclusiveWith=entry["lists"],
            allowConcurrentRuns=entry["concurrent"],
            priority=entry["priority"],
        )
        for index, entry in enumerate(tasks)
    ]
    holders, candidates = views[:holder_count], views[holder_count:]
    expected = admit_by_comparing_all(candidates, holders, lambda namespace: limit)
    actual = admit(candidates, holders, lambda namespace: limit)
    assert [view.key for view in actual.admitted] == [view.key for view in expected.admitted]
    assert actual.blocked_by == expected.blocked_by
    assert actual.over_limit == expected.over_limit


def test_store_drops_managed_fields() -> None:
    from etl_operator._store import TaskStore

    from .factories import task_body

    body = task_body("a")
    body["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    body["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "{}", "keep": "1"}
    store = TaskStore()
    store.upsert(body)
    stored = store.body(("default", "a"))
    assert stored is not None
    assert "managedFields" not in stored["metadata"]
    assert stored["metadata"]["annotations"] == {"keep": "1"}
    assert "managedFields" in body["metadata"]
