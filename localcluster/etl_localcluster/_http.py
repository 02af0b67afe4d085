"""Readiness probes over HTTP(S) for the servers that the local cluster starts on 127.0.0.1.

`controlplane` calls `wait_until_ready` after it starts etcd, kube-apiserver, kube-controller-manager and
kube-scheduler. The requests go only to 127.0.0.1 and ignore proxy settings from the environment.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from etl_localcluster._processes import ProcessRecord, is_alive, tail

_POLL_INTERVAL_SECONDS = 0.1


class NotReadyError(RuntimeError):
    """A server did not become ready in time, or its process ended while starting."""


def client_tls_context(ca_path: Path, certificate_path: Path, key_path: Path) -> ssl.SSLContext:
    """Return a TLS context that trusts CA_PATH and presents the given client certificate."""
    context = ssl.create_default_context(cafile=str(ca_path))
    context.load_cert_chain(str(certificate_path), str(key_path))
    return context


def self_signed_tls_context() -> ssl.SSLContext:
    """Return a TLS context that accepts any certificate.

    kube-controller-manager and kube-scheduler serve their health endpoints with a certificate that they
    generate themselves at start, so there is nothing to verify it against.
    """
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def get(url: str, context: ssl.SSLContext | None = None, timeout_seconds: float = 2.0) -> tuple[int, str]:
    """GET URL and return (status, body); raise OSError if the server cannot be reached."""
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(url, timeout=timeout_seconds) as response:
            return int(response.status), response.read().decode("utf-8", errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", errors="replace")


def url_returns_ok(url: str, context: ssl.SSLContext | None = None) -> Callable[[], bool]:
    """Return a check that is true once a GET of URL returns status 200."""

    def check() -> bool:
        try:
            status, _ = get(url, context)
        except OSError:
            return False
        return status == 200

    return check


def wait_until_ready(record: ProcessRecord, is_ready: Callable[[], bool], timeout_seconds: float) -> None:
    """Wait until IS_READY returns True; raise NotReadyError if the process ends or the time runs out."""
    deadline = time.monotonic() + timeout_seconds
    while not is_ready():
        if not is_alive(record):
            raise NotReadyError(
                f"{record.name} exited while starting; see {record.log_path}. Last lines:\n"
                f"{tail(Path(record.log_path))}"
            )
        if time.monotonic() >= deadline:
            raise NotReadyError(
                f"{record.name} did not become ready within {timeout_seconds:.0f} s; see {record.log_path}"
            )
        time.sleep(_POLL_INTERVAL_SECONDS)
