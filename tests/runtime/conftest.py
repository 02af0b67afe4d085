"""Fixtures of the runtime tests: a throwaway Postgres server, fresh databases, and an SMTP server.

The server is Debian's Postgres, started once per session in a temporary directory on a free port
of 127.0.0.1. Postgres refuses to run as root, so as root the fixture runs it as the ``postgres``
system user. Set ``KUBE_ETL_TEST_POSTGRES_URL`` to an admin URL to use an existing server instead.
To move to the project's shared fixtures, replace ``postgres_url`` with one that returns their
admin URL. The other database fixtures only need that one. The SMTP server is aiosmtpd, also on a
free port of 127.0.0.1, and keeps the mails it accepts for the test to read.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from etl_runtime.taskdb import TaskDatabase

POSTGRES_URL_VARIABLE = "KUBE_ETL_TEST_POSTGRES_URL"
REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLES_DIR = REPO_ROOT / "examples"
TESTS_DIR = Path(__file__).resolve().parent

# The pod runner puts examples/ on PYTHONPATH, and the tests import the demo jobs the same way. The
# sample job modules of these tests are imported by their bare names, as a job module in an image is.
for folder in (EXAMPLES_DIR, TESTS_DIR):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))


def postgres_bin_dir() -> Path:
    """Return the bin folder of the newest Postgres in /usr/lib/postgresql."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]),
    )
    if not candidates:
        pytest.fail(
            "Postgres server binaries not found under /usr/lib/postgresql/*/bin; "
            f"install Debian's postgresql package, or set {POSTGRES_URL_VARIABLE} to an admin URL"
        )
    return Path(candidates[-1]).parent


def free_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def run_as_postgres_user(command: list[str]) -> None:
    """Run a Postgres server command, as the ``postgres`` user when this process is root."""
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Return the SQLAlchemy URL of a Postgres superuser on a server that lives for the session."""
    existing = os.environ.get(POSTGRES_URL_VARIABLE)
    if existing:
        yield existing
        return

    bin_dir = postgres_bin_dir()
    # Not under tmp_path_factory: its folders are private to root, and the server user must enter.
    base = Path(tempfile.mkdtemp(prefix="kube-etl-postgres-"))
    data_dir = base / "data"
    socket_dir = base / "socket"
    socket_dir.mkdir()
    log_file = base / "server.log"
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
        shutil.chown(socket_dir, user="postgres")
    port = free_local_port()

    run_as_postgres_user(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(data_dir),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C",
        ]
    )
    server_options = (
        f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={socket_dir} "
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        run_as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data_dir),
                "-l",
                str(log_file),
                "-o",
                server_options,
                "-w",
                "-t",
                "60",
                "start",
            ]
        )
    except subprocess.CalledProcessError as exc:
        server_log = log_file.read_text() if log_file.exists() else "(no server log)"
        pytest.fail(f"Postgres did not start: {exc.stderr}\n{server_log}")

    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "fast", "-w", "stop"])
        shutil.rmtree(base, ignore_errors=True)


def create_database(admin_url: str, prefix: str) -> str:
    """Create an empty database with a unique name and return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


@pytest.fixture
def taskdb_url(postgres_url: str) -> Iterator[str]:
    """Return the URL of a new database with the task database schema at head."""
    url = create_database(postgres_url, "taskdb")
    database = TaskDatabase(url)
    try:
        database.upgrade()
    finally:
        database.dispose()
    yield url
    drop_database(postgres_url, url)


@pytest.fixture
def task_database(taskdb_url: str) -> Iterator[TaskDatabase]:
    database = TaskDatabase(taskdb_url)
    yield database
    database.dispose()


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    """Return the URL of a new database without any tables."""
    url = create_database(postgres_url, "empty")
    yield url
    drop_database(postgres_url, url)


