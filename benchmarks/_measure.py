"""The measurements. Each returns a JSON-ready dict of raw figures for one run.

Hand-off latency is the time between two watch events that this process receives on one pod watch:
the MODIFIED event in which the pod runner's status patch makes a pod `Succeeded`, and the ADDED event
of the next pod. Both arrival times come from `time.monotonic()` in the same process, so the watch's
delivery delay appears at both ends.
"""

from __future__ import annotations

import itertools
import math
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import text

from ._env import Environment
from ._kube import JSON, ObjectTimes, Recorder
from ._stats import latency_summary

CREATE_THREADS = 8
# The trivial pod that the floor client runs; the pod runner starts it as a local process.
FLOOR_COMMAND = ["true"]
# Every benchmark task runs tests.jobs.Sleep, and two runs of one class conflict unless they allow it.
PARALLEL: JSON = {"allowConcurrentRuns": True}
# The CRD's maximum number of spec.dependsOn entries.
MAX_DEPENDENCIES = 100
TERMINAL = frozenset({"Succeeded", "Failed", "UpstreamFailed", "Cancelled"})


def _create_all(env: Environment, namespace: str, specs: Iterable[tuple[str, JSON]]) -> None:
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(lambda item: env.create_task(namespace, item[0], **item[1]), specs))


def _pod(name: str) -> str:
    """Return the name of the pod of a task's first attempt."""
    return f"{name}-1"


def _handoffs(order: list[str], pods: dict[str, ObjectTimes]) -> list[float]:
    """Return the gaps between each pod in ORDER turning Succeeded and the next pod being added."""
    gaps: list[float] = []
    for previous, current in itertools.pairwise(order):
        succeeded = pods[previous].phases["Succeeded"]
        added = pods[current].added
        if added is None:
            raise RuntimeError(f"pod {current} was never seen being added")
        gaps.append(added - succeeded)
    return gaps


def _database_handoffs(names: list[str], history: dict[str, dict[str, float]]) -> list[float]:
    """Return the gaps between each task's Succeeded record and the next task's Starting record."""
    return [
        history[current]["Starting"] - history[previous]["Succeeded"]
        for previous, current in itertools.pairwise(names)
    ]


def _all_succeeded(count: int) -> Callable[[dict[str, ObjectTimes]], bool]:
    return lambda times: sum(1 for item in times.values() if "Succeeded" in item.phases) >= count


def _all_finished(count: int) -> Callable[[dict[str, ObjectTimes]], bool]:
    return lambda times: sum(1 for item in times.values() if TERMINAL & item.phases.keys()) >= count


def _failed(recorder: Recorder) -> int:
    return sum(1 for times in recorder.times.values() if "Failed" in times.phases)


def _check_failures(recorder: Recorder) -> None:
    failed = [name for name, times in recorder.times.items() if "Failed" in times.phases]
    if failed:
        raise RuntimeError(f"{len(failed)} objects Failed, for example {sorted(failed)[:5]}")


def write_delta(before: Counter[tuple[str, str]], after: Counter[tuple[str, str]]) -> dict[str, int]:
    """Return the write requests between two counter readings, keyed "VERB resource"."""
    delta = {
        f"{verb} {resource}": after[(verb, resource)] - before[(verb, resource)] for verb, resource in after
    }
    return {key: value for key, value in sorted(delta.items()) if value}


def chain(env: Environment, count: int, timeout: float) -> JSON:
    """Measure dependency hand-off over a chain of COUNT tasks, each depending on the one before."""
    namespace = env.new_namespace("chain")
    pods = Recorder(env.kube, env.pods_path(namespace)).start()
    tasks = Recorder(env.kube, env.tasks_path(namespace)).start()
    names = [f"c-{index:04d}" for index in range(count)]
    specs: list[tuple[str, JSON]] = [(names[0], {})] + [
        (name, {"dependsOn": [{"name": previous}]}) for previous, name in itertools.pairwise(names)
    ]
    before = env.kube.write_counts()
    began = time.monotonic()
    _create_all(env, namespace, specs)
    tasks.wait(_all_succeeded(count), timeout, f"{count} chained tasks to succeed")
    elapsed = time.monotonic() - began
    after = env.kube.write_counts()
    pods.stop()
    tasks.stop()
    _check_failures(tasks)
    return {
        "tasks": count,
        "seconds": elapsed,
        "handoff_watch": latency_summary(_handoffs([_pod(name) for name in names], pods.times)),
        "handoff_taskdb": latency_summary(_database_handoffs(names, env.status_history(namespace))),
        "writes": write_delta(before, after),
    }


