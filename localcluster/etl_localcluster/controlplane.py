"""A real Kubernetes control plane run from binaries on 127.0.0.1, as controller-runtime's envtest does.

`cluster.LocalCluster` starts and stops it; tests may use it on its own. `ControlPlane.start` creates a
small certificate authority and the credentials of every component, then starts etcd, kube-apiserver
(waiting for `/readyz`), kube-controller-manager and kube-scheduler, each in a session of its own with
its output in `STATE_DIR/logs/NAME.log`. The PIDs go to `STATE_DIR/controlplane.json`, so another
process (`etl-localcluster down`) can stop them with `ControlPlane.load(STATE_DIR).stop()`.
`ControlPlane.restart_api_server` stops kube-apiserver and starts it again on the same port with the same
certificates and etcd data, for the fault tests.

There is no kubelet. The pod runner (`etl_localcluster.podrunner`) is a stand-in for it.
"""

from __future__ import annotations

import base64
import json
import logging
import shutil
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from etl_localcluster import _http
from etl_localcluster._certs import CertificateAuthority, generate_signing_key_pair
from etl_localcluster._processes import (
    ProcessError,
    ProcessRecord,
    free_port,
    is_alive,
    signal_group,
    start_process,
    stop_process,
    wait_until_ended,
    wait_until_ports_closed,
)

logger = logging.getLogger(__name__)

SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
# The first address of the service range, which kube-apiserver gives to the `kubernetes` Service.
KUBERNETES_SERVICE_IP = "10.0.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
API_SERVER_DNS_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")

_API_SERVER_READY_TIMEOUT_SECONDS = 60.0
_COMPONENT_READY_TIMEOUT_SECONDS = 30.0
_STOP_TIMEOUT_SECONDS = 10.0
_PORT_CLOSE_TIMEOUT_SECONDS = 10.0


class ControlPlaneError(RuntimeError):
    """The control plane could not be started or stopped."""


