"""The operator's in-memory view of ETLTasks and their pods, with the indexes that make it event-driven.

The kopf watch handlers and the reconciler's own patch responses feed objects in; the reconciler reads
views, dependents and claim holders out. Nothing here talks to the API. A newer resourceVersion always
wins, so a late watch event never overwrites what a patch response already showed.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ._spec import InvalidSpecError, TaskView, view_of
from .phases import ACTIVE_PHASES, TERMINAL_PHASES

logger = logging.getLogger(__name__)

Key = tuple[str, str]


LAST_APPLIED_ANNOTATION = "kubectl.kubernetes.io/last-applied-configuration"


def _compact(body: Mapping[str, Any]) -> dict[str, Any]:
    """Copy an object without managedFields and kubectl's last-applied annotation.

    Nothing here reads them, and they take about half of a stored ETLTask's memory.
    """
    compact = dict(body)
    metadata = {key: value for key, value in (body.get("metadata") or {}).items() if key != "managedFields"}
    annotations = metadata.get("annotations")
    if annotations and LAST_APPLIED_ANNOTATION in annotations:
        metadata["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED_ANNOTATION}
    compact["metadata"] = metadata
    return compact


def _resource_version(body: Mapping[str, Any]) -> int:
    # Caveat: Kubernetes calls resourceVersion opaque, but the apiserver fills it from etcd's revision,
    # which only grows; a value that is not an integer sorts as the oldest.
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


@dataclass(frozen=True)
class Change:
    """The change an upsert made, from which the reconciler decides which tasks to wake."""

    previous: TaskView | None
    current: TaskView | None

    @property
    def phase_changed(self) -> bool:
        before = self.previous.phase if self.previous else None
        after = self.current.phase if self.current else None
        return before != after

    @property
    def released_claims(self) -> bool:
        was_active = self.previous is not None and self.previous.phase in ACTIVE_PHASES
        is_active = self.current is not None and self.current.phase in ACTIVE_PHASES
        return was_active and not is_active


class TaskStore:
    """ETLTask bodies and views by (namespace, name), pods by (namespace, pod name), and indexes."""

    def __init__(self) -> None:
        # Bodies of tasks that may still change phase, and of finished tasks as compact JSON: a
        # finished task's body is rarely read, and as bytes it takes a sixth of the memory.
        self._bodies: dict[Key, dict[str, Any]] = {}
        self._finished_bodies: dict[Key, bytes] = {}
        # (uid, resourceVersion) of every stored task, to compare with a newer one without decoding.
        self._versions: dict[Key, tuple[str, int]] = {}
        self._views: dict[Key, TaskView] = {}
        self._invalid: dict[Key, str] = {}
        self._pods: dict[Key, dict[str, Any]] = {}
        # (namespace, dependency name) -> tasks that list it in dependsOn by name.
        self._dependents: dict[Key, set[Key]] = defaultdict(set)
        # namespace -> tasks that have a task-class pattern in dependsOn.
        self._pattern_dependents: dict[str, set[Key]] = defaultdict(set)
        # namespace -> tasks that are not in a terminal phase.
        self._unfinished: dict[str, set[Key]] = defaultdict(set)
        self._active: set[Key] = set()
        # task database id of the current attempt -> task, to find the parent of a child request.
        self._by_task_id: dict[int, Key] = {}
        # (namespace, parent name) -> tasks whose spec.parent names it.
        self._children: dict[Key, set[Key]] = defaultdict(set)

    # Tasks

    def upsert(self, body: Mapping[str, Any]) -> Change | None:
        """Store a newer version of an ETLTask; return None when the stored one is as new or newer."""
        metadata = body.get("metadata") or {}
        key = (metadata["namespace"], metadata["name"])
        stored = self._versions.get(key)
        version = _resource_version(body)
        same_object = stored is not None and stored[0] == metadata.get("uid")
        if stored is not None and same_object and stored[1] >= version:
            # The watch delivers again what the start-up list or a patch response already stored.
            return None
        if stored is not None and not same_object:
            # The same name was deleted and created again; forget the old object first.
            self.remove(key)
        previous = self._views.get(key)
        compact = _compact(body)
        try:
            current: TaskView | None = view_of(compact)
            self._invalid.pop(key, None)
        except (InvalidSpecError, KeyError, TypeError, ValueError) as error:
            current = None
            self._invalid[key] = str(error)
        self._versions[key] = (str(metadata.get("uid")), version)
        if current is not None and current.phase in TERMINAL_PHASES:
            self._bodies.pop(key, None)
            self._finished_bodies[key] = json.dumps(compact, separators=(",", ":")).encode()
        else:
            self._finished_bodies.pop(key, None)
            self._bodies[key] = compact
        self._unindex(key, previous)
        if current is not None:
            self._views[key] = current
            self._index(current)
        else:
            self._views.pop(key, None)
        return Change(previous=previous, current=current)

    def remove(self, key: Key) -> Change:
        previous = self._views.pop(key, None)
        self._bodies.pop(key, None)
        self._finished_bodies.pop(key, None)
        self._versions.pop(key, None)
        self._invalid.pop(key, None)
        self._unindex(key, previous)
        return Change(previous=previous, current=None)

    def body(self, key: Key) -> dict[str, Any] | None:
        """Return the stored body. A finished task's body is decoded anew on each call."""
        body = self._bodies.get(key)
        if body is not None:
            return body
        finished = self._finished_bodies.get(key)
        return json.loads(finished) if finished is not None else None

    def view(self, key: Key) -> TaskView | None:
        return self._views.get(key)

    def lookup(self, namespace: str, name: str) -> TaskView | None:
        return self._views.get((namespace, name))

    def invalid_reason(self, key: Key) -> str | None:
        return self._invalid.get(key)

    def task_keys(self) -> Iterator[Key]:
        return iter(list(self._versions))

    def unfinished_in(self, namespace: str) -> Iterator[TaskView]:
        for key in self._unfinished.get(namespace, ()):
            view = self._views.get(key)
            if view is not None:
                yield view

    def unfinished(self) -> list[TaskView]:
        """Tasks in any namespace that are not in a terminal phase."""
        return [view for namespace in list(self._unfinished) for view in self.unfinished_in(namespace)]

    def active(self) -> list[TaskView]:
        return [self._views[key] for key in self._active if key in self._views]

    def key_of_task_id(self, task_id: int) -> Key | None:
        return self._by_task_id.get(task_id)

    def children_of(self, view: TaskView) -> list[TaskView]:
        return [
            child for key in self._children.get(view.key, ()) if (child := self._views.get(key)) is not None
        ]

    def dependents_of(self, view: TaskView) -> set[Key]:
        """Tasks whose dependencies may change when `view` changes phase."""
        found = set(self._dependents.get(view.key, ()))
        found.update(self._pattern_dependents.get(view.namespace, ()))
        found.discard(view.key)
        return found

    def _index(self, view: TaskView) -> None:
        for dependency in view.spec.depends_on:
            if dependency.name is not None:
                self._dependents[(view.namespace, dependency.name)].add(view.key)
            else:
                self._pattern_dependents[view.namespace].add(view.key)
        if view.phase not in TERMINAL_PHASES:
            self._unfinished[view.namespace].add(view.key)
        if view.phase in ACTIVE_PHASES:
            self._active.add(view.key)
        if view.task_id is not None:
            self._by_task_id[view.task_id] = view.key
        if view.spec.parent:
            self._children[(view.namespace, view.spec.parent)].add(view.key)

    def _unindex(self, key: Key, view: TaskView | None) -> None:
        self._active.discard(key)
        namespace = key[0]
        self._unfinished.get(namespace, set()).discard(key)
        self._pattern_dependents.get(namespace, set()).discard(key)
        if view is None:
            return
        if view.task_id is not None and self._by_task_id.get(view.task_id) == key:
            del self._by_task_id[view.task_id]
        if view.spec.parent:
            siblings = self._children.get((namespace, view.spec.parent))
            if siblings is not None:
                siblings.discard(key)
                if not siblings:
                    del self._children[(namespace, view.spec.parent)]
        for dependency in view.spec.depends_on:
            if dependency.name is not None:
                dependents = self._dependents.get((namespace, dependency.name))
                if dependents is not None:
                    dependents.discard(key)
                    if not dependents:
                        del self._dependents[(namespace, dependency.name)]

    # Pods

    def upsert_pod(self, body: Mapping[str, Any]) -> bool:
        metadata = body.get("metadata") or {}
        key = (metadata["namespace"], metadata["name"])
        stored = self._pods.get(key)
        if stored is not None and _resource_version(stored) > _resource_version(body):
            return False
        self._pods[key] = _compact(body)
        return True

    def remove_pod(self, namespace: str, name: str) -> None:
        self._pods.pop((namespace, name), None)

    def pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._pods.get((namespace, name))
