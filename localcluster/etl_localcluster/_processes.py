"""Start, find and stop the background processes of the local cluster.

`controlplane`, `postgres`, `cluster` and the pod runner call these helpers. Every process starts in a
session of its own, so a signal aimed at the parent's terminal or a crash of the parent does not reach
it, and it keeps running until something stops it on purpose. A `ProcessRecord` stores the PID with the
process start time from /proc, so that a second program (`etl-localcluster down`) can stop the process
later without hitting an unrelated process that happens to reuse the PID.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import signal
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Time between two checks while waiting for a process to end or a port to close.
_POLL_INTERVAL_SECONDS = 0.05


class ProcessError(RuntimeError):
    """A background process could not be started or stopped."""


@dataclass(frozen=True)
class ProcessRecord:
    """A background process: its name, PID, start time, log file and the loopback ports it listens on."""

    name: str
    pid: int
    # Start time in clock ticks after boot (field 22 of /proc/PID/stat): together with the PID it
    # identifies the process, because the kernel reuses PIDs.
    start_ticks: int
    log_path: str
    ports: tuple[int, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """Return the record as a JSON-ready mapping."""
        return {
            "name": self.name,
            "pid": self.pid,
            "start_ticks": self.start_ticks,
            "log_path": self.log_path,
            "ports": list(self.ports),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProcessRecord:
        """Build a record from the mapping that `to_json` returns."""
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_ticks=int(data["start_ticks"]),
            log_path=str(data["log_path"]),
            ports=tuple(int(port) for port in data.get("ports", ())),
        )


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free at the time of the call.

    Another program can take the port before the caller binds it. The servers started here then fail at
    once, and their log names the port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def is_port_open(port: int) -> bool:
    """Return whether something accepts TCP connections on 127.0.0.1:PORT."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def read_start_ticks(pid: int) -> int | None:
    """Return the start time of process PID in clock ticks after boot, or None if it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in brackets and may contain spaces, so split after the last ')'.
    # The fields after it start with field 3 (state), so field 22 (starttime) is at index 19.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])


def _process_state(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2 :].split()[0]


def _reap(pid: int) -> None:
    """Collect the exit status of PID if it is a child of this process, so it does not stay a zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def is_running(pid: int) -> bool:
    """Return whether process PID exists and has not ended (a zombie counts as ended)."""
    _reap(pid)
    return _process_state(pid) not in (None, "Z", "X")


def is_alive(record: ProcessRecord) -> bool:
    """Return whether the process of RECORD is still running (a zombie counts as ended)."""
    if read_start_ticks(record.pid) != record.start_ticks:
        return False
    return is_running(record.pid)


def start_process(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    ports: Iterable[int] = (),
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    append: bool = False,
) -> ProcessRecord:
    """Start ARGV in a new session with stdout and stderr written to LOG_PATH, and return its record.

    LOG_PATH is truncated first, because each start of the local cluster is a new cluster. With APPEND
    the output is appended to LOG_PATH instead, so a component restarted in place keeps its earlier log.

    USER runs the process as that system user (the caller must be root); its supplementary groups
    are dropped.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as log:
        try:
            process = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                user=user,
                group=_primary_group(user) if user else None,
                extra_groups=[] if user else None,
            )
        except OSError as error:
            raise ProcessError(f"could not start {name} ({argv[0]}): {error}") from error
    start_ticks = read_start_ticks(process.pid)
    if start_ticks is None:
        raise ProcessError(f"{name} exited at once; see {log_path}")
    return ProcessRecord(name, process.pid, start_ticks, str(log_path), tuple(ports))


def _primary_group(user: str) -> int:
    return pwd.getpwnam(user).pw_gid


def signal_group(record: ProcessRecord, signum: signal.Signals) -> None:
    """Send SIGNUM to the process group of RECORD if the process is still the one recorded."""
    if not is_alive(record):
        return
    try:
        # A process started here leads its own session, so its PID is also its process group ID.
        os.killpg(record.pid, signum)
    except ProcessLookupError:
        # The process is not a group leader (a postmaster started by pg_ctl may not be one).
        with contextlib.suppress(ProcessLookupError):
            os.kill(record.pid, signum)


def wait_until_ended(record: ProcessRecord, timeout_seconds: float) -> bool:
    """Wait until the process of RECORD has ended; return False if it still runs after the timeout."""
    deadline = time.monotonic() + timeout_seconds
    while is_alive(record):
        if time.monotonic() >= deadline:
            return False
        time.sleep(_POLL_INTERVAL_SECONDS)
    return True


def stop_process(record: ProcessRecord, timeout_seconds: float = 10.0) -> None:
    """Stop the process group of RECORD with SIGTERM, then SIGKILL if it still runs after the timeout."""
    signal_group(record, signal.SIGTERM)
    if wait_until_ended(record, timeout_seconds):
        return
    signal_group(record, signal.SIGKILL)
    if not wait_until_ended(record, 5.0):
        raise ProcessError(f"{record.name} (PID {record.pid}) still runs after SIGKILL")


def wait_until_ports_closed(ports: Iterable[int], timeout_seconds: float) -> list[int]:
    """Wait until no server accepts connections on PORTS; return the ports still open at the timeout."""
    deadline = time.monotonic() + timeout_seconds
    remaining = list(ports)
    while True:
        remaining = [port for port in remaining if is_port_open(port)]
        if not remaining or time.monotonic() >= deadline:
            return remaining
        time.sleep(_POLL_INTERVAL_SECONDS)


def tail(path: Path, max_lines: int = 20) -> str:
    """Return the last MAX_LINES lines of the text file PATH, or an empty string if it does not exist."""
    try:
        with path.open("rb") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 64 * 1024))
            data = file.read()
    except FileNotFoundError:
        return ""
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max_lines:])
