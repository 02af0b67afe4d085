"""Command line of the runtime: ``etl-runtime run``, ``manifest`` and ``upgrade-db``.

The operator's pods run ``etl-runtime run`` with the task's identity in the environment. A
developer runs a task class directly with ``etl-runtime run --local module.Class --param k=v``
(and ``--secret-param NAME`` for a secret parameter, whose value stays in the environment), and
prints the ETLTask manifest that a class implies with ``etl-runtime manifest module.Class``.
Exit codes of ``run``: 0 succeeded, 1 the task failed, 2 the task could not be started (invalid
arguments, environment or task class), 128 + signal number when stopped (143 for SIGTERM).
``manifest`` exits with 2 when the class or an argument is invalid.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import yaml
from sqlalchemy.exc import SQLAlchemyError

from etl_runtime._errors import ParameterError, TaskClassNotFoundError
from etl_runtime._logging import LOG_FORMAT_VARIABLE, LOG_FORMATS, configure_logging
from etl_runtime._manifest import ManifestError, build_manifest
from etl_runtime._runner import (
    EXIT_SETUP_FAILED,
    EXIT_SUCCEEDED,
    resolve_configured_task_class,
    run_in_pod,
    run_local,
)
from etl_runtime._secrets import SECRET_PARAMETER_VARIABLE_PREFIX, check_secret_parameter_name
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


def parse_secret_param(text: str) -> str:
    """Parse the NAME of ``--secret-param``, and reject a value given on the command line."""
    if "=" in text:
        raise argparse.ArgumentTypeError(
            f"invalid secret parameter {text!r}: give only its name; the value comes from "
            f"environment variable {SECRET_PARAMETER_VARIABLE_PREFIX}<NAME>, so that it never shows "
            "in the command line"
        )
    try:
        return check_secret_parameter_name(text.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="etl-runtime", description="Run kube-etl task classes.")
    parser.add_argument(
        "--log-level",
        type=str.upper,
        default=os.environ.get("KUBE_ETL_LOG_LEVEL", "INFO"),
        choices=LOG_LEVELS,
        help="minimum level of log lines written to stdout (default: $KUBE_ETL_LOG_LEVEL or INFO)",
    )
    parser.add_argument(
        "--log-format",
        type=str.lower,
        default=os.environ.get(LOG_FORMAT_VARIABLE, "text").strip() or "text",
        choices=LOG_FORMATS,
        help=f"text lines, or one JSON object per line (default: ${LOG_FORMAT_VARIABLE} or text)",
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
    run.add_argument(
        "--local",
        metavar="TASK",
        help="task class to run without Kubernetes: module.Class, or a partial name that the base modules "
        "resolve",
    )
    run.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="parameter for --local, repeatable; VALUE is parsed as JSON if valid, else kept as a string",
    )
    run.add_argument(
        "--secret-param",
        action="append",
        type=parse_secret_param,
        default=[],
        metavar="NAME",
        help="secret parameter for --local, repeatable; its value is read from "
        f"${SECRET_PARAMETER_VARIABLE_PREFIX}<NAME in upper case>, and the task database stores it masked",
    )
    run.add_argument(
        "--database-url",
        default=None,
        help=f"task database URL for --local (default: ${DATABASE_URL_VARIABLE})",
    )
    run.add_argument("--config", default=None, help="config.ini for --local (default: $KUBE_ETL_CONFIG)")
    run.add_argument("--display-name", default=None, help="display name of the --local task run")
    run.add_argument(
        "--no-mail", action="store_true", help="send no failure mail (the same as KUBE_ETL_NO_MAIL=1)"
    )

    manifest = commands.add_parser(
        "manifest",
        help="print the ETLTask manifest that a task class implies",
        description=(
            "Print, as YAML, the ETLTask that the class's depends_on, mutually_exclusive_execution, "
            "allow_concurrent_runs and DISPLAY_NAME imply, with the given parameters."
        ),
    )
    manifest.add_argument(
        "task", metavar="TASK", help="module.Class, or a partial name that the base modules resolve"
    )
    manifest.add_argument(
        "--name", default=None, help="metadata.name (default: the class name in kebab case)"
    )
    manifest.add_argument("--namespace", default=None, help="metadata.namespace (default: none)")
    manifest.add_argument(
        "--param",
        action="append",
        type=parse_param,
        default=[],
        metavar="NAME=VALUE",
        help="entry of spec.parameters, repeatable; VALUE is parsed as JSON if valid, else kept as a string",
    )
    manifest.add_argument(
        "--config",
        default=None,
        help="config.ini whose [kube_etl] base_modules resolve partial names (default: $KUBE_ETL_CONFIG)",
    )

    upgrade = commands.add_parser(
        "upgrade-db", help="create or upgrade the task database schema to the newest migration"
    )
    upgrade.add_argument(
        "--database-url", default=None, help=f"task database URL (default: ${DATABASE_URL_VARIABLE})"
    )
    return parser


def parameters_from(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Collect ``--param`` pairs. Names are case-insensitive, so a later one replaces an earlier one."""
    parameters: dict[str, Any] = {}
    for name, value in pairs:
        parameters = {key: old for key, old in parameters.items() if key.lower() != name.lower()}
        parameters[name] = value
    return parameters


