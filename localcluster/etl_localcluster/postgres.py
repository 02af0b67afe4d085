"""A throwaway Postgres cluster from Debian's packages, listening on 127.0.0.1 only.

`cluster.LocalCluster` starts and stops it; tests may use it on their own. It lives in
`STATE_DIR/postgres`: the data directory, the unix socket directory, the server log and a state file with
the port and the superuser password. Every `start` creates a new, empty cluster. `create_database` makes
a database with a login role of the same name and returns its SQLAlchemy URL.

Postgres will not run as root. When this process runs as root, initdb and the server run as the system
user `postgres` (from the Debian package), or as the system user `kube-etl-postgres`, created with
`useradd --system` when no `postgres` user exists. All login roles need a password (SCRAM-SHA-256); no
connection is trusted.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from etl_localcluster._processes import (
    ProcessRecord,
    free_port,
    is_alive,
    read_start_ticks,
    stop_process,
    tail,
    wait_until_ports_closed,
)

POSTGRES_INSTALL_ROOT = Path("/usr/lib/postgresql")
SUPERUSER = "postgres"
FALLBACK_SYSTEM_USER = "kube-etl-postgres"
DATABASE_NAME_PATTERN = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Durability is not needed for a throwaway cluster, and these settings make writes much faster.
SERVER_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}
_START_TIMEOUT_SECONDS = 60
_STOP_TIMEOUT_SECONDS = 30


class PostgresError(RuntimeError):
    """The Postgres cluster could not be created, started, used or stopped."""


def find_bin_dir(install_root: Path = POSTGRES_INSTALL_ROOT) -> Path:
    """Return the bin folder of the newest Postgres major version installed under INSTALL_ROOT."""
    candidates = [
        path.parent for path in install_root.glob("*/bin/initdb") if path.parent.parent.name.isdigit()
    ]
    if not candidates:
        raise PostgresError(
            f"no Postgres server found under {install_root}; install it with `apt-get install postgresql`"
        )
    return max(candidates, key=lambda path: int(path.parent.name))


def server_user() -> str | None:
    """Return the system user that runs Postgres, creating one if needed; None means the current user."""
    if os.geteuid() != 0:
        return None
    for name in (SUPERUSER, FALLBACK_SYSTEM_USER):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    command = [
        "useradd",
        "--system",
        "--no-create-home",
        "--shell",
        "/usr/sbin/nologin",
        FALLBACK_SYSTEM_USER,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise PostgresError(
            f"could not create the system user {FALLBACK_SYSTEM_USER}: {result.stderr.strip()}"
        )
    return FALLBACK_SYSTEM_USER


def check_searchable(path: Path, user: str) -> None:
    """Raise PostgresError if USER cannot enter every folder from / down to PATH."""
    account = pwd.getpwnam(user)
    groups = set(os.getgrouplist(user, account.pw_gid))
    for folder in [*reversed(path.parents), path]:
        mode = folder.stat()
        if mode.st_uid == account.pw_uid:
            allowed = bool(mode.st_mode & stat.S_IXUSR)
        elif mode.st_gid in groups:
            allowed = bool(mode.st_mode & stat.S_IXGRP)
        else:
            allowed = bool(mode.st_mode & stat.S_IXOTH)
        if not allowed:
            raise PostgresError(
                f"the Postgres server runs as user {user}, who cannot enter {folder} "
                f"(mode {stat.filemode(mode.st_mode)}); use a state folder that every user can enter, "
                f"for example one made with `mkdir -m 755` under /tmp, or run `chmod o+x {folder}`"
            )


@dataclass(frozen=True)
class PostgresLayout:
    """The files and folders of the Postgres cluster below `STATE_DIR/postgres`."""

    root: Path

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"


class PostgresCluster:
    """A Postgres server on a free port of 127.0.0.1, with its data below `STATE_DIR/postgres`."""

    def __init__(self, state_dir: Path, bin_dir: Path | None = None) -> None:
        self.layout = PostgresLayout(state_dir / "postgres")
        self._bin_dir = bin_dir
        self.port = 0
        self._password = ""
        self._process: ProcessRecord | None = None
        self._databases: dict[str, str] = {}
        self._read_state()

    @classmethod
    def load(cls, state_dir: Path) -> PostgresCluster:
        """Return the cluster recorded in STATE_DIR (running or not)."""
        cluster = cls(state_dir)
        if not cluster.layout.state_file.exists():
            raise PostgresError(
                f"no Postgres cluster recorded in {state_dir}: {cluster.layout.state_file} is missing"
            )
        return cluster

    @property
    def bin_dir(self) -> Path:
        """The folder with initdb and pg_ctl (the newest installed major version unless given)."""
        if self._bin_dir is None:
            self._bin_dir = find_bin_dir()
        return self._bin_dir

    @property
    def admin_url(self) -> str:
        """SQLAlchemy URL of the superuser `postgres` on the database `postgres`."""
        return self._url(SUPERUSER, self._password, "postgres")

    @property
    def process(self) -> ProcessRecord | None:
        """The postmaster process, if the cluster was started."""
        return self._process

    def is_running(self) -> bool:
        """Return whether the recorded postmaster process runs."""
        return self._process is not None and is_alive(self._process)

    def start(self) -> None:
        """Create a new cluster and start the server; do nothing if it already runs."""
        if self.is_running():
            return
        if self._process is not None:
            self.stop()
        user = server_user()
        self._create_folders(user)
        self.port = free_port()
        self._password = secrets.token_hex(16)
        self._databases = {}
        self._init_data_dir(user)
        self._write_settings()
        self._run_pg_ctl(
            user, "start", "-w", "-t", str(_START_TIMEOUT_SECONDS), "-l", str(self.layout.log_file)
        )
        self._process = self._postmaster_record()
        self._write_state()

    def stop(self) -> None:
        """Stop the server with `pg_ctl stop -m fast`, or with signals if that fails."""
        if self._process is None:
            return
        if is_alive(self._process):
            try:
                self._run_pg_ctl(server_user(), "stop", "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_SECONDS))
            except PostgresError:
                stop_process(self._process, timeout_seconds=5.0)
        still_open = wait_until_ports_closed([self.port], 10.0)
        self._process = None
        self.layout.state_file.unlink(missing_ok=True)
        if still_open:
            raise PostgresError(f"port {self.port} on 127.0.0.1 is still open after Postgres stopped")

    def halt(self) -> None:
        """Stop the server but keep its data, port and databases, as an outage would; `resume` undoes it."""
        if self._process is None or not is_alive(self._process):
            return
        self._run_pg_ctl(server_user(), "stop", "-m", "fast", "-w", "-t", str(_STOP_TIMEOUT_SECONDS))
        wait_until_ports_closed([self.port], 10.0)

    def resume(self) -> None:
        """Start the server that `halt` stopped, on the same data folder and port."""
        if self.is_running():
            return
        self._run_pg_ctl(
            server_user(), "start", "-w", "-t", str(_START_TIMEOUT_SECONDS), "-l", str(self.layout.log_file)
        )
        self._process = self._postmaster_record()
        self._write_state()

    def create_database(self, name: str) -> str:
        """Create database NAME owned by a new login role NAME and return its SQLAlchemy URL.

        A second call with the same name returns the same URL.
        """
        if not DATABASE_NAME_PATTERN.match(name):
            raise ValueError(
                f"invalid database name {name!r}: use lower-case letters, digits and '_' (at most 63), "
                "starting with a letter or '_'"
            )
        if name in self._databases:
            return self._url(name, self._databases[name], name)
        if not self.is_running():
            raise PostgresError("the Postgres cluster is not running: call start() first")
        password = secrets.token_hex(16)
        with psycopg.connect(self._conninfo(), autocommit=True) as connection:
            role = sql.Identifier(name)
            connection.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(role, sql.Literal(password))
            )
            connection.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(role, role))
        self._databases[name] = password
        self._write_state()
        return self._url(name, password, name)

    def _url(self, user: str, password: str, database: str) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def _conninfo(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={self._password} dbname=postgres"

    def _create_folders(self, user: str | None) -> None:
        shutil.rmtree(self.layout.root, ignore_errors=True)
        self.layout.root.mkdir(parents=True)
        # Other users may enter the folder, so the server user reaches its data; they cannot list it.
        self.layout.root.chmod(0o711)
        for folder in (self.layout.data_dir, self.layout.socket_dir):
            folder.mkdir(mode=0o700)
        self.layout.log_file.touch(mode=0o600)
        if user is not None:
            check_searchable(self.layout.root, user)
            account = pwd.getpwnam(user)
            for path in (self.layout.data_dir, self.layout.socket_dir, self.layout.log_file):
                os.chown(path, account.pw_uid, account.pw_gid)

    def _init_data_dir(self, user: str | None) -> None:
        password_file = self.layout.socket_dir / "initdb-password"
        password_file.touch(mode=0o600)
        password_file.write_text(self._password + "\n")
        if user is not None:
            account = pwd.getpwnam(user)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            self._run(
                user,
                [
                    str(self.bin_dir / "initdb"),
                    f"--pgdata={self.layout.data_dir}",
                    f"--username={SUPERUSER}",
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ],
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _write_settings(self) -> None:
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.layout.socket_dir}'",
            **SERVER_SETTINGS,
        }
        lines = [f"{key} = {value}" for key, value in settings.items()]
        with (self.layout.data_dir / "postgresql.conf").open("a") as config:
            config.write("\n# Settings of the kube-etl local cluster\n" + "\n".join(lines) + "\n")

    def _run_pg_ctl(self, user: str | None, action: str, *options: str) -> None:
        self._run(user, [str(self.bin_dir / "pg_ctl"), action, f"--pgdata={self.layout.data_dir}", *options])

    def _run(self, user: str | None, argv: list[str]) -> None:
        # A new session keeps the server out of the caller's process group; pg_ctl leaves the
        # postmaster running in it after pg_ctl exits.
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            user=user,
            extra_groups=[] if user else None,
            group=pwd.getpwnam(user).pw_gid if user else None,
            start_new_session=True,
            cwd=self.layout.root,
        )
        if result.returncode != 0:
            output = (result.stdout + result.stderr).strip()
            raise PostgresError(
                f"{Path(argv[0]).name} {argv[1]} failed with exit code {result.returncode}: {output}\n"
                f"Server log {self.layout.log_file}:\n{tail(self.layout.log_file)}"
            )

    def _postmaster_record(self) -> ProcessRecord:
        # The first line of postmaster.pid is the PID of the postmaster.
        pid = int((self.layout.data_dir / "postmaster.pid").read_text().splitlines()[0])
        deadline = time.monotonic() + 5
        start_ticks = read_start_ticks(pid)
        while start_ticks is None and time.monotonic() < deadline:
            time.sleep(0.05)
            start_ticks = read_start_ticks(pid)
        if start_ticks is None:
            raise PostgresError(f"the postmaster (PID {pid}) is not running; see {self.layout.log_file}")
        return ProcessRecord("postgres", pid, start_ticks, str(self.layout.log_file), (self.port,))

    def _write_state(self) -> None:
        state = {
            "bin_dir": str(self.bin_dir),
            "port": self.port,
            "password": self._password,
            "process": self._process.to_json() if self._process else None,
            "databases": self._databases,
        }
        self.layout.state_file.touch(mode=0o600, exist_ok=True)
        self.layout.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _read_state(self) -> None:
        if not self.layout.state_file.exists():
            return
        state = json.loads(self.layout.state_file.read_text())
        self._bin_dir = self._bin_dir or Path(state["bin_dir"])
        self.port = int(state["port"])
        self._password = str(state["password"])
        self._process = ProcessRecord.from_json(state["process"]) if state["process"] else None
        self._databases = {str(key): str(value) for key, value in state["databases"].items()}
