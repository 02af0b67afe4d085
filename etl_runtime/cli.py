"""Command line of the runtime: ``etl-runtime run`` and ``etl-runtime upgrade-db``.

The operator's pods run ``etl-runtime run`` with the task's identity in the environment. A
developer runs a task class directly with ``etl-runtime run --local module.Class --param k=v``.
Exit codes: 0 succeeded, 1 the task failed, 2 the task could not be started (invalid
arguments, environment or task class), 128 + signal number when stopped (143 for SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from etl_runtime._logging import configure_logging
from etl_runtime._runner import EXIT_SETUP_FAILED, EXIT_SUCCEEDED, run_in_pod, run_local
from etl_runtime.taskdb import DATABASE_URL_VARIABLE, TaskDatabase

log = logging.getLogger("etl_runtime.cli")

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def parse_param(text: str) -> tuple[str, Any]:
    """Parse ``name=value``. The value is JSON when it parses as JSON, else the plain string."""
    name, separator, raw_value = text.partition("=")
    name = name.strip()
    if not separator or not name:
        raise argparse.ArgumentTypeError(f"invalid parameter {text!r}: expected NAME=VALUE")
    try:
        value: Any = json.loads(raw_value)
    except ValueError:
        value = raw_value
    return name, value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etl-runtime", description="Run kube-etl task classes.")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default=os.environ.get("KUBE_ETL_LOG_LEVEL", "INFO"),
        choices=LOG_LEVELS,
        help="minimum level of log lines written to stdout (default: $KUBE_ETL_LOG_LEVEL or INFO)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        help="run a task",
        description=(
            "Without --local, run the task run named by $KUBE_ETL_TASK_ID, as the operator's pods do. "
            "With --local, create a task run in namespace 'local' and run the class directly."
        ),
    )
    run.add_argument("--local", metavar="MODULE.CLASS", help="task class to run without Kubernetes")
    run.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="parameter for --local, repeatable; VALUE is parsed as JSON if valid, else kept as a string",
    )
    run.add_argument(
        "--database-url",
        default=None,
        help=f"task database URL for --local (default: ${DATABASE_URL_VARIABLE})",
    )
    run.add_argument("--config", default=None, help="config.ini for --local (default: $KUBE_ETL_CONFIG)")
    run.add_argument("--display-name", default=None, help="display name of the --local task run")

    upgrade = commands.add_parser(
        "upgrade-db", help="create or upgrade the task database schema to the newest migration"
    )
    upgrade.add_argument(
        "--database-url", default=None, help=f"task database URL (default: ${DATABASE_URL_VARIABLE})"
    )
    return parser


def database_url_from(arguments: argparse.Namespace) -> str | None:
    url: str | None = arguments.database_url or os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    return url or None


def command_run(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    if not arguments.local:
        for option in ("param", "database_url", "config", "display_name"):
            if getattr(arguments, option):
                parser.error(f"--{option.replace('_', '-')} is only valid with --local")
        return run_in_pod(os.environ)

    database_url = database_url_from(arguments)
    if database_url is None:
        parser.error(f"--local needs a task database: pass --database-url or set {DATABASE_URL_VARIABLE}")
    parameters: dict[str, Any] = {}
    for name, value in arguments.param:
        # Names are case-insensitive, so a later --param replaces an earlier one that differs in case.
        parameters = {key: old for key, old in parameters.items() if key.lower() != name.lower()}
        parameters[name] = value
    config_path = arguments.config or os.environ.get("KUBE_ETL_CONFIG", "").strip() or None
    return run_local(
        arguments.local,
        parameters,
        database_url=database_url,
        config_path=config_path,
        display_name=arguments.display_name,
    )


def command_upgrade_db(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    database_url = database_url_from(arguments)
    if database_url is None:
        parser.error(f"pass --database-url or set {DATABASE_URL_VARIABLE}")
    database = TaskDatabase(database_url)
    try:
        database.upgrade()
    except SQLAlchemyError as exc:
        log.error("upgrading the task database schema failed: %s", exc)
        return EXIT_SETUP_FAILED
    finally:
        database.dispose()
    log.info("task database schema is up to date")
    return EXIT_SUCCEEDED


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    # argparse checks choices on the command line only, not on the default from the environment.
    if arguments.log_level not in LOG_LEVELS:
        parser.error(
            f"invalid log level {arguments.log_level!r} in KUBE_ETL_LOG_LEVEL; use one of {LOG_LEVELS}"
        )
    configure_logging(logging.getLevelNamesMapping()[arguments.log_level])
    if arguments.command == "upgrade-db":
        return command_upgrade_db(parser, arguments)
    return command_run(parser, arguments)


if __name__ == "__main__":
    sys.exit(main())
