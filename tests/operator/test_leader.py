"""Leader election while the apiserver cannot be reached: the standby waits, the leader exits in time.

`LeaderElector` talks to a fake coordination.k8s.io API here, which can refuse connections as a stopped
apiserver does, or hang, so the tests need no cluster.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from etl_operator._leader import LeaderElector, LeaseSettings

SETTINGS = LeaseSettings(
    namespace="kube-etl",
    name="kube-etl-operator",
    identity="replica-a",
    duration_seconds=3,
    renew_seconds=0.05,
)


class LeaseExit(Exception):
    """Raised instead of ending the test process when the elector gives its Lease up."""


class Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self.data = json.dumps(body).encode()


class FakeLeases:
    """The Lease calls of CoordinationV1Api, on one Lease kept in memory."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.unreachable = False
        self.hang = threading.Event()
        self.released = threading.Event()
        self.renewals = 0

    def _check(self) -> None:
        if self.hang.is_set():
            self.released.wait(10)
        if self.unreachable:
            raise urllib3.exceptions.MaxRetryError(None, "/leases", "connection refused")  # type: ignore[arg-type]

    def read_namespaced_lease(self, name: str, namespace: str, **_: Any) -> Response:
        self._check()
        if self.lease is None:
            raise ApiException(status=404, reason="Not Found")
        return Response(self.lease)

    def create_namespaced_lease(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self._check()
        self.lease = {**body, "metadata": {**body["metadata"], "resourceVersion": "1"}}

    def replace_namespaced_lease(self, name: str, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self._check()
        self.lease = body
        self.renewals += 1


def elector_with(leases: FakeLeases) -> LeaderElector:
    elector = LeaderElector(client.ApiClient(client.Configuration()), SETTINGS)
    elector._api = leases

    def give_up(cause: str) -> None:
        raise LeaseExit(cause)

    elector._exit = give_up  # type: ignore[method-assign]
    return elector


def test_standby_waits_while_apiserver_is_unreachable() -> None:
    leases = FakeLeases()
    leases.unreachable = True
    elector = elector_with(leases)

    async def scenario() -> None:
        waiting = asyncio.create_task(elector.acquire())
        await asyncio.sleep(0.3)
        assert not waiting.done()
        leases.unreachable = False
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
    assert leases.lease is not None
    assert leases.lease["spec"]["holderIdentity"] == "replica-a"


def test_leader_keeps_lease_through_short_outage() -> None:
    leases = FakeLeases()
    elector = elector_with(leases)

    async def scenario() -> None:
        await elector.acquire()
        keeper = asyncio.create_task(elector.keep())
        await asyncio.sleep(0.2)
        leases.unreachable = True
        await asyncio.sleep(0.5)
        leases.unreachable = False
        renewals = leases.renewals
        await asyncio.sleep(0.9)
        assert not keeper.done()
        assert leases.renewals > renewals
        keeper.cancel()

    asyncio.run(scenario())


def test_leader_exits_when_outage_outlasts_lease() -> None:
    leases = FakeLeases()
    elector = elector_with(leases)

    async def scenario() -> float:
        await elector.acquire()
        leases.unreachable = True
        started = time.monotonic()
        with pytest.raises(LeaseExit, match="could not renew it in time"):
            await asyncio.wait_for(elector.keep(), 5)
        return time.monotonic() - started

    # The Lease lasts 3 s; the leader gives up 2 s before that.
    assert 0.9 <= asyncio.run(scenario()) < 2.0


def test_leader_exits_while_renewal_hangs() -> None:
    leases = FakeLeases()
    elector = elector_with(leases)

    async def scenario() -> float:
        await elector.acquire()
        leases.hang.set()
        started = time.monotonic()
        with pytest.raises(LeaseExit, match="could not renew it in time"):
            await asyncio.wait_for(elector.keep(), 5)
        return time.monotonic() - started

    try:
        assert asyncio.run(scenario()) < 2.0
    finally:
        leases.released.set()