def config_path_from(arguments: argparse.Namespace) -> str | None:
    path: str | None = arguments.config or os.environ.get("KUBE_ETL_CONFIG", "").strip()
    return path or None


def database_url_from(arguments: argparse.Namespace) -> str | None:
    url: str | None = arguments.database_url or os.environ.get(DATABASE_URL_VARIABLE, "").strip()
    return url or None


def command_run(parser: argparse.ArgumentParser, arguments: argparse.Namespace) -> int:
    # None leaves the decision to $KUBE_ETL_NO_MAIL.
    no_mail = True if arguments.no_mail else None
    if not arguments.local:
        for option in ("param", "secret_param", "database_url", "config", "display_name"):
            if getattr(arguments, option):
                parser.error(f"--{option.replace('_', '-')} is only valid with --local")
        return run_in_pod(os.environ, no_mail=no_mail)

    database_url = database_url_from(arguments)
    if database_url is None:
        parser.error(f"--local needs a task database: pass --database-url or set {DATABASE_URL_VARIABLE}")
    return run_local(
        arguments.local,
        parameters_from(arguments.param),
        database_url=database_url,
        config_path=config_path_from(arguments),
        display_name=arguments.display_name,
        no_mail=no_mail,
        secret_parameters=arguments.secret_param,
    )


def command_manifest(arguments: argparse.Namespace) -> int:
    try:
        task_class = resolve_configured_task_class(arguments.task, config_path_from(arguments))
        manifest = build_manifest(
            task_class,
            name=arguments.name,
            namespace=arguments.namespace,
            parameters=parameters_from(arguments.param),
        )
    except (TaskClassNotFoundError, ParameterError) as exc:
        log.error("cannot build the manifest: %s", exc)
        return EXIT_SETUP_FAILED
    except ManifestError as exc:
        hint = "; pass a valid --name" if arguments.name is None else ""
        log.error("cannot build the manifest: %s%s", exc, hint)
        return EXIT_SETUP_FAILED
    sys.stdout.write(yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True))
    return EXIT_SUCCEEDED


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
    if arguments.log_format not in LOG_FORMATS:
        parser.error(
            f"invalid log format {arguments.log_format!r} in {LOG_FORMAT_VARIABLE}; "
            f"use one of {list(LOG_FORMATS)}"
        )
    # The manifest goes to stdout, so that command logs to stderr.
    stream = sys.stderr if arguments.command == "manifest" else None
    configure_logging(logging.getLevelNamesMapping()[arguments.log_level], stream, arguments.log_format)
    if arguments.command == "upgrade-db":
        return command_upgrade_db(parser, arguments)
    if arguments.command == "manifest":
        return command_manifest(arguments)
    return command_run(parser, arguments)


if __name__ == "__main__":
    sys.exit(main())
