"""`etl-operator`: the operator's command line.

It configures logging, imports the kopf handlers and runs kopf until SIGTERM or SIGINT. Settings come
from the environment (see `_settings.py`); the flags choose what to watch and how replicas share work.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Sequence

import kopf

from ._leader import LeaseSettings
from ._settings import OperatorSettings, SettingsError


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="etl-operator", description="Run the kube-etl operator.")
    parser.add_argument(
        "--namespace",
        action="append",
        default=[],
        metavar="NAME",
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--leader-election",
        metavar="NAMESPACE/NAME",
        help="act only while holding this coordination.k8s.io Lease, so replicas stand by for each other",
    )
    parser.add_argument(
        "--liveness",
        metavar="URL",
        help="serve kopf's liveness probe at this URL, for example http://0.0.0.0:8080/healthz",
    )
    parser.add_argument("--verbose", action="store_true", help="log at DEBUG level")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # kopf logs every watch event at DEBUG; keep its INFO lines and our own.
    logging.getLogger("kopf").setLevel(logging.DEBUG if args.verbose else logging.WARNING)
    try:
        OperatorSettings.from_env()
    except SettingsError as error:
        print(f"etl-operator: {error}", file=sys.stderr)
        sys.exit(2)

    lease = None
    if args.leader_election:
        namespace, _, name = args.leader_election.partition("/")
        if not namespace or not name:
            print(
                f"etl-operator: --leader-election={args.leader_election!r} is invalid: "
                "give NAMESPACE/NAME, for example kube-etl/kube-etl-operator",
                file=sys.stderr,
            )
            sys.exit(2)
        identity = os.environ.get("POD_NAME") or f"{socket.gethostname()}-{os.getpid()}"
        lease = LeaseSettings(namespace=namespace, name=name, identity=identity)

    from . import handlers  # registers the kopf handlers

    if not args.namespace:
        handlers.register_cluster_watches()

    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        # Replicas take turns through --leader-election, not through kopf's peering.
        standalone=True,
        liveness_endpoint=args.liveness,
        # The start-up listing reads the same namespaces that kopf watches.
        memo=kopf.Memo(namespaces=tuple(args.namespace), lease=lease),
    )


if __name__ == "__main__":
    main()
