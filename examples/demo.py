"""`make demo`: run the demo warehouse DAG on a local cluster and print what the task database recorded.

The script starts the local cluster (control plane, Postgres, pod runner), installs the ETLTask CRD,
creates the task and warehouse databases and their Secrets, starts the operator as a background
process, applies every manifest in examples/manifests with kubectl, waits until each task finishes,
and prints one row per run. Everything keeps running until `make down` (this script with --down).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from etl_localcluster.cluster import LocalCluster, LocalClusterError
from etl_localcluster.processes import ProcessRecord, is_alive, start_process, stop_process, tail
from etl_runtime.taskdb import TaskDatabase

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = REPOSITORY_ROOT / "examples" / "manifests"
CRD = REPOSITORY_ROOT / "crds" / "etltasks.etl.kube-etl.io.yaml"
NAMESPACE = "kube-etl-demo"
TERMINAL = {"Succeeded", "Failed", "UpstreamFailed", "Cancelled"}
TIMEOUT_SECONDS = 300


def say(message: str) -> None:
    print(f"demo: {message}", flush=True)


def start_cluster(state_dir: Path) -> LocalCluster:
    cluster = LocalCluster(state_dir, python_paths=[REPOSITORY_ROOT / "examples"])
    started = time.monotonic()
    cluster.start()
    say(f"local cluster is up in {time.monotonic() - started:.1f} s (state in {state_dir})")
    return cluster


def api_client(kubeconfig: Path) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
    return client.ApiClient(configuration)


def install_crd(api: client.ApiClient) -> None:
    extensions: Any = client.ApiextensionsV1Api(api)
    manifest = yaml.safe_load(CRD.read_text())
    name = manifest["metadata"]["name"]
    try:
        existing = extensions.read_custom_resource_definition(name)
        manifest["metadata"]["resourceVersion"] = existing.metadata.resource_version
        extensions.replace_custom_resource_definition(name, manifest)
    except ApiException as error:
        if error.status != 404:
            raise
        extensions.create_custom_resource_definition(manifest)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conditions = extensions.read_custom_resource_definition(name).status.conditions or []
        if any(item.type == "Established" and item.status == "True" for item in conditions):
            return
        time.sleep(0.2)
    raise SystemExit(f"demo: the CRD {name} was not Established within 60 s")


def apply_secret(core: Any, name: str, data: Mapping[str, str]) -> None:
    body = {"metadata": {"name": name, "namespace": NAMESPACE}, "stringData": dict(data)}
    try:
        core.create_namespaced_secret(NAMESPACE, body)
    except ApiException as error:
        if error.status != 409:
            raise
        core.replace_namespaced_secret(name, NAMESPACE, body)


def prepare_namespace(api: client.ApiClient, taskdb_url: str, warehouse_url: str) -> None:
    """Create the demo namespace with the Secrets the tasks need, and remove the tasks of a previous run."""
    core: Any = client.CoreV1Api(api)
    try:
        core.create_namespace({"metadata": {"name": NAMESPACE}})
    except ApiException as error:
        if error.status != 409:
            raise
    apply_secret(core, "kube-etl-taskdb", {"url": taskdb_url})
    warehouse = make_url(warehouse_url).render_as_string(hide_password=False)
    apply_secret(
        core, "warehouse-config", {"config.ini": f"[warehouse]\nurl = {warehouse.replace('$', '$$')}\n"}
    )

    custom: Any = client.CustomObjectsApi(api)
    custom.delete_collection_namespaced_custom_object("etl.kube-etl.io", "v1alpha1", NAMESPACE, "etltasks")
    deadline = time.monotonic() + 60
    while custom.list_namespaced_custom_object("etl.kube-etl.io", "v1alpha1", NAMESPACE, "etltasks")["items"]:
        if time.monotonic() > deadline:
            raise SystemExit("demo: the previous run's ETLTasks were not deleted within 60 s")
        time.sleep(0.2)


def operator_record_path(state_dir: Path) -> Path:
    return state_dir / "operator.json"


def start_operator(state_dir: Path, kubeconfig: Path, taskdb_url: str) -> None:
    record_path = operator_record_path(state_dir)
    if record_path.exists():
        record = ProcessRecord.from_json(json.loads(record_path.read_text()))
        if is_alive(record):
            say(f"operator already runs (PID {record.pid})")
            return
    environment = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "KUBE_ETL_DATABASE_URL": taskdb_url,
        "KUBE_ETL_DEFAULT_IMAGE": "kube-etl:local",
    }
    log_path = state_dir / "logs" / "operator.log"
    record = start_process("operator", [sys.executable, "-m", "etl_operator"], log_path, env=environment)
    record_path.write_text(json.dumps(record.to_json()))
    deadline = time.monotonic() + 60
    while "kube-etl operator started" not in log_path.read_text(errors="replace"):
        if not is_alive(record) or time.monotonic() > deadline:
            raise SystemExit(f"demo: the operator did not start; the end of {log_path}:\n{tail(log_path)}")
        time.sleep(0.1)
    say(f"operator started (PID {record.pid}, log {log_path})")


def stop_operator(state_dir: Path) -> None:
    record_path = operator_record_path(state_dir)
    if not record_path.exists():
        return
    record = ProcessRecord.from_json(json.loads(record_path.read_text()))
    stop_process(record, timeout_seconds=15)
    record_path.unlink()


def apply_manifests(kubectl: Path, kubeconfig: Path) -> list[str]:
    """Apply every manifest, last file first, to show that the order of creation does not matter."""
    files = sorted(MANIFESTS.glob("*.yaml"), reverse=True)
    names: list[str] = []
    for path in files:
        subprocess.run(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "-n", NAMESPACE, "-f", str(path)],
            check=True,
        )
        names.extend(
            document["metadata"]["name"] for document in yaml.safe_load_all(path.read_text()) if document
        )
    return names


def wait_for_tasks(api: client.ApiClient, names: list[str]) -> dict[str, dict[str, Any]]:
    """Print each phase change until every task is in a terminal phase; return the last statuses."""
    custom: Any = client.CustomObjectsApi(api)
    seen: dict[str, str | None] = {}
    statuses: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        items = custom.list_namespaced_custom_object("etl.kube-etl.io", "v1alpha1", NAMESPACE, "etltasks")[
            "items"
        ]
        for item in items:
            name = item["metadata"]["name"]
            status = item.get("status") or {}
            statuses[name] = status
            if seen.get(name) != status.get("phase"):
                seen[name] = status.get("phase")
                say(f"{name:<22} {status.get('phase') or '-':<15} {status.get('message', '')}")
        if all(statuses.get(name, {}).get("phase") in TERMINAL for name in names):
            return statuses
        time.sleep(0.2)
    raise SystemExit(f"demo: not every task finished within {TIMEOUT_SECONDS} s")


def print_runs(taskdb: TaskDatabase, statuses: Mapping[str, Mapping[str, Any]]) -> None:
    print()
    print(f"{'task':<22} {'phase':<14} {'attempts':>8} {'seconds':>8} {'rows read':>10} {'rows written':>13}")
    for name, status in sorted(statuses.items(), key=lambda item: item[1].get("startTime") or ""):
        run = taskdb.get_run(int(status["taskId"]))
        duration = (
            (run.finished_at - run.started_at).total_seconds() if run.started_at and run.finished_at else 0.0
        )
        summary = status.get("statistics") or {}
        print(
            f"{name:<22} {run.status:<14} {status.get('attempt', 1):>8} {duration:>8.2f} "
            f"{summary.get('rowsRead', 0):>10} {summary.get('rowsWritten', 0):>13}"
        )


def print_warehouse(warehouse_url: str) -> None:
    with create_engine(warehouse_url).connect() as connection:
        rows = connection.execute(
            text(
                "SELECT symbol, year, avg_close FROM summary_stock_yearly "
                "WHERE year IN (2000, 2005, 2009) ORDER BY symbol, year"
            )
        ).all()
    print()
    print("The warehouse's yearly average close per symbol (summary_stock_yearly):")
    for symbol, year, average in rows:
        print(f"  {symbol:<5} {year}  {float(average):10.2f}")


def run_demo(state_dir: Path) -> int:
    cluster = start_cluster(state_dir)
    info = cluster.info()
    taskdb_url = cluster.create_database("kube_etl")
    warehouse_url = cluster.create_database("warehouse")
    api = api_client(info.kubeconfig)
    install_crd(api)
    prepare_namespace(api, taskdb_url, warehouse_url)
    start_operator(state_dir, info.kubeconfig, taskdb_url)

    assert cluster.bin_dir is not None
    names = apply_manifests(cluster.bin_dir / "kubectl", info.kubeconfig)
    statuses = wait_for_tasks(api, names)

    taskdb = TaskDatabase(taskdb_url)
    try:
        print_runs(taskdb, statuses)
    finally:
        taskdb.dispose()
    succeeded = all(status.get("phase") == "Succeeded" for status in statuses.values())
    if succeeded:
        print_warehouse(warehouse_url)
    print()
    print("The stack keeps running. Look around with:")
    print(f"  export KUBECONFIG={info.kubeconfig}")
    print(f"  {cluster.bin_dir / 'kubectl'} get etl -n {NAMESPACE} -o wide")
    print("Stop it with: make down")
    return 0 if succeeded else 1


def stop_demo(state_dir: Path) -> int:
    stop_operator(state_dir)
    try:
        LocalCluster.load(state_dir).stop()
    except LocalClusterError as error:
        if "no local cluster recorded" not in str(error):
            raise
    say("stopped")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description="Run the kube-etl demo warehouse on a local cluster.")
    parser.add_argument(
        "--state-dir", type=Path, default=REPOSITORY_ROOT / ".state", help="where the cluster keeps its state"
    )
    parser.add_argument("--down", action="store_true", help="stop the operator and the local cluster")
    args = parser.parse_args()
    state_dir = args.state_dir.resolve()
    sys.exit(stop_demo(state_dir) if args.down else run_demo(state_dir))


if __name__ == "__main__":
    main()