def mutex(env: Environment, count: int, timeout: float) -> JSON:
    """Measure mutex hand-off over COUNT tasks that all list the same lock."""
    namespace = env.new_namespace("mutex")
    pods = Recorder(env.kube, env.pods_path(namespace)).start()
    tasks = Recorder(env.kube, env.tasks_path(namespace)).start()
    names = [f"m-{index:04d}" for index in range(count)]
    _create_all(env, namespace, [(name, {**PARALLEL, "mutuallyExclusiveWith": ["lock"]}) for name in names])
    tasks.wait(_all_succeeded(count), timeout, f"{count} tasks on one lock to succeed")
    pods.stop()
    tasks.stop()
    _check_failures(tasks)
    order = sorted(pods.times, key=lambda name: pods.times[name].added or 0.0)
    overlaps = sum(
        1
        for previous, current in itertools.pairwise(order)
        if (pods.times[current].added or 0.0) < pods.times[previous].phases["Succeeded"]
    )
    task_order = [name.rsplit("-", 1)[0] for name in order]
    return {
        "tasks": count,
        "overlaps": overlaps,
        "handoff_watch": latency_summary(_handoffs(order, pods.times)),
        "handoff_taskdb": latency_summary(_database_handoffs(task_order, env.status_history(namespace))),
    }


def floor(env: Environment, count: int, timeout: float) -> JSON:
    """Measure the floor: a client that creates the next pod when the previous one succeeded.

    The client reacts on the recording watch's own thread, so the ADDED event of the next pod is read
    after the create request returned, as the operator's pod would be.
    """
    namespace = env.new_namespace("floor")
    recorder = Recorder(env.kube, env.pods_path(namespace))
    path = env.pods_path(namespace)
    created: set[str] = set()

    def create(index: int) -> None:
        body = {
            "metadata": {"name": f"floor-{index:04d}"},
            "spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "main", "image": "none", "command": FLOOR_COMMAND}],
            },
        }
        env.kube.request("POST", path, body)

    def on_event(kind: str, name: str, body: JSON) -> None:
        index = int(name.rsplit("-", 1)[1]) + 1
        if (body.get("status") or {}).get("phase") != "Succeeded" or index >= count or name in created:
            return
        created.add(name)
        create(index)

    recorder.on_event(on_event)
    recorder.start()
    create(0)
    recorder.wait(_all_succeeded(count), timeout, f"{count} floor pods to succeed")
    recorder.stop()
    order = [f"floor-{index:04d}" for index in range(count)]
    return {"pods": count, "handoff_watch": latency_summary(_handoffs(order, recorder.times))}


def _throughput_run(env: Environment, namespace: str, specs: list[tuple[str, JSON]], timeout: float) -> JSON:
    pods = Recorder(env.kube, env.pods_path(namespace)).start()
    tasks = Recorder(env.kube, env.tasks_path(namespace)).start()
    count = len(specs)

    before = env.kube.write_counts()
    busy_before = _machine_busy()
    _, operator_cpu_before = _process_reading(env.operator.pid)
    began = time.monotonic()
    _create_all(env, namespace, specs)
    created = time.monotonic() - began
    # A failed pod does not stop the run: the figures count it, and the result says how many failed.
    tasks.wait(_all_finished(count), timeout, f"{count} tasks to finish")
    finished = time.monotonic() - began
    after = env.kube.write_counts()
    busy_after = _machine_busy()
    _, operator_cpu_after = _process_reading(env.operator.pid)
    pods.stop()
    tasks.stop()

    added = sorted(times.added for times in pods.times.values() if times.added is not None)
    last_start = added[-1] - began
    run_seconds = [
        times.phases["Succeeded"] - times.phases["Running"]
        for times in pods.times.values()
        if "Running" in times.phases and "Succeeded" in times.phases
    ]
    return {
        "tasks": count,
        "failed": _failed(tasks),
        "create_seconds": created,
        "first_pod_seconds": added[0] - began,
        "last_pod_seconds": last_start,
        "starts_per_second": count / last_start,
        "all_finished_seconds": finished,
        "pod_running_seconds_median": statistics.median(run_seconds),
        "machine_cpu_busy_fraction": _busy_fraction(busy_before, busy_after),
        "operator_cpu_seconds": operator_cpu_after - operator_cpu_before,
        "writes": write_delta(before, after),
    }


