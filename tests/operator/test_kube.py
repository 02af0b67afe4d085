"""The reconciler's API client facade: how failed requests come back, without an apiserver."""

from __future__ import annotations

import asyncio

import pytest
import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from etl_operator._kube import ApiError, ApiUnavailable, Conflict, KubeClient


def outcome_of(error: Exception) -> BaseException:
    kube = KubeClient(client.ApiClient(client.Configuration()), threads=1)

    def request() -> None:
        raise error

    async def call() -> None:
        await kube._call(request)

    try:
        with pytest.raises(Exception) as caught:
            asyncio.run(call())
    finally:
        kube.close()
    return caught.value


def test_refused_connection_is_api_unavailable() -> None:
    refused = urllib3.exceptions.MaxRetryError(None, "/api/v1/pods", "connection refused")  # type: ignore[arg-type]

    error = outcome_of(refused)

    assert isinstance(error, ApiUnavailable)
    # Callers that retry lost connections (ConnectionError, OSError) retry this one too.
    assert isinstance(error, ConnectionError)
    assert not isinstance(error, ApiError)


def test_broken_connection_is_api_unavailable() -> None:
    assert isinstance(
        outcome_of(urllib3.exceptions.ProtocolError("Response ended prematurely")), ApiUnavailable
    )


def test_status_error_keeps_its_code() -> None:
    error = outcome_of(ApiException(status=409, reason="Conflict"))

    assert isinstance(error, Conflict)
    assert error.status == 409