@dataclass(frozen=True)
class ControlPlaneLayout:
    """The files and folders of a control plane below its state folder."""

    state_dir: Path

    @property
    def certs_dir(self) -> Path:
        return self.state_dir / "certs"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def etcd_data_dir(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def kubeconfigs_dir(self) -> Path:
        return self.state_dir / "kubeconfigs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "controlplane.json"

    def cert(self, name: str) -> Path:
        return self.certs_dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.certs_dir / f"{name}.key"

    @property
    def service_account_private_key(self) -> Path:
        return self.certs_dir / "service-account.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.certs_dir / "service-account.pub"

    def component_kubeconfig(self, component: str) -> Path:
        return self.kubeconfigs_dir / f"{component}.kubeconfig"

    def log(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of the control plane components."""

    etcd_client: int
    etcd_peer: int
    api_server: int
    controller_manager: int
    scheduler: int

    @classmethod
    def allocate(cls) -> Ports:
        """Pick free ports on 127.0.0.1 for every component."""
        return cls(free_port(), free_port(), free_port(), free_port(), free_port())


def etcd_command(binary: Path, layout: ControlPlaneLayout, ports: Ports) -> list[str]:
    """Return the etcd command line: one member, loopback only, no fsync (data is thrown away)."""
    client_url = f"http://127.0.0.1:{ports.etcd_client}"
    peer_url = f"http://127.0.0.1:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=kube-etl",
        f"--data-dir={layout.etcd_data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=kube-etl={peer_url}",
        "--unsafe-no-fsync=true",
    ]


def api_server_command(binary: Path, layout: ControlPlaneLayout, ports: Ports) -> list[str]:
    """Return the kube-apiserver command line."""
    return [
        str(binary),
        f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
        f"--cert-dir={layout.certs_dir}",
        f"--tls-cert-file={layout.cert('apiserver')}",
        f"--tls-private-key-file={layout.key('apiserver')}",
        f"--client-ca-file={layout.cert('ca')}",
        f"--secure-port={ports.api_server}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
        "--authorization-mode=Node,RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={layout.service_account_public_key}",
        f"--service-account-signing-key-file={layout.service_account_private_key}",
        # No other apiserver instance exists, and the `kubernetes` Service endpoints are not needed.
        "--endpoint-reconciler-type=none",
    ]


def controller_manager_command(binary: Path, layout: ControlPlaneLayout, ports: Ports) -> list[str]:
    """Return the kube-controller-manager command line (all default controllers)."""
    kubeconfig = layout.component_kubeconfig("kube-controller-manager")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--root-ca-file={layout.cert('ca')}",
        f"--service-account-private-key-file={layout.service_account_private_key}",
        "--use-service-account-credentials=true",
        f"--cluster-signing-cert-file={layout.cert('ca')}",
        f"--cluster-signing-key-file={layout.key('ca')}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.controller_manager}",
        f"--cert-dir={layout.certs_dir / 'kube-controller-manager'}",
    ]


def scheduler_command(binary: Path, layout: ControlPlaneLayout, ports: Ports) -> list[str]:
    """Return the kube-scheduler command line."""
    kubeconfig = layout.component_kubeconfig("kube-scheduler")
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--leader-elect=false",
        "--bind-address=127.0.0.1",
        f"--secure-port={ports.scheduler}",
        f"--cert-dir={layout.certs_dir / 'kube-scheduler'}",
    ]


def kubeconfig_document(
    server_url: str, ca_pem: bytes, certificate_pem: bytes, key_pem: bytes
) -> dict[str, Any]:
    """Return a kubeconfig with one cluster, one client-certificate user and one context, data inlined."""

    def encode(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    name = "kube-etl-local"
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": name, "cluster": {"server": server_url, "certificate-authority-data": encode(ca_pem)}}
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": encode(certificate_pem),
                    "client-key-data": encode(key_pem),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name, "namespace": "default"}}],
        "current-context": name,
    }


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler on 127.0.0.1.

    `start` is idempotent: it returns at once when the processes recorded in the state folder run.
    """

    def __init__(self, bin_dir: Path, state_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.state_dir = state_dir
        self.layout = ControlPlaneLayout(state_dir)
        self.api_server_url = ""
        self.processes: list[ProcessRecord] = []
        self._read_state()

    @classmethod
    def load(cls, state_dir: Path) -> ControlPlane:
        """Return the control plane recorded in STATE_DIR, running or not, to inspect or stop it."""
        layout = ControlPlaneLayout(state_dir)
        if not layout.state_file.exists():
            raise ControlPlaneError(
                f"no control plane recorded in {state_dir}: {layout.state_file} is missing"
            )
        state = json.loads(layout.state_file.read_text())
        return cls(Path(state["bin_dir"]), state_dir)

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (user `kube-etl-admin` in group `system:masters`)."""
        return self.layout.admin_kubeconfig

    def is_running(self) -> bool:
        """Return whether all four processes recorded in the state file run."""
        return len(self.processes) == len(BINARIES) and all(is_alive(record) for record in self.processes)

    def start(self) -> None:
        """Start the control plane and wait until each component reports healthy."""
        if self.is_running():
            return
        if self.processes:
            self.stop()
        self._check_binaries()
        self._prepare_state_dir()
        ports = Ports.allocate()
        self.api_server_url = f"https://127.0.0.1:{ports.api_server}"
        self._create_credentials()
        try:
            self._start_components(ports)
        except (_http.NotReadyError, ProcessError, OSError) as error:
            self._stop_after_failed_start()
            raise ControlPlaneError(str(error)) from error
        except BaseException:
            self._stop_after_failed_start()
            raise

    def _stop_after_failed_start(self) -> None:
        # The error that stopped the start matters more than one from stopping, which is only logged.
        try:
            self.stop()
        except (ControlPlaneError, ProcessError) as error:
            logger.warning("stopping the control plane after a failed start failed: %s", error)

    def stop(self) -> None:
        """Stop the components in reverse order with SIGTERM, then SIGKILL; wait for their ports to close."""
        errors: list[str] = []
        for record in reversed(self.processes):
            try:
                stop_process(record, _STOP_TIMEOUT_SECONDS)
            except ProcessError as error:
                errors.append(str(error))
        ports = [port for record in self.processes for port in record.ports]
        still_open = wait_until_ports_closed(ports, _PORT_CLOSE_TIMEOUT_SECONDS)
        if still_open:
            errors.append(f"ports {still_open} on 127.0.0.1 are still open after the control plane stopped")
        self.processes = []
        self.layout.state_file.unlink(missing_ok=True)
        if errors:
            raise ControlPlaneError("; ".join(errors))

    def write_kubeconfig(self, path: Path, user: str, groups: Sequence[str] = ()) -> Path:
        """Issue a client certificate for USER in GROUPS and write a kubeconfig for it to PATH."""
        if not self.api_server_url:
            raise ControlPlaneError("the control plane has no API server URL yet: call start() first")
        authority = CertificateAuthority.load(self.layout.cert("ca"), self.layout.key("ca"))
        credentials = authority.issue_client_certificate(user, groups)
        document = kubeconfig_document(
            self.api_server_url,
            authority.credentials().certificate_pem,
            credentials.certificate_pem,
            credentials.private_key_pem,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return path

    def _check_binaries(self) -> None:
        missing = [name for name in BINARIES if not (self.bin_dir / name).is_file()]
        if missing:
            raise ControlPlaneError(
                f"missing {', '.join(missing)} in {self.bin_dir}; "
                "run hack/build-control-plane.sh to build them"
            )

    def _prepare_state_dir(self) -> None:
        # Each start is a new, empty cluster: drop the etcd data and credentials of an earlier run.
        for folder in (self.layout.etcd_data_dir, self.layout.certs_dir, self.layout.kubeconfigs_dir):
            shutil.rmtree(folder, ignore_errors=True)
        self.layout.etcd_data_dir.mkdir(parents=True, mode=0o700)
        self.layout.certs_dir.mkdir(parents=True, mode=0o700)
        self.layout.logs_dir.mkdir(parents=True, exist_ok=True)

    def _create_credentials(self) -> None:
        layout = self.layout
        authority = CertificateAuthority.generate("kube-etl-local-ca")
        authority.credentials().write(layout.cert("ca"), layout.key("ca"))
        serving = authority.issue_serving_certificate(
            "kube-apiserver", API_SERVER_DNS_NAMES, ("127.0.0.1", KUBERNETES_SERVICE_IP)
        )
        serving.write(layout.cert("apiserver"), layout.key("apiserver"))
        admin = authority.issue_client_certificate("kube-etl-admin", ["system:masters"])
        admin.write(layout.cert("admin"), layout.key("admin"))
        private_pem, public_pem = generate_signing_key_pair()
        layout.service_account_private_key.touch(mode=0o600)
        layout.service_account_private_key.write_bytes(private_pem)
        layout.service_account_public_key.write_bytes(public_pem)

        self.write_kubeconfig(layout.admin_kubeconfig, "kube-etl-admin", ["system:masters"])
        self.write_kubeconfig(
            layout.component_kubeconfig("kube-controller-manager"), "system:kube-controller-manager"
        )
        self.write_kubeconfig(layout.component_kubeconfig("kube-scheduler"), "system:kube-scheduler")

    def _start_components(self, ports: Ports) -> None:
        layout = self.layout
        etcd = self._start(
            "etcd", etcd_command(self.bin_dir / "etcd", layout, ports), ports.etcd_client, ports.etcd_peer
        )
        _http.wait_until_ready(
            etcd,
            _http.url_returns_ok(f"http://127.0.0.1:{ports.etcd_client}/health"),
            _COMPONENT_READY_TIMEOUT_SECONDS,
        )

        api_server = self._start(
            "kube-apiserver",
            api_server_command(self.bin_dir / "kube-apiserver", layout, ports),
            ports.api_server,
        )
        admin_tls = _http.client_tls_context(layout.cert("ca"), layout.cert("admin"), layout.key("admin"))
        _http.wait_until_ready(
            api_server,
            _http.url_returns_ok(f"{self.api_server_url}/readyz", admin_tls),
            _API_SERVER_READY_TIMEOUT_SECONDS,
        )

        controller_manager = self._start(
            "kube-controller-manager",
            controller_manager_command(self.bin_dir / "kube-controller-manager", layout, ports),
            ports.controller_manager,
        )
        scheduler = self._start(
            "kube-scheduler",
            scheduler_command(self.bin_dir / "kube-scheduler", layout, ports),
            ports.scheduler,
        )
        unverified = _http.self_signed_tls_context()
        for record, port in ((controller_manager, ports.controller_manager), (scheduler, ports.scheduler)):
            _http.wait_until_ready(
                record,
                _http.url_returns_ok(f"https://127.0.0.1:{port}/healthz", unverified),
                _COMPONENT_READY_TIMEOUT_SECONDS,
            )

    def restart_api_server(self, down_seconds: float = 0.0, *, kill: bool = False) -> ProcessRecord:
        """Stop kube-apiserver, start it again in place and return the record of the new process.

        The stop sends SIGTERM, and SIGKILL if the server still runs after 10 s. With KILL it sends SIGKILL
        at once, as a crash would. Once the port has closed, the server stays down for DOWN_SECONDS. Then
        it starts with the same command line, so the port, certificates and etcd data are the same: every
        kubeconfig keeps working and every object is still there. The new PID replaces the old one in
        controlplane.json before the method waits for `/readyz`. The new output is appended to the log.
        """
        if not self.is_running():
            raise ControlPlaneError(
                f"the control plane recorded in {self.state_dir} does not run, so kube-apiserver cannot "
                "be restarted in place; start the control plane first"
            )
        ports = self._recorded_ports()
        index = [record.name for record in self.processes].index("kube-apiserver")
        old = self.processes[index]
        try:
            if kill:
                signal_group(old, signal.SIGKILL)
                if not wait_until_ended(old, _STOP_TIMEOUT_SECONDS):
                    raise ProcessError(f"kube-apiserver (PID {old.pid}) still runs after SIGKILL")
            else:
                stop_process(old, _STOP_TIMEOUT_SECONDS)
        except ProcessError as error:
            raise ControlPlaneError(str(error)) from error
        still_open = wait_until_ports_closed(old.ports, _PORT_CLOSE_TIMEOUT_SECONDS)
        if still_open:
            raise ControlPlaneError(
                f"port {still_open[0]} on 127.0.0.1 is still open after kube-apiserver stopped"
            )
        time.sleep(down_seconds)

        argv = api_server_command(self.bin_dir / "kube-apiserver", self.layout, ports)
        try:
            record = start_process(
                old.name, argv, self.layout.log(old.name), ports=(ports.api_server,), append=True
            )
        except ProcessError as error:
            raise ControlPlaneError(str(error)) from error
        self.processes[index] = record
        self._write_state()
        admin_tls = _http.client_tls_context(
            self.layout.cert("ca"), self.layout.cert("admin"), self.layout.key("admin")
        )
        try:
            _http.wait_until_ready(
                record,
                _http.url_returns_ok(f"{self.api_server_url}/readyz", admin_tls),
                _API_SERVER_READY_TIMEOUT_SECONDS,
            )
        except _http.NotReadyError as error:
            raise ControlPlaneError(str(error)) from error
        logger.info("restarted kube-apiserver on port %d (PID %d)", ports.api_server, record.pid)
        return record

    def _recorded_ports(self) -> Ports:
        """Return the ports of the running components, as their records in controlplane.json name them."""
        by_name = {record.name: record.ports for record in self.processes}
        etcd_client, etcd_peer = by_name["etcd"]
        (api_server,) = by_name["kube-apiserver"]
        (controller_manager,) = by_name["kube-controller-manager"]
        (scheduler,) = by_name["kube-scheduler"]
        return Ports(etcd_client, etcd_peer, api_server, controller_manager, scheduler)

    def _start(self, name: str, argv: list[str], *ports: int) -> ProcessRecord:
        record = start_process(name, argv, self.layout.log(name), ports=ports)
        self.processes.append(record)
        self._write_state()
        return record

    def _write_state(self) -> None:
        state = {
            "bin_dir": str(self.bin_dir),
            "api_server_url": self.api_server_url,
            "processes": [record.to_json() for record in self.processes],
        }
        self.layout.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _read_state(self) -> None:
        if not self.layout.state_file.exists():
            return
        state = json.loads(self.layout.state_file.read_text())
        self.api_server_url = str(state["api_server_url"])
        self.processes = [ProcessRecord.from_json(entry) for entry in state["processes"]]
