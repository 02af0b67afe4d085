"""Child tasks: requests that a running parent writes to the task database become child ETLTasks.

Job pods have no access to the Kubernetes API, so a parent asks for a child by inserting a row into
`task_child_request` and sending a NOTIFY. `ChildRequestListener` LISTENs for those notifications (and
for approvals), creates each child ETLTask with `spec.parent` and an ownerReference to the parent, and
records the child's name in the request. The reconciler keeps children that need approval in
AwaitingApproval and parents whose pod finished in WaitingForChildren. A child inherits its parent's
secret parameters by reference, so their values never pass through a request.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

from etl_runtime.taskdb import CHILD_APPROVAL_CHANNEL, CHILD_REQUEST_CHANNEL, ChildRequest, TaskDatabase

from ._kube import ApiError, Conflict, KubeClient
from ._spec import API_GROUP, API_VERSION, KIND
from ._store import Key, TaskStore

logger = logging.getLogger("etl_operator")

ANNOTATION_CHILD_REQUEST = f"{API_GROUP}/child-request"
LABEL_PARENT = f"{API_GROUP}/parent"
MAX_NAME_LENGTH = 253
# Seconds between attempts to reconnect the LISTEN connection, doubling up to the last value.
RECONNECT_DELAYS = (0.5, 1.0, 2.0, 5.0, 10.0)
# Spec fields a child inherits from its parent.
INHERITED_FIELDS = ("image", "config", "podTemplate", "notify", "activeDeadlineSeconds")


def child_name(parent_name: str, request_id: int) -> str:
    """Return the deterministic name of a request's child ETLTask, `<parent>-c<request id>`."""
    suffix = f"-c{request_id}"
    if len(parent_name) + len(suffix) <= MAX_NAME_LENGTH:
        return parent_name + suffix
    digest = hashlib.sha256(parent_name.encode()).hexdigest()[:10]
    return f"{parent_name[: MAX_NAME_LENGTH - len(suffix) - 11]}-{digest}{suffix}"


def child_manifest(parent: Mapping[str, Any], request: ChildRequest) -> dict[str, Any]:
    """Build the ETLTask of a child request, owned by the parent and inheriting its run settings."""
    metadata = parent["metadata"]
    parent_spec = parent.get("spec") or {}
    spec: dict[str, Any] = {
        "task": request.task_class,
        "parent": metadata["name"],
        "parameters": dict(request.parameters),
        "requiresApproval": request.needs_approval,
        # Children of one parent often run the same class side by side.
        "allowConcurrentRuns": True,
    }
    if request.display_name:
        spec["displayName"] = request.display_name
    for field in INHERITED_FIELDS:
        if field in parent_spec:
            spec[field] = parent_spec[field]
    # A parameter of the request replaces an inherited secret parameter of the same name.
    requested = {str(name).lower() for name in request.parameters}
    secret_parameters = [
        entry
        for entry in parent_spec.get("secretParameters") or ()
        if str(entry.get("name", "")).lower() not in requested
    ]
    if secret_parameters:
        spec["secretParameters"] = secret_parameters
    return {
        "apiVersion": f"{API_GROUP}/{API_VERSION}",
        "kind": KIND,
        "metadata": {
            "name": child_name(metadata["name"], request.id),
            "namespace": metadata["namespace"],
            "labels": {LABEL_PARENT: metadata["name"][:63].rstrip("-.")},
            "annotations": {ANNOTATION_CHILD_REQUEST: str(request.id)},
            "ownerReferences": [
                {
                    "apiVersion": f"{API_GROUP}/{API_VERSION}",
                    "kind": KIND,
                    "name": metadata["name"],
                    "uid": metadata["uid"],
                }
            ],
        },
        "spec": spec,
    }


def libpq_url(sqlalchemy_url: str) -> str:
    """Turn a SQLAlchemy URL (postgresql+psycopg://...) into a libpq connection URI."""
    return make_url(sqlalchemy_url).set(drivername="postgresql").render_as_string(hide_password=False)


class ChildRequestListener:
    """LISTENs for child requests and approvals and acts on them; catches up after each reconnect."""

    def __init__(
        self,
        database_url: str,
        database: TaskDatabase,
        kube: KubeClient,
        store: TaskStore,
        wake: Callable[[Key], None],
    ) -> None:
        self._conninfo = libpq_url(database_url)
        self._database = database
        self._kube = kube
        self._store = store
        self._wake = wake
        self._lock = asyncio.Lock()

    async def run(self) -> None:
        failures = 0
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as error:
                delay = RECONNECT_DELAYS[min(failures, len(RECONNECT_DELAYS) - 1)]
                failures += 1
                logger.warning(
                    "listening for child requests failed; reconnecting in %.1f s: %s", delay, error
                )
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as connection:
            await connection.execute(f"LISTEN {CHILD_REQUEST_CHANNEL}")
            await connection.execute(f"LISTEN {CHILD_APPROVAL_CHANNEL}")
            # Requests made while no operator listened (operator down, database restarted) come first.
            await self.create_pending_children()
            self._wake_awaiting_approval()
            async for notification in connection.notifies():
                if notification.channel == CHILD_REQUEST_CHANNEL:
                    await self.create_pending_children()
                else:
                    self._wake_awaiting_approval()

    def _wake_awaiting_approval(self) -> None:
        for key in self._store.task_keys():
            view = self._store.view(key)
            if (
                view is not None
                and view.spec.requires_approval
                and view.phase in (None, "Pending", "AwaitingApproval")
            ):
                self._wake(key)

    async def create_pending_children(self) -> None:
        """Create an ETLTask for every request that has none yet and whose parent is in the store."""
        async with self._lock:
            requests = await asyncio.to_thread(self._database.child_requests, None, only_unassigned=True)
            for request in requests:
                await self._create_child(request)

    async def _create_child(self, request: ChildRequest) -> None:
        parent_key = self._store.key_of_task_id(request.parent_task_id)
        parent = self._store.body(parent_key) if parent_key is not None else None
        if parent is None:
            logger.debug(
                "child request %d waits: its parent task %d is not known", request.id, request.parent_task_id
            )
            return
        manifest = child_manifest(parent, request)
        namespace, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
        try:
            created = await self._kube.create_task(manifest)
            self._store.upsert(created)
            logger.info(
                "ETLTask %s/%s: created child %s (%s) for request %d",
                namespace,
                parent["metadata"]["name"],
                name,
                request.task_class,
                request.id,
            )
        except Conflict:
            pass
        except ApiError as error:
            logger.error(
                "ETLTask %s/%s: creating child %s for request %d was rejected: %s",
                namespace,
                parent["metadata"]["name"],
                name,
                request.id,
                error,
            )
            return
        await asyncio.to_thread(self._database.assign_child, request.id, namespace, name)