def throughput(env: Environment, count: int, max_concurrent: int, timeout: float) -> JSON:
    """Create COUNT independent tasks at once; measure starts per second and time until all succeed."""
    annotations = {"etl.kube-etl.io/max-concurrent-tasks": str(max_concurrent)} if max_concurrent else {}
    namespace = env.new_namespace("flat", annotations)
    specs: list[tuple[str, JSON]] = [(f"t-{index:04d}", dict(PARALLEL)) for index in range(count)]
    return _throughput_run(env, namespace, specs, timeout)


def fan(env: Environment, count: int, max_concurrent: int, timeout: float) -> JSON:
    """Measure the same for a fan-out/fan-in DAG of COUNT tasks.

    One root, then the middle tasks that depend on it, then join tasks that depend on up to
    MAX_DEPENDENCIES middle tasks each, and one sink that depends on every join task. The joins exist
    because the CRD allows at most 100 `dependsOn` entries.
    """
    annotations = {"etl.kube-etl.io/max-concurrent-tasks": str(max_concurrent)} if max_concurrent else {}
    namespace = env.new_namespace("fan", annotations)
    joins = max(1, math.ceil((count - 2) / (MAX_DEPENDENCIES + 1)))
    middle = [f"f-{index:04d}" for index in range(count - 2 - joins)]
    groups = [middle[start : start + MAX_DEPENDENCIES] for start in range(0, len(middle), MAX_DEPENDENCIES)]
    specs: list[tuple[str, JSON]] = [("f-root", dict(PARALLEL))]
    specs += [(name, {**PARALLEL, "dependsOn": [{"name": "f-root"}]}) for name in middle]
    specs += [
        (f"f-join-{index:02d}", {**PARALLEL, "dependsOn": [{"name": name} for name in group]})
        for index, group in enumerate(groups)
    ]
    join_names = [f"f-join-{index:02d}" for index in range(len(groups))]
    specs.append(("f-sink", {**PARALLEL, "dependsOn": [{"name": name} for name in join_names]}))
    return _throughput_run(env, namespace, specs, timeout)


def starts(env: Environment, count: int, timeout: float) -> JSON:
    """Create COUNT independent tasks whose pods no node can take; measure how fast the operator starts them.

    The pods stay Pending, so no pod process competes with the operator for the CPU: this is the
    operator's own start rate, from the creation of the first task to the creation of the last pod.
    """
    namespace = env.new_namespace("starts")
    pods = Recorder(env.kube, env.pods_path(namespace)).start()
    unschedulable = {**PARALLEL, "podTemplate": {"nodeSelector": {"kube-etl.io/benchmark": "no-such-node"}}}
    before = env.kube.write_counts()
    _, operator_cpu_before = _process_reading(env.operator.pid)
    began = time.monotonic()
    _create_all(env, namespace, [(f"s-{index:04d}", unschedulable) for index in range(count)])
    created = time.monotonic() - began
    pods.wait(lambda times: len(times) >= count, timeout, f"{count} pods to be created")
    last_pod = max(times.added or 0.0 for times in pods.times.values()) - began
    _, operator_cpu_after = _process_reading(env.operator.pid)
    after = env.kube.write_counts()
    pods.stop()
    # Deleting the namespace removes the Pending pods and their tasks.
    env.kube.request("DELETE", f"/api/v1/namespaces/{namespace}")
    return {
        "tasks": count,
        "create_seconds": created,
        "last_pod_seconds": last_pod,
        "starts_per_second": count / last_pod,
        "operator_cpu_seconds": operator_cpu_after - operator_cpu_before,
        "writes": write_delta(before, after),
    }


def _process_reading(pid: int) -> tuple[int, float]:
    """Return a process's resident set size in bytes and its CPU time in seconds, from /proc."""
    rss = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return rss, ticks / os.sysconf("SC_CLK_TCK")