@pytest.fixture
def warehouse_url(postgres_url: str) -> Iterator[str]:
    """Return the URL of a new empty database for the demo warehouse jobs."""
    url = create_database(postgres_url, "warehouse")
    yield url
    drop_database(postgres_url, url)


RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]


def runtime_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without KUBE_ETL_* variables, with the job folders on PYTHONPATH."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("KUBE_ETL_")}
    environment["PYTHONPATH"] = os.pathsep.join([str(EXAMPLES_DIR), str(TESTS_DIR)])
    environment.update(extra or {})
    return environment


@pytest.fixture
def run_etl_runtime() -> RunEtlRuntime:
    """Return a function that runs ``python -m etl_runtime ARGS`` and returns the finished process."""

    def run(
        arguments: Sequence[str], env: dict[str, str] | None = None, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "etl_runtime", *arguments],
            env=runtime_environment(env),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


StartEtlRuntime = Callable[[Sequence[str]], subprocess.Popen[str]]


@pytest.fixture
def start_etl_runtime() -> Iterator[StartEtlRuntime]:
    """Return a function that starts ``python -m etl_runtime ARGS`` with stdout and stderr piped together.

    Processes still running at the end of the test are killed.
    """
    processes: list[subprocess.Popen[str]] = []

    def start(arguments: Sequence[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "etl_runtime", *arguments],
            env=runtime_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class ReceivedMail:
    """One mail that the test SMTP server accepted."""

    sender: str
    recipients: tuple[str, ...]
    message: Message


class RecordingHandler:
    """aiosmtpd handler that keeps every accepted mail; with ``reject_recipients`` it rejects them all."""

    def __init__(self, reject_recipients: bool = False) -> None:
        self.reject_recipients = reject_recipients
        self.received: list[ReceivedMail] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_RCPT(
        self, server: object, session: object, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if self.reject_recipients:
            return "550 5.7.1 relaying denied"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        self.received.append(
            ReceivedMail(
                sender=str(envelope.mail_from),
                recipients=tuple(envelope.rcpt_tos),
                message=message_from_bytes(content),
            )
        )
        return "250 Message accepted"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def received(self) -> list[ReceivedMail]:
        return self.handler.received

    def config_text(self, **options: str) -> str:
        """Return an ``[smtp]`` config section that points at this server, with extra options."""
        lines = ["[smtp]", f"host = {self.host}", f"port = {self.port}"]
        lines += [f"{name} = {value}" for name, value in options.items()]
        return "\n".join(lines) + "\n"


StartSmtpServer = Callable[..., SmtpServer]


@pytest.fixture
def start_smtp_server() -> Iterator[StartSmtpServer]:
    """Return a function that starts an aiosmtpd server on a free port of 127.0.0.1.

    ``reject_recipients=True`` makes it reply 550 to every RCPT. ``users`` maps user names to
    passwords that AUTH accepts (without TLS, which only a loopback test may allow).
    """
    controllers: list[Controller] = []

    def start(*, reject_recipients: bool = False, users: dict[str, str] | None = None) -> SmtpServer:
        handler = RecordingHandler(reject_recipients)
        options: dict[str, object] = {}
        if users is not None:

            def authenticate(
                server: object, session: object, envelope: object, mechanism: str, auth_data: object
            ) -> AuthResult:
                login = getattr(auth_data, "login", b"").decode()
                password = getattr(auth_data, "password", b"").decode()
                handler.logins.append((login, password))
                return AuthResult(success=users.get(login) == password)

            options = {"authenticator": authenticate, "auth_require_tls": False}
        controller = Controller(handler, hostname="127.0.0.1", port=free_local_port(), **options)
        controller.start()
        controllers.append(controller)
        return SmtpServer("127.0.0.1", controller.port, handler)

    yield start
    for controller in controllers:
        controller.stop()


@pytest.fixture
def smtp_server(start_smtp_server: StartSmtpServer) -> SmtpServer:
    return start_smtp_server()
