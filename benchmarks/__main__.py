"""`python -m benchmarks`: measure kube-etl on a fresh local cluster and write the results as JSON.

The defaults are the full sizes (`make bench`); `--tasks N` runs every measurement with N tasks for a
quick check. docs/benchmarks.md records the figures and the commands that produced them.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _measure
from ._env import Environment, machine
from ._kube import JSON
from ._stats import latency_summary, over_runs

MEASUREMENTS = ("floor", "chain", "mutex", "starts", "flat", "fan", "history", "rest")
# The component that sends each kind of write, for the per-task split. The benchmark itself sends the
# `POST etl.kube-etl.io/etltasks` of every task.
WRITERS = {
    "etl.kube-etl.io/etltasks": "operator",
    "etl.kube-etl.io/etltasks/status": "operator",
    "POST pods": "operator",
    "DELETE pods": "operator",
    "POST events": "operator",
    "pods/status": "pod runner",
    "pods/binding": "scheduler",
    "events.k8s.io/events": "scheduler",
    "coordination.k8s.io/leases": "leases (all components)",
    "nodes/status": "pod runner",
}


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--tasks", type=int, help="run every measurement with this many tasks (quick run)")
    parser.add_argument("--chain-tasks", type=int, default=200, help="tasks in the dependency chain")
    parser.add_argument("--mutex-tasks", type=int, default=100, help="tasks on one lock")
    parser.add_argument("--throughput-tasks", type=int, default=1000, help="tasks created at once")
    parser.add_argument(
        "--rest-tasks", type=int, default=10000, help="finished tasks for the at-rest figures"
    )
    parser.add_argument("--history-runs", type=int, default=1_000_000, help="historical runs to insert")
    parser.add_argument("--admission-samples", type=int, default=30, help="tasks per admission measurement")

    parser.add_argument("--repeats", type=int, default=3, help="runs of each measurement but flat and fan")
    parser.add_argument("--throughput-repeats", type=int, default=1, help="runs of flat and fan")
    parser.add_argument(
        "--max-concurrent",
        type=int,
        default=50,
        help="etl.kube-etl.io/max-concurrent-tasks of the throughput namespaces; 0 means no limit",
    )
    parser.add_argument("--idle-seconds", type=float, default=60.0, help="length of the at-rest window")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds to wait for one run")
    parser.add_argument(
        "--only", default=",".join(MEASUREMENTS), help=f"comma-separated subset of {','.join(MEASUREMENTS)}"
    )
    parser.add_argument(
        "--output", type=Path, default=Path("benchmarks/results.json"), help="JSON results file"
    )
    parser.add_argument("--keep", action="store_true", help="keep the cluster's state folder for inspection")

    arguments = parser.parse_args(argv)
    if arguments.tasks:
        for name in ("chain_tasks", "mutex_tasks", "throughput_tasks", "rest_tasks"):
            setattr(arguments, name, arguments.tasks)
    unknown = set(arguments.only.split(",")) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurements {sorted(unknown)}: use some of {','.join(MEASUREMENTS)}")
    return arguments


def writer_of(key: str) -> str:
    resource = key.split(" ", 1)[1]
    if key == "POST etl.kube-etl.io/etltasks":
        return "benchmark"
    return WRITERS.get(key) or WRITERS.get(resource) or "other"


def writes_per_task(writes: dict[str, int], tasks: int) -> JSON:
    """Split a run's writes by sender and by kind, per task."""
    by_writer: dict[str, float] = {}
    for key, count in writes.items():
        writer = writer_of(key)
        by_writer[writer] = by_writer.get(writer, 0.0) + count / tasks
    return {"by_writer": by_writer, "by_kind": {key: count / tasks for key, count in writes.items()}}


def summarize_latency(runs: list[JSON], key: str = "handoff_watch") -> JSON:
    return {field: over_runs([run[key][field] for run in runs]) for field in ("p50_ms", "p95_ms", "p99_ms")}


