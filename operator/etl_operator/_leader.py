"""Leader election through a coordination.k8s.io Lease, so that one replica of the operator acts at a time.

The start-up handler calls `acquire` before the operator lists anything: a standby replica waits there
while the leader renews the Lease, also while the apiserver cannot be reached. Losing the Lease ends the
process at once (the pod restarts as a standby), because two replicas that both admit tasks could start
conflicting tasks together. A leader that cannot reach the apiserver keeps acting until its last renewal
is almost `duration_seconds` old, then exits the same way: by then a standby may take the Lease.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ._status import utc_now

logger = logging.getLogger("etl_operator")

# Exit code of a replica that lost its Lease; its pod restarts and waits as a standby.
LOST_LEASE_EXIT_CODE = 75
# A request that fails with one of these does not show who holds the Lease: the apiserver returned an
# error status, could not be reached, broke the connection or did not respond in time.
_REQUEST_ERRORS = (ApiException, urllib3.exceptions.HTTPError, OSError)


def _micro_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _describe(error: Exception) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}"
    return str(error) or type(error).__name__


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class LeaseSettings:
    namespace: str
    name: str
    identity: str
    # A leader that has not renewed for this long is replaced.
    duration_seconds: int = 15
    renew_seconds: float = 5.0


class LeaderElector:
    """Acquire and keep one Lease; a standby polls it every renew_seconds."""

    def __init__(self, api_client: client.ApiClient, settings: LeaseSettings) -> None:
        self._api: Any = client.CoordinationV1Api(api_client)
        self._settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leader-election")

    async def _run(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        # A request that hangs must not keep `keep` from noticing that the Lease runs out.
        kwargs["_request_timeout"] = self._settings.renew_seconds
        return await loop.run_in_executor(self._executor, lambda: function(*args, **kwargs))

    async def acquire(self) -> None:
        """Wait until this replica holds the Lease, also while the apiserver cannot be reached."""
        announced = False
        while True:
            try:
                if await self._try_acquire():
                    break
            except _REQUEST_ERRORS as error:
                if isinstance(error, ApiException) and (error.status or 0) < 500:
                    raise
                logger.warning(
                    "reading Lease %s/%s failed; retrying in %.0f s: %s",
                    self._settings.namespace,
                    self._settings.name,
                    self._settings.renew_seconds,
                    _describe(error),
                )
            else:
                if not announced:
                    logger.info(
                        "standing by: Lease %s/%s is held by another replica",
                        self._settings.namespace,
                        self._settings.name,
                    )
                    announced = True
            await asyncio.sleep(self._settings.renew_seconds)
        logger.info(
            "leading: this replica (%s) holds Lease %s/%s",
            self._settings.identity,
            self._settings.namespace,
            self._settings.name,
        )

    async def keep(self) -> None:
        """Renew the Lease until cancelled; end the process when it cannot be renewed in time.

        The process ends 2 s before the Lease could expire after the last renewal that got through, also
        while a renewal request hangs, so that a standby that takes the Lease over never acts beside it.
        """
        loop = asyncio.get_running_loop()
        margin = self._settings.duration_seconds - 2
        deadline = loop.time() + margin
        while True:
            await asyncio.sleep(max(0.0, min(self._settings.renew_seconds, deadline - loop.time())))
            started = loop.time()
            if started >= deadline:
                self._exit("could not renew it in time")
            try:
                held = await asyncio.wait_for(self._try_acquire(), timeout=deadline - started)
            except _REQUEST_ERRORS as error:
                # TimeoutError, from wait_for, is an OSError.
                logger.warning("renewing Lease %s failed: %s", self._settings.name, _describe(error))
                continue
            if not held:
                self._exit("another replica took it")
            deadline = started + margin

    def _exit(self, cause: str) -> None:
        logger.error(
            "lost Lease %s/%s (%s); exiting so that only one replica acts",
            self._settings.namespace,
            self._settings.name,
            cause,
        )
        logging.shutdown()
        os._exit(LOST_LEASE_EXIT_CODE)

    async def release(self) -> None:
        """Give the Lease up on a clean shutdown, so a standby takes over without waiting for it to expire."""
        try:
            lease = await self._read()
            if (
                lease is not None
                and (lease.get("spec") or {}).get("holderIdentity") == self._settings.identity
            ):
                lease["spec"]["holderIdentity"] = None
                await self._run(
                    self._api.replace_namespaced_lease, self._settings.name, self._settings.namespace, lease
                )
        except _REQUEST_ERRORS as error:
            logger.warning("releasing Lease %s failed: %s", self._settings.name, _describe(error))
        self._executor.shutdown(wait=False)

    async def _read(self) -> dict[str, Any] | None:
        try:
            response = await self._run(
                self._api.read_namespaced_lease,
                self._settings.name,
                self._settings.namespace,
                _preload_content=False,
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        lease: dict[str, Any] = json.loads(response.data)
        return lease

    async def _try_acquire(self) -> bool:
        """Take or renew the Lease if it is free, expired or ours; return whether we hold it now."""
        now = utc_now()
        lease = await self._read()
        spec = {
            "holderIdentity": self._settings.identity,
            "leaseDurationSeconds": self._settings.duration_seconds,
            "renewTime": _micro_time(now),
        }
        if lease is None:
            body = {
                "metadata": {"name": self._settings.name, "namespace": self._settings.namespace},
                "spec": {**spec, "acquireTime": _micro_time(now), "leaseTransitions": 0},
            }
            try:
                await self._run(self._api.create_namespaced_lease, self._settings.namespace, body)
            except ApiException as error:
                if error.status == 409:
                    return False
                raise
            return True

        current = lease.get("spec") or {}
        holder = current.get("holderIdentity")
        renewed = _parse_time(current.get("renewTime"))
        duration = int(current.get("leaseDurationSeconds") or self._settings.duration_seconds)
        expired = renewed is None or now - renewed > timedelta(seconds=duration)
        if holder and holder != self._settings.identity and not expired:
            return False
        new_spec = {**current, **spec}
        if holder != self._settings.identity:
            new_spec["acquireTime"] = _micro_time(now)
            new_spec["leaseTransitions"] = int(current.get("leaseTransitions") or 0) + 1
        lease["spec"] = new_spec
        try:
            # The resourceVersion in the body makes this a compare-and-swap: two standbys cannot both win.
            await self._run(
                self._api.replace_namespaced_lease, self._settings.name, self._settings.namespace, lease
            )
        except ApiException as error:
            if error.status == 409:
                return False
            raise
        return True
