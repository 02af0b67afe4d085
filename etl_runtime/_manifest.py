"""The ETLTask manifest that a task class implies, printed by ``etl-runtime manifest``.

The class stays the source of truth for its scheduling rules: ``depends_on``,
``mutually_exclusive_execution``, ``allow_concurrent_runs`` and ``DISPLAY_NAME`` become
``spec.dependsOn``, ``spec.mutuallyExclusiveWith``, ``spec.allowConcurrentRuns`` and
``spec.displayName``. The field names are those of crds/etltasks.etl.kube-etl.io.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from etl_runtime._declarations import Dependency
from etl_runtime._parameters import ParameterSet
from etl_runtime._task import ETLTask

API_VERSION = "etl.kube-etl.io/v1alpha1"
KIND = "ETLTask"

# Kubernetes object names (RFC 1123 subdomain) and namespace names (RFC 1123 label).
NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
NAMESPACE_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
MAX_NAME_LENGTH = 253
MAX_NAMESPACE_LENGTH = 63


class ManifestError(ValueError):
    """The name or namespace given for a manifest is not a valid Kubernetes name."""


def default_task_name(task_class: type[ETLTask]) -> str:
    """Return a Kubernetes-style name for a task class, e.g. ``extract-weather`` for ExtractWeather."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "-", task_class.__name__).lower().replace("_", "-")
    return re.sub(r"-{2,}", "-", words).strip("-")


def check_name(name: str) -> None:
    if len(name) > MAX_NAME_LENGTH or not NAME_RE.fullmatch(name):
        raise ManifestError(
            f"ETLTask name {name!r} is invalid: use at most {MAX_NAME_LENGTH} lower-case letters, digits, "
            "'-' and '.', starting and ending with a letter or digit"
        )


def check_namespace(namespace: str) -> None:
    if len(namespace) > MAX_NAMESPACE_LENGTH or not NAMESPACE_RE.fullmatch(namespace):
        raise ManifestError(
            f"namespace {namespace!r} is invalid: use at most {MAX_NAMESPACE_LENGTH} lower-case letters, "
            "digits and '-', starting and ending with a letter or digit"
        )


def sorted_dependencies(dependencies: frozenset[Dependency]) -> list[dict[str, str]]:
    """Return ``spec.dependsOn`` entries: ``name`` entries first, then ``task`` patterns, each sorted."""
    by_name = sorted(dependency.name for dependency in dependencies if dependency.name is not None)
    by_task = sorted(dependency.task for dependency in dependencies if dependency.task is not None)
    return [{"name": name} for name in by_name] + [{"task": pattern} for pattern in by_task]


def build_manifest(
    task_class: type[ETLTask],
    *,
    name: str | None = None,
    namespace: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Return the ETLTask manifest, as a dict, that a task class and its parameters imply.

    The class is instantiated with ``parameters`` and no task id, so its declaration methods may
    read them with ``get_parameter``, and the runtime opens no database for it. ``name`` defaults to the
    class name in kebab case. Empty lists are left out, and ``allowConcurrentRuns`` is always
    written. Raises ManifestError for an invalid name or namespace, and ParameterError for a
    parameter that is not JSON.
    """
    name = name if name is not None else default_task_name(task_class)
    check_name(name)
    if namespace is not None:
        check_namespace(namespace)
    checked = ParameterSet()
    for key, value in (parameters or {}).items():
        checked.set(key, value)
    values = dict(checked.as_dict())

    with task_class(parameters=values) as task:
        declarations = task.declarations()
        display_name = task.DISPLAY_NAME

    metadata: dict[str, Any] = {"name": name}
    if namespace is not None:
        metadata["namespace"] = namespace
    spec: dict[str, Any] = {"task": declarations.task_class}
    if display_name:
        spec["displayName"] = display_name
    if values:
        spec["parameters"] = values
    dependencies = sorted_dependencies(declarations.depends_on)
    if dependencies:
        spec["dependsOn"] = dependencies
    if declarations.mutually_exclusive_with:
        spec["mutuallyExclusiveWith"] = sorted(declarations.mutually_exclusive_with)
    spec["allowConcurrentRuns"] = declarations.allow_concurrent_runs
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
