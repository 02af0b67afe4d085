"""Operator settings, read once from the environment when the operator starts.

`etl-operator` builds an OperatorSettings and hands it to the reconciler; the Helm chart and the local
cluster set these variables. Each invalid value fails the start with a message that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class SettingsError(ValueError):
    """An operator setting is missing or invalid."""


@dataclass(frozen=True)
class OperatorSettings:
    # SQLAlchemy URL of the task database, for the operator itself.
    database_url: str
    # Secret (in each task's namespace) and key that hold the task database URL for job pods.
    database_secret_name: str = "kube-etl-taskdb"
    database_secret_key: str = "url"
    # Image for tasks that set no spec.image.
    default_image: str = "kube-etl:latest"
    image_pull_policy: str = "IfNotPresent"
    # Service account for job pods when spec.podTemplate sets none; empty means the namespace default.
    pod_service_account: str = ""
    termination_grace_seconds: int = 30
    # Seconds a job pod stays on a node that stopped reporting before Kubernetes evicts it; the attempt
    # then fails (or retries) once the eviction's grace period has passed.
    node_lost_seconds: int = 60
    # Seconds a job pod may wait for a cause that needs a person (a missing Secret, an image that
    # cannot be pulled) before its attempt fails, which releases the task's claims; 0 waits forever.
    start_timeout_seconds: int = 600
    # Most tasks Starting or Running at once in a namespace; 0 means no limit. A namespace annotation
    # etl.kube-etl.io/max-concurrent-tasks overrides it.
    max_concurrent_tasks: int = 0
    # Seconds between re-checks of waiting tasks, a safety net behind the watches.
    safety_interval_seconds: float = 60.0
    # Days the task database keeps finished runs; 0 keeps them forever. Checked every hour.
    retention_days: int = 0
    # Concurrent reconciles; each may wait on the API or the task database.
    workers: int = 16

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OperatorSettings:
        env = os.environ if environ is None else environ
        url = env.get("KUBE_ETL_DATABASE_URL", "")
        if not url:
            raise SettingsError(
                "KUBE_ETL_DATABASE_URL is not set: set it to the task database's SQLAlchemy URL, "
                "for example postgresql+psycopg://user:password@host:5432/kube_etl"
            )
        defaults = cls(database_url=url)
        return cls(
            database_url=url,
            database_secret_name=env.get("KUBE_ETL_DATABASE_SECRET", defaults.database_secret_name),
            database_secret_key=env.get("KUBE_ETL_DATABASE_SECRET_KEY", defaults.database_secret_key),
            default_image=env.get("KUBE_ETL_DEFAULT_IMAGE", defaults.default_image),
            image_pull_policy=env.get("KUBE_ETL_IMAGE_PULL_POLICY", defaults.image_pull_policy),
            pod_service_account=env.get("KUBE_ETL_POD_SERVICE_ACCOUNT", defaults.pod_service_account),
            termination_grace_seconds=_int(env, "KUBE_ETL_TERMINATION_GRACE_SECONDS", 30, minimum=0),
            node_lost_seconds=_int(env, "KUBE_ETL_NODE_LOST_SECONDS", 60, minimum=0),
            start_timeout_seconds=_int(env, "KUBE_ETL_START_TIMEOUT_SECONDS", 600, minimum=0),
            max_concurrent_tasks=_int(env, "KUBE_ETL_MAX_CONCURRENT_TASKS", 0, minimum=0),
            safety_interval_seconds=float(_int(env, "KUBE_ETL_SAFETY_INTERVAL_SECONDS", 60, minimum=1)),
            workers=_int(env, "KUBE_ETL_WORKERS", 16, minimum=1),
            retention_days=_int(env, "KUBE_ETL_RETENTION_DAYS", 0, minimum=0),
        )


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(
            f"{name}={raw!r} is not an integer: set it to a whole number >= {minimum}"
        ) from None
    if value < minimum:
        raise SettingsError(f"{name}={value} is below {minimum}: set it to a whole number >= {minimum}")
    return value
