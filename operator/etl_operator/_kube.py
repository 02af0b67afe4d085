"""A small asynchronous facade over the Kubernetes API calls the reconciler makes.

The official client is synchronous, so each call runs in a thread of a dedicated pool. Errors come back
as three exception types that the reconciler acts on: Conflict (re-read and retry), NotFound, and
ApiError for the rest, with the status code and the apiserver's message. A request that got no response
(the apiserver is down or restarting, or the connection broke) raises ApiUnavailable, a ConnectionError,
so callers retry it like any other lost connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from ._spec import API_GROUP, API_VERSION, PLURAL

T = TypeVar("T")

# Objects per page when the operator lists its ETLTasks at start.
LIST_PAGE_SIZE = 500


class ApiError(RuntimeError):
    """The apiserver rejected a request."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message


class Conflict(ApiError):
    """The object changed since it was read (or already exists, for a create)."""


class NotFound(ApiError):
    """The object does not exist."""


class ApiUnavailable(ConnectionError):
    """A request that got no response, because the apiserver could not be reached or broke the connection."""


def _translate(error: ApiException) -> ApiError:
    message = error.reason or ""
    with contextlib.suppress(ValueError, AttributeError):
        message = json.loads(error.body or "{}").get("message", message)
    if error.status == 409:
        return Conflict(409, message)
    if error.status == 404:
        return NotFound(404, message)
    return ApiError(int(error.status or 0), message)


def load_client_config(kubeconfig: str | None = None) -> client.ApiClient:
    """Build an API client from a kubeconfig file, $KUBECONFIG, ~/.kube/config, or the in-cluster account."""
    configuration = client.Configuration()
    loader: Any = config
    try:
        loader.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    except config.ConfigException:
        loader.load_incluster_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = 32
    return client.ApiClient(configuration)


class KubeClient:
    """The API calls of the reconciler, each awaited on a worker thread."""

    def __init__(self, api_client: client.ApiClient, *, threads: int = 16) -> None:
        # Typed as Any: the calls below ask for raw JSON (_preload_content=False), which the client's
        # annotations do not describe.
        self._custom: Any = client.CustomObjectsApi(api_client)
        self._core: Any = client.CoreV1Api(api_client)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="kube-api")

    async def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()

        def call() -> T:
            try:
                return function(*args, **kwargs)
            except ApiException as error:
                raise _translate(error) from error
            except urllib3.exceptions.HTTPError as error:
                raise ApiUnavailable(f"no response from the apiserver: {error}") from error

        return await loop.run_in_executor(self._executor, call)

    async def list_tasks(self, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        """List ETLTasks in every namespace, or only in `namespaces` when it is not empty.

        The list is read in pages of LIST_PAGE_SIZE, so that ten thousand tasks never sit in memory
        as one response beside the objects parsed from it.
        """
        items: list[dict[str, Any]] = []
        for namespace in namespaces or (None,):
            token: str | None = None
            while True:
                options: dict[str, Any] = {"limit": LIST_PAGE_SIZE}
                if token:
                    options["_continue"] = token
                if namespace is None:
                    page = await self._call(
                        self._custom.list_cluster_custom_object, API_GROUP, API_VERSION, PLURAL, **options
                    )
                else:
                    page = await self._call(
                        self._custom.list_namespaced_custom_object,
                        API_GROUP,
                        API_VERSION,
                        namespace,
                        PLURAL,
                        **options,
                    )
                items.extend(page.get("items", []))
                token = (page.get("metadata") or {}).get("continue")
                if not token:
                    break
        for item in items:
            item.setdefault("apiVersion", f"{API_GROUP}/{API_VERSION}")
        return items

    async def patch_task_status(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        """Merge-patch the status subresource; a metadata.resourceVersion in `patch` is a precondition."""
        result: dict[str, Any] = await self._call(
            self._custom.patch_namespaced_custom_object_status,
            API_GROUP,
            API_VERSION,
            namespace,
            PLURAL,
            name,
            patch,
        )
        return result

    async def create_task(self, manifest: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call(
            self._custom.create_namespaced_custom_object,
            API_GROUP,
            API_VERSION,
            manifest["metadata"]["namespace"],
            PLURAL,
            manifest,
        )
        return result

    async def delete_task(self, namespace: str, name: str) -> None:
        await self._call(
            self._custom.delete_namespaced_custom_object, API_GROUP, API_VERSION, namespace, PLURAL, name
        )

    async def list_pods(self, label_selector: str, namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
        """List the pods that match `label_selector`, in every namespace or only in `namespaces`."""
        if namespaces:
            responses = [
                await self._call(
                    self._core.list_namespaced_pod,
                    namespace,
                    label_selector=label_selector,
                    _preload_content=False,
                )
                for namespace in namespaces
            ]
        else:
            responses = [
                await self._call(
                    self._core.list_pod_for_all_namespaces,
                    label_selector=label_selector,
                    _preload_content=False,
                )
            ]
        return [item for response in responses for item in json.loads(response.data).get("items", [])]

    async def create_pod(self, manifest: dict[str, Any]) -> dict[str, Any]:
        namespace = manifest["metadata"]["namespace"]
        result = await self._call(
            self._core.create_namespaced_pod, namespace, manifest, _preload_content=False
        )
        created: dict[str, Any] = json.loads(result.data)
        return created

    async def delete_pod(self, namespace: str, name: str, grace_period_seconds: int | None = None) -> None:
        await self._call(
            self._core.delete_namespaced_pod,
            name,
            namespace,
            grace_period_seconds=grace_period_seconds,
            _preload_content=False,
        )

    async def create_event(self, namespace: str, event: dict[str, Any]) -> None:
        await self._call(self._core.create_namespaced_event, namespace, event, _preload_content=False)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
