"""The `etl-localcluster` command: start, stop and inspect the local cluster used by tests and the demo.

It is the console script named in pyproject.toml and calls `cluster.LocalCluster`. The state folder is
`--state-dir`, else `$KUBE_ETL_STATE_DIR`, else `.state` in the current folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from etl_localcluster._podworker import pod_folder_name
from etl_localcluster.cluster import LocalCluster, LocalClusterError
from etl_localcluster.controlplane import ControlPlaneError
from etl_localcluster.postgres import PostgresError

STATE_DIR_VARIABLE = "KUBE_ETL_STATE_DIR"


def default_state_dir() -> Path:
    """Return `$KUBE_ETL_STATE_DIR`, or `.state` in the current folder."""
    configured = os.environ.get(STATE_DIR_VARIABLE)
    return Path(configured) if configured else Path.cwd() / ".state"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with the subcommands up, down, status and logs."""
    parser = argparse.ArgumentParser(
        prog="etl-localcluster",
        description="Run a local Kubernetes control plane, Postgres and a pod runner "
        "(a stand-in for kubelet).",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"folder for the cluster's state and logs (default: ${STATE_DIR_VARIABLE} or ./.state)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start the cluster (or find it running) and print how to reach it")
    up.add_argument(
        "--python-path",
        action="append",
        default=[],
        metavar="FOLDER",
        help="folder that pod processes can import from, as an image would contain it; repeatable",
    )
    up.add_argument(
        "--bin-dir",
        type=Path,
        default=None,
        help="folder with the control plane binaries "
        "(default: build or find them with hack/build-control-plane.sh)",
    )
    commands.add_parser("down", help="stop every process of the cluster")
    commands.add_parser("status", help="show which processes of the cluster run; exit code 1 if any does not")

    logs = commands.add_parser("logs", help="print a pod's container logs (kubectl logs cannot reach them)")
    logs.add_argument("namespace")
    logs.add_argument("pod")
    logs.add_argument("-c", "--container", help="print only this container's log")
    return parser


def command_up(state_dir: Path, python_paths: Sequence[str], bin_dir: Path | None) -> int:
    started = time.monotonic()
    cluster = LocalCluster(state_dir, python_paths)
    info = cluster.start(bin_dir)
    for name, value in info.as_variables().items():
        print(f"{name}={value}")
    print(f"local cluster is up after {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


def command_down(state_dir: Path) -> int:
    if not (state_dir / "cluster.json").exists():
        print(f"no local cluster recorded in {state_dir}; nothing to stop", file=sys.stderr)
        return 0
    LocalCluster.load(state_dir).stop()
    print(f"local cluster in {state_dir} stopped", file=sys.stderr)
    return 0


def command_status(state_dir: Path) -> int:
    cluster = LocalCluster.load(state_dir)
    states = cluster.component_states()
    for name, running in states.items():
        print(f"{name}: {'running' if running else 'stopped'}")
    if not all(states.values()):
        return 1
    for name, value in cluster.info().as_variables().items():
        print(f"{name}={value}")
    return 0


def command_logs(state_dir: Path, namespace: str, pod: str, container: str | None) -> int:
    folder = state_dir / "pods" / pod_folder_name(namespace, pod)
    logs = sorted(folder.glob("*.log"))
    if container is not None:
        logs = [path for path in logs if path.stem == container]
    if not logs:
        what = f"container {container} of pod" if container else "pod"
        print(f"no logs for {what} {namespace}/{pod} in {folder}", file=sys.stderr)
        return 1
    for path in logs:
        if len(logs) > 1:
            print(f"==> container {path.stem} <==")
        sys.stdout.write(path.read_text(errors="replace"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand and return its exit code."""
    arguments = build_parser().parse_args(argv)
    state_dir = (arguments.state_dir or default_state_dir()).resolve()
    try:
        if arguments.command == "up":
            return command_up(state_dir, arguments.python_path, arguments.bin_dir)
        if arguments.command == "down":
            return command_down(state_dir)
        if arguments.command == "status":
            return command_status(state_dir)
        return command_logs(state_dir, arguments.namespace, arguments.pod, arguments.container)
    except (LocalClusterError, ControlPlaneError, PostgresError) as error:
        print(f"etl-localcluster {arguments.command}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