def _machine_busy() -> tuple[int, int]:
    """Return the machine's busy and total CPU ticks since boot, from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return sum(ticks) - idle, sum(ticks)


def _busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    return (after[0] - before[0]) / max(1, after[1] - before[1])


def create_finished(env: Environment, namespace: str, count: int) -> float:
    """Create COUNT ETLTasks and set a Succeeded status through the status subresource; return seconds."""
    path = env.tasks_path(namespace)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def one(index: int) -> None:
        name = f"done-{index:05d}"
        env.create_task(namespace, name)
        status = {
            "phase": "Succeeded",
            "attempt": 1,
            "podName": _pod(name),
            "startTime": now,
            "completionTime": now,
            "message": "created finished by the benchmark",
        }
        env.kube.request("PATCH", f"{path}/{name}/status", {"status": status}, patch=True)

    began = time.monotonic()
    with ThreadPoolExecutor(CREATE_THREADS) as pool:
        list(pool.map(one, range(count)))
    return time.monotonic() - began


def at_rest(env: Environment, count: int, idle_seconds: float, restarts: int) -> JSON:
    """Measure the operator's cost with COUNT finished ETLTasks present; the operator must be stopped."""
    namespace = env.new_namespace("rest")
    setup_seconds = create_finished(env, namespace, count)
    start_seconds = [env.operator.start()]
    # Let the start-up work (listing, priming) settle before the idle window.
    time.sleep(5)
    before = env.kube.write_counts()
    rss_before, cpu_before = _process_reading(env.operator.pid)
    time.sleep(idle_seconds)
    rss_after, cpu_after = _process_reading(env.operator.pid)
    after = env.kube.write_counts()
    for _ in range(restarts):
        env.operator.stop()
        start_seconds.append(env.operator.start())
    time.sleep(5)
    rss_restarted, _ = _process_reading(env.operator.pid)
    return {
        "tasks": count,
        "setup_seconds": setup_seconds,
        "idle_seconds": idle_seconds,
        "rss_bytes": rss_after,
        "rss_bytes_at_window_start": rss_before,
        "rss_bytes_after_restart": rss_restarted,
        "cpu_fraction": (cpu_after - cpu_before) / idle_seconds,
        "writes_in_window": write_delta(before, after),
        "start_seconds": start_seconds,
    }


def admission(env: Environment, samples: int, timeout: float) -> list[float]:
    """Create SAMPLES tasks one after another; return seconds from each create to its Starting event."""
    namespace = env.new_namespace("admit")
    tasks = Recorder(env.kube, env.tasks_path(namespace)).start()
    latencies: list[float] = []
    for index in range(samples):
        name = f"a-{index:04d}"
        began = time.monotonic()
        env.create_task(namespace, name)
        tasks.wait(
            lambda times, name=name: "Starting" in times.get(name, ObjectTimes()).phases,  # type: ignore[misc]
            timeout,
            f"{name} to start",
        )
        latencies.append(tasks.times[name].phases["Starting"] - began)
        tasks.wait(
            lambda times, name=name: "Succeeded" in times.get(name, ObjectTimes()).phases,  # type: ignore[misc]
            timeout,
            f"{name} to succeed",
        )
    tasks.stop()
    return latencies


def insert_history(env: Environment, runs: int) -> float:
    """Insert RUNS finished runs, each with one status record, in one SQL statement; return seconds."""
    began = time.monotonic()
    with env.engine.begin() as connection:
        connection.execute(
            text(
                "WITH runs AS ("
                " INSERT INTO task_run (namespace, name, uid, attempt, task_class, status, pod_name,"
                " created_at, started_at, finished_at, exit_code)"
                " SELECT 'history', 'h-' || g, 'history-' || g, 1, 'tests.jobs.Sleep', 'Succeeded',"
                " 'h-' || g || '-1', now() - g * interval '1 minute', now() - g * interval '1 minute',"
                " now() - g * interval '1 minute' + interval '1 second', 0"
                " FROM generate_series(1, :runs) AS g RETURNING id, finished_at)"
                " INSERT INTO task_status_history (task_id, status, recorded_at)"
                " SELECT id, 'Succeeded', finished_at FROM runs"
            ),
            {"runs": runs},
        )
    settle_database(env)
    return time.monotonic() - began


def delete_history(env: Environment) -> float:
    """Delete the runs that insert_history added (their status records go by cascade); return seconds."""
    began = time.monotonic()
    with env.engine.begin() as connection:
        connection.execute(text("DELETE FROM task_run WHERE namespace = 'history'"))
    settle_database(env)
    return time.monotonic() - began


def settle_database(env: Environment) -> None:
    """Vacuum and analyze the run tables, then write a checkpoint.

    The work that a bulk insert or delete leaves for autovacuum and the checkpointer then does not fall
    into the next samples.
    """
    with env.admin_engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text("VACUUM ANALYZE task_run"))
        connection.execute(text("VACUUM ANALYZE task_status_history"))
        connection.execute(text("CHECKPOINT"))
