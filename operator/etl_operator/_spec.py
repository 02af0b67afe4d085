"""Typed views of an ETLTask object: its spec and the parts of its status the rules read.

The reconciler turns each raw object from the watch into a `TaskView` once, and the rules, the claim
registry and the pod builder work on these frozen values instead of nested dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from etl_runtime import secret_parameter_variable

from .phases import Phase

API_GROUP = "etl.kube-etl.io"
API_VERSION = "v1alpha1"
PLURAL = "etltasks"
KIND = "ETLTask"


class InvalidSpecError(ValueError):
    """An ETLTask spec that the schema let through but the operator cannot run."""


@dataclass(frozen=True)
class Dependency:
    """One entry of spec.dependsOn: an ETLTask name or a task-class pattern."""

    name: str | None = None
    task_pattern: str | None = None

    def describe(self) -> str:
        return self.name if self.name is not None else f"task:{self.task_pattern}"


@dataclass(frozen=True)
class SecretParameter:
    """One entry of spec.secretParameters: a parameter whose value is a key of a Secret.

    The operator never reads the value. The pod gets it in `variable` through a secretKeyRef, and
    the task database stores the parameter masked.
    """

    name: str
    secret_name: str
    key: str

    @property
    def variable(self) -> str:
        return secret_parameter_variable(self.name)


@dataclass(frozen=True)
class Retries:
    limit: int = 0
    backoff_seconds: int = 30


@dataclass(frozen=True)
class TaskSpec:
    """The fields of spec that the operator acts on."""

    task: str
    display_name: str | None = None
    image: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    secret_parameters: tuple[SecretParameter, ...] = ()
    depends_on: tuple[Dependency, ...] = ()
    mutually_exclusive_with: tuple[str, ...] = ()
    allow_concurrent_runs: bool = False
    priority: int = 0
    parent: str | None = None
    config_secret: str | None = None
    retries: Retries = Retries()
    active_deadline_seconds: int | None = None
    cancel: bool = False
    pod_template: Mapping[str, Any] = field(default_factory=dict)
    ttl_seconds_after_finished: int | None = None
    requires_approval: bool = False
    notify_email: tuple[str, ...] = ()
    no_mail: bool = False


@dataclass(frozen=True)
class TaskView:
    """An ETLTask as the rules see it: identity, spec and the status fields that matter."""

    namespace: str
    name: str
    uid: str
    creation_timestamp: str
    resource_version: str
    generation: int
    spec: TaskSpec
    phase: str | None
    attempt: int
    task_id: int | None
    pod_name: str | None
    claims: tuple[str, ...]
    deleting: bool

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def queue_order(self) -> tuple[int, str, str]:
        """Sort key of the admission queue: priority first, then creation time, then name."""
        return (-self.spec.priority, self.creation_timestamp, self.name)


def parse_spec(spec: Mapping[str, Any]) -> TaskSpec:
    """Build a TaskSpec from a raw spec, raising InvalidSpecError on what the schema cannot express."""
    task = spec.get("task")
    if not isinstance(task, str) or not task:
        raise InvalidSpecError("spec.task is missing: set it to the task class as module.Class")

    depends_on: list[Dependency] = []
    for index, entry in enumerate(spec.get("dependsOn") or ()):
        name, pattern = entry.get("name"), entry.get("task")
        if bool(name) == bool(pattern):
            raise InvalidSpecError(
                f"spec.dependsOn[{index}] must set exactly one of name and task, got {dict(entry)!r}"
            )
        depends_on.append(Dependency(name=name or None, task_pattern=pattern or None))

    parameters = dict(spec.get("parameters") or {})
    retries = spec.get("retries") or {}
    config = spec.get("config") or {}
    return TaskSpec(
        task=task,
        display_name=spec.get("displayName"),
        image=spec.get("image"),
        parameters=parameters,
        secret_parameters=parse_secret_parameters(spec.get("secretParameters") or (), parameters),
        depends_on=tuple(depends_on),
        mutually_exclusive_with=tuple(spec.get("mutuallyExclusiveWith") or ()),
        allow_concurrent_runs=bool(spec.get("allowConcurrentRuns", False)),
        priority=int(spec.get("priority", 0)),
        parent=spec.get("parent") or None,
        config_secret=config.get("secretName") or None,
        retries=Retries(
            limit=int(retries.get("limit", 0)),
            backoff_seconds=int(retries.get("backoffSeconds", 30)),
        ),
        active_deadline_seconds=spec.get("activeDeadlineSeconds"),
        cancel=bool(spec.get("cancel", False)),
        pod_template=dict(spec.get("podTemplate") or {}),
        ttl_seconds_after_finished=spec.get("ttlSecondsAfterFinished"),
        requires_approval=bool(spec.get("requiresApproval", False)),
        notify_email=tuple((spec.get("notify") or {}).get("email") or ()),
        no_mail=bool((spec.get("notify") or {}).get("noMail", False)),
    )


def parse_secret_parameters(entries: Any, parameters: Mapping[str, Any]) -> tuple[SecretParameter, ...]:
    """Build the entries of spec.secretParameters, raising InvalidSpecError for a name given twice.

    Parameter names are case-insensitive, so a secret parameter may share its name, in any case,
    neither with another secret parameter nor with a key of spec.parameters.
    """
    parameter_names = {name.lower(): name for name in parameters}
    result: list[SecretParameter] = []
    for index, entry in enumerate(entries):
        where = f"spec.secretParameters[{index}]"
        reference = entry.get("secretKeyRef") or {}
        name, secret_name, key = entry.get("name"), reference.get("name"), reference.get("key")
        if not name or not secret_name or not key:
            raise InvalidSpecError(
                f"{where} must set name, secretKeyRef.name and secretKeyRef.key, got {dict(entry)!r}"
            )
        try:
            secret_parameter_variable(name)
        except ValueError as exc:
            raise InvalidSpecError(f"{where}: {exc}") from exc
        if name.lower() in parameter_names:
            raise InvalidSpecError(
                f"parameter {parameter_names[name.lower()]!r} is in spec.parameters and, as {name!r}, in "
                "spec.secretParameters (names are case-insensitive); remove it from spec.parameters, "
                f"since its value comes from key {key} of Secret {secret_name}"
            )
        for earlier in result:
            if earlier.name.lower() == name.lower():
                raise InvalidSpecError(
                    f"secret parameters {earlier.name!r} and {name!r} in spec.secretParameters name the "
                    "same parameter (names are case-insensitive); keep one of them"
                )
        result.append(SecretParameter(name=name, secret_name=secret_name, key=key))
    return tuple(result)


def view_of(body: Mapping[str, Any]) -> TaskView:
    """Build a TaskView from a raw ETLTask object; raises InvalidSpecError for an unusable spec."""
    metadata = body.get("metadata") or {}
    status = body.get("status") or {}
    return TaskView(
        namespace=metadata["namespace"],
        name=metadata["name"],
        uid=metadata.get("uid", ""),
        creation_timestamp=metadata.get("creationTimestamp") or "",
        resource_version=metadata.get("resourceVersion") or "0",
        generation=int(metadata.get("generation") or 0),
        spec=parse_spec(body.get("spec") or {}),
        phase=status.get("phase"),
        attempt=int(status.get("attempt") or 0),
        task_id=status.get("taskId"),
        pod_name=status.get("podName"),
        claims=tuple(status.get("claims") or ()),
        deleting=bool(metadata.get("deletionTimestamp")),
    )


def is_active(view: TaskView) -> bool:
    return view.phase in (Phase.STARTING, Phase.RUNNING)
