"""A small JSON client for the Kubernetes API, built on the transport of the `kubernetes` package.

The pod runner, `cluster.LocalCluster` and the tests call it. It sends plain JSON and returns plain
dictionaries with the API's own field names (`spec.nodeName`, not `spec.node_name`), which is what the pod
runner reads and writes, and it streams watch events as they arrive. Authentication, TLS and connection
pooling come from `kubernetes.client.ApiClient` configured from a kubeconfig file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, cast

from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.watch.watch import iter_resp_lines

JSON = dict[str, Any]

STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
MERGE_PATCH = "application/merge-patch+json"

# Each pod worker thread of the pod runner sends its own requests; a larger pool keeps their
# connections open between requests.
_CONNECTION_POOL_SIZE = 32
_REQUEST_TIMEOUT_SECONDS = 30.0


class KubeApiError(RuntimeError):
    """The API server returned an error status."""

    def __init__(self, method: str, path: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{method} {path} failed with {status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class KubeApi:
    """JSON requests and watches against the API server named by a kubeconfig file."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig), client_configuration=configuration
        )
        configuration.connection_pool_maxsize = _CONNECTION_POOL_SIZE
        self._client = k8s_client.ApiClient(configuration)

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()  # type: ignore[no-untyped-call]

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | int | bool] | None = None,
        body: JSON | None = None,
        content_type: str = "application/json",
        timeout_seconds: float = _REQUEST_TIMEOUT_SECONDS,
    ) -> JSON:
        """Send one request and return the decoded JSON response; raise KubeApiError on an error status."""
        response = self._send(method, path, query, body, content_type, timeout_seconds)
        data = response.read()
        if not 200 <= response.status <= 299:
            raise _error_from_response(method, path, response.status, response.reason, data)
        return cast(JSON, json.loads(data)) if data else {}

    def get(self, path: str, **query: str | int | bool) -> JSON:
        """GET PATH."""
        return self.request("GET", path, query=query)

    def get_or_none(self, path: str) -> JSON | None:
        """GET PATH, or return None if the object does not exist."""
        try:
            return self.get(path)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    def create(self, path: str, body: JSON) -> JSON:
        """POST BODY to the collection at PATH."""
        return self.request("POST", path, body=body)

    def patch(self, path: str, body: JSON, content_type: str = STRATEGIC_MERGE_PATCH) -> JSON:
        """PATCH the object at PATH with a strategic merge patch, or with the patch type CONTENT_TYPE."""
        return self.request("PATCH", path, body=body, content_type=content_type)

    def delete(self, path: str, body: JSON | None = None) -> JSON:
        """DELETE the object at PATH with the optional DeleteOptions BODY."""
        return self.request("DELETE", path, body=body)

    def watch(self, path: str, resource_version: str, timeout_seconds: int, **query: str) -> Iterator[JSON]:
        """Yield the watch events (`{"type": ..., "object": ...}`) of the collection at PATH.

        The iterator ends when the server closes the watch after TIMEOUT_SECONDS. An `ERROR` event is
        yielded like the others: a status code 410 in it means RESOURCE_VERSION is too old to resume.
        """
        parameters: dict[str, str | int | bool] = dict(query)
        parameters.update(
            watch=True,
            resourceVersion=resource_version,
            allowWatchBookmarks=True,
            timeoutSeconds=timeout_seconds,
        )
        # The read timeout covers a silent connection; the server sends bookmarks and closes the
        # watch on its own after timeout_seconds.
        response = self._send("GET", path, parameters, None, "application/json", (10.0, timeout_seconds + 30))
        try:
            if not 200 <= response.status <= 299:
                data = response.read()
                raise _error_from_response("GET", path, response.status, response.reason, data)
            for line in iter_resp_lines(response.response):  # type: ignore[no-untyped-call]
                if line:
                    yield cast(JSON, json.loads(line))
        finally:
            # Close before releasing: the rest of an unfinished watch must not reach the next request
            # that reuses the connection.
            response.response.close()
            response.response.release_conn()

    def _send(
        self,
        method: str,
        path: str,
        query: Mapping[str, str | int | bool] | None,
        body: JSON | None,
        content_type: str,
        timeout: float | tuple[float, float],
    ) -> Any:
        query_pairs = [(key, _query_value(value)) for key, value in (query or {}).items()]
        headers = {"Accept": "application/json", "Content-Type": content_type}
        serialized = self._client.param_serialize(
            method,
            path,
            query_params=query_pairs,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        return self._client.call_api(*serialized, _request_timeout=timeout)


def _query_value(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _error_from_response(method: str, path: str, status: int, reason: str, data: bytes) -> KubeApiError:
    message = data.decode("utf-8", errors="replace")
    try:
        decoded = json.loads(message)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict):
        message = str(decoded.get("message", message))
        reason = str(decoded.get("reason", reason))
    return KubeApiError(method, path, status, reason, message)


def is_not_found(error: Exception) -> bool:
    """Return whether ERROR is an API error with status 404."""
    return isinstance(error, KubeApiError) and error.status == 404


def is_conflict(error: Exception) -> bool:
    """Return whether ERROR is an API error with status 409 (exists already or a precondition failed)."""
    return isinstance(error, KubeApiError) and error.status == 409
