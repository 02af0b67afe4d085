"""kopf wiring: start-up, the watches that feed the reconciler, and shutdown.

kopf owns the watch streams, reconnects and the liveness endpoint; every handler here only
hands the event to the Reconciler, which owns all decisions. The handlers are `async` so that they run
on the event loop that owns the store, never on a thread. The child request listener runs beside them
for the operator's whole life: should it fail with an error it does not handle itself, it is logged and
started again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import kopf

from etl_runtime.taskdb import TaskDatabase

from ._children import ChildRequestListener
from ._kube import KubeClient, load_client_config
from ._leader import LeaderElector, LeaseSettings
from ._pods import LABEL_MANAGED_BY
from ._reconciler import Reconciler
from ._settings import OperatorSettings
from ._spec import API_GROUP, API_VERSION, PLURAL
from ._store import TaskStore

logger = logging.getLogger("etl_operator")

# Seconds before a background loop that failed unexpectedly starts again.
RESTART_DELAY_SECONDS = 5.0


async def keep_running(description: str, loop: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run LOOP until it returns or is cancelled; log any other error and start it again.

    A loop that ends with an error would otherwise stop without a word, because nothing awaits its
    asyncio task before the operator shuts down.
    """
    while True:
        try:
            await loop()
            return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s failed; starting it again in %.0f s", description, RESTART_DELAY_SECONDS)
        await asyncio.sleep(RESTART_DELAY_SECONDS)


@kopf.on.startup()
async def start_operator(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # kopf's own Events for handler logs would duplicate the reconciler's, which posts one per transition.
    settings.posting.enabled = False
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.persistence.finalizer = f"{API_GROUP}/operator"
    namespaces: tuple[str, ...] = tuple(memo.get("namespaces") or ())
    if namespaces:
        # Listing CustomResourceDefinitions is cluster-wide, which a namespaced operator may not do;
        # the resources it watches are known in advance.
        settings.scanning.disabled = True

    operator_settings = OperatorSettings.from_env()

    # A standby replica waits here, before it reads or writes anything, until it holds the Lease.
    lease: LeaseSettings | None = memo.get("lease")
    if lease is not None:
        elector = LeaderElector(load_client_config(), lease)
        await elector.acquire()
        memo["elector"] = elector
        memo["lease_keeper"] = asyncio.create_task(elector.keep(), name="lease-keeper")

    # The schema must be current before the first run is recorded.
    database = TaskDatabase(operator_settings.database_url)
    await asyncio.to_thread(database.upgrade)

    kube = KubeClient(load_client_config(), threads=operator_settings.workers)
    store = TaskStore()
    reconciler = Reconciler(operator_settings, store, kube, database)

    # Claims held by Starting and Running tasks must be known before anything is admitted, so the
    # operator lists every task and pod once, before the watches deliver their first events.
    pods = await kube.list_pods(label_selector=f"{LABEL_MANAGED_BY}=kube-etl", namespaces=namespaces)
    tasks = await kube.list_tasks(namespaces)
    reconciler.prime(tasks, pods)
    reconciler.start()
    listener = ChildRequestListener(operator_settings.database_url, database, kube, store, reconciler.enqueue)
    memo["child_listener"] = asyncio.create_task(
        keep_running("listening for child requests", listener.run), name="child-request-listener"
    )
    memo["reconciler"] = reconciler
    memo["kube"] = kube
    memo["database"] = database
    logger.info("kube-etl operator started: %d ETLTasks and %d pods known", len(tasks), len(pods))


@kopf.on.cleanup()
async def stop_operator(memo: kopf.Memo, **_: Any) -> None:
    # Shutdown never deletes pods: a restarted operator adopts them by name.
    keeper: asyncio.Task[None] | None = memo.get("lease_keeper")
    if keeper is not None:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    listener: asyncio.Task[None] | None = memo.get("child_listener")
    if listener is not None:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
    reconciler: Reconciler | None = memo.get("reconciler")
    if reconciler is not None:
        await reconciler.stop()
    kube: KubeClient | None = memo.get("kube")
    if kube is not None:
        kube.close()
    database: TaskDatabase | None = memo.get("database")
    if database is not None:
        database.dispose()
    elector: LeaderElector | None = memo.get("elector")
    if elector is not None:
        await elector.release()
    logger.info("kube-etl operator stopped; running pods keep running")


@kopf.on.event(API_GROUP, API_VERSION, PLURAL)
async def on_task_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["reconciler"].task_event(event.get("type"), event["object"])


@kopf.on.event("", "v1", "pods", labels={LABEL_MANAGED_BY: "kube-etl"})
async def on_pod_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["reconciler"].pod_event(event.get("type"), event["object"])


async def on_node_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["reconciler"].node_event(event.get("type"), event["object"])


async def on_namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo["reconciler"].namespace_event(event.get("type"), event["object"])


def register_cluster_watches() -> None:
    """Watch Nodes (lost nodes fail their attempts) and Namespaces (per-namespace limits).

    Only an operator that watches the whole cluster registers these: a namespaced operator's Roles
    cannot grant cluster-scoped reads, so it learns of a lost node from its pods' Ready condition,
    and uses the operator-wide concurrency limit.
    """
    kopf.on.event("", "v1", "nodes")(on_node_event)
    kopf.on.event("", "v1", "namespaces")(on_namespace_event)