def summarize(results: JSON) -> JSON:
    runs = results["runs"]
    summary: JSON = {}
    for name in ("floor", "chain", "mutex"):
        if runs.get(name):
            summary[name] = summarize_latency(runs[name])
            if name != "floor":
                summary[name + "_taskdb"] = summarize_latency(runs[name], "handoff_taskdb")
    if runs.get("floor"):
        for name in ("chain", "mutex"):
            if name in summary:
                summary[name + "_to_floor"] = {
                    field: summary[name][field]["median"] / summary["floor"][field]["median"]
                    for field in ("p50_ms", "p95_ms", "p99_ms")
                }
    for name in ("flat", "fan"):
        if runs.get(name):
            summary[name] = {
                field: over_runs([run[field] for run in runs[name]])
                for field in (
                    "starts_per_second",
                    "all_finished_seconds",
                    "last_pod_seconds",
                    "pod_running_seconds_median",
                    "machine_cpu_busy_fraction",
                )
            }
            summary[name]["operator_cpu_ms_per_task"] = over_runs(
                [run["operator_cpu_seconds"] * 1000 / run["tasks"] for run in runs[name]]
            )
            per_task = [writes_per_task(run["writes"], run["tasks"])["by_writer"] for run in runs[name]]
            writers = sorted({writer for item in per_task for writer in item})
            summary[name + "_writes_per_task"] = {
                writer: over_runs([item.get(writer, 0.0) for item in per_task]) for writer in writers
            }
    if runs.get("starts"):
        summary["starts"] = {
            "starts_per_second": over_runs([run["starts_per_second"] for run in runs["starts"]]),
            "operator_cpu_ms_per_task": over_runs(
                [run["operator_cpu_seconds"] * 1000 / run["tasks"] for run in runs["starts"]]
            ),
        }
    if runs.get("chain"):
        per_task = [writes_per_task(run["writes"], run["tasks"]) for run in runs["chain"]]
        summary["chain_writes_per_task"] = per_task[len(per_task) // 2]
    if runs.get("history"):
        empty = [latency_summary(run["empty"] + run["empty_after"])["p50_ms"] for run in runs["history"]]
        loaded = [latency_summary(run["loaded"])["p50_ms"] for run in runs["history"]]
        summary["admission_p50_ms"] = {"empty": over_runs(empty), "loaded": over_runs(loaded)}
        summary["admission_change"] = statistics.median(loaded) / statistics.median(empty) - 1
    if runs.get("rest"):
        rest = runs["rest"]
        summary["rest"] = {
            "rss_mb": rest["rss_bytes"] / 2**20,
            "cpu_percent": rest["cpu_fraction"] * 100,
            "writes_per_minute": {
                key: value * 60 / rest["idle_seconds"] for key, value in rest["writes_in_window"].items()
            },
            "start_seconds": over_runs(rest["start_seconds"]),
        }
    return summary


def run(arguments: argparse.Namespace) -> JSON:
    selected = arguments.only.split(",")
    results: JSON = {
        "machine": machine(),
        "command": " ".join(sys.argv),
        "arguments": {key: str(value) for key, value in vars(arguments).items()},
        "runs": {},
    }
    runs: dict[str, Any] = results["runs"]
    env = Environment(keep=arguments.keep)
    print(f"cluster in {env.work_dir}", file=sys.stderr)
    try:
        env.operator.start()
        if "history" in selected:
            runs["history"] = []
            for _ in range(arguments.repeats):
                # The empty samples come before the insert and after the delete, so a drift of the
                # machine's load during the run falls on both sides of the comparison.
                _measure.settle_database(env)
                empty = _measure.admission(env, arguments.admission_samples, arguments.timeout)
                inserted = _measure.insert_history(env, arguments.history_runs)
                loaded = _measure.admission(env, arguments.admission_samples, arguments.timeout)
                deleted = _measure.delete_history(env)
                empty_after = _measure.admission(env, arguments.admission_samples, arguments.timeout)
                runs["history"].append(
                    {
                        "empty": empty,
                        "loaded": loaded,
                        "empty_after": empty_after,
                        "insert_seconds": inserted,
                        "delete_seconds": deleted,
                    }
                )
                progress("history", runs["history"][-1])
        for names, repeats in (
            (("floor", "chain", "mutex", "starts"), arguments.repeats),
            (("flat", "fan"), arguments.throughput_repeats),
        ):
            for repeat in range(repeats):
                for name in names:
                    if name not in selected:
                        continue
                    result = measure_one(env, name, arguments)
                    runs.setdefault(name, []).append(result)
                    progress(f"{name} {repeat + 1}/{repeats}", result)
        if "rest" in selected:
            env.operator.stop()
            runs["rest"] = _measure.at_rest(
                env, arguments.rest_tasks, arguments.idle_seconds, arguments.repeats
            )
            progress("rest", runs["rest"])
    finally:
        env.close()
    results["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    results["load_average_at_end"] = machine()["load_average"]
    results["summary"] = summarize(results)
    return results


def measure_one(env: Environment, name: str, arguments: argparse.Namespace) -> JSON:
    if name == "floor":
        return _measure.floor(env, arguments.chain_tasks, arguments.timeout)
    if name == "chain":
        return _measure.chain(env, arguments.chain_tasks, arguments.timeout)
    if name == "mutex":
        return _measure.mutex(env, arguments.mutex_tasks, arguments.timeout)
    if name == "starts":
        return _measure.starts(env, arguments.throughput_tasks, arguments.timeout)
    if name == "flat":
        return _measure.throughput(
            env, arguments.throughput_tasks, arguments.max_concurrent, arguments.timeout
        )
    return _measure.fan(env, arguments.throughput_tasks, arguments.max_concurrent, arguments.timeout)


def progress(label: str, result: JSON) -> None:
    print(f"{time.strftime('%H:%M:%S')} {label}: {json.dumps(result)[:600]}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    arguments = parse_arguments(argv)
    # SIGTERM ends the run through the `finally` that stops the operator and the cluster.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    results = run(arguments)
    arguments.output.parent.mkdir(parents=True, exist_ok=True)
    arguments.output.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["summary"], indent=2))
    print(f"results written to {arguments.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
