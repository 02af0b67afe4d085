"""Unit tests for starting, identifying, stopping and restarting the local cluster's background processes."""

from __future__ import annotations

import dataclasses
import os
import socket
import time
from pathlib import Path

import pytest

from etl_localcluster._processes import (
    ProcessRecord,
    free_port,
    is_alive,
    is_port_open,
    is_running,
    start_process,
    stop_process,
    tail,
    wait_until_ended,
    wait_until_ports_closed,
)
from etl_localcluster.controlplane import ControlPlane, ControlPlaneError


def test_started_process_runs_in_own_session(tmp_path: Path) -> None:
    record = start_process("sleeper", ["sleep", "30"], tmp_path / "sleeper.log")
    try:
        assert is_alive(record)
        assert os.getsid(record.pid) == record.pid
        assert os.getpgid(record.pid) == record.pid
    finally:
        stop_process(record, timeout_seconds=5)
    assert not is_alive(record)


def test_stop_ends_whole_process_group(tmp_path: Path) -> None:
    child_pid_file = tmp_path / "child.pid"
    script = f"sleep 30 & echo $! > {child_pid_file}; wait"
    record = start_process("parent", ["sh", "-c", script], tmp_path / "parent.log")
    deadline = time.monotonic() + 5
    while not child_pid_file.exists() or not child_pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the child process did not start"
        time.sleep(0.02)
    child_pid = int(child_pid_file.read_text())
    stop_process(record, timeout_seconds=5)
    deadline = time.monotonic() + 2
    while is_running(child_pid):
        assert time.monotonic() < deadline, f"the child process {child_pid} still runs"
        time.sleep(0.02)


def test_stop_kills_process_that_ignores_sigterm(tmp_path: Path) -> None:
    record = start_process("stubborn", ["sh", "-c", "trap '' TERM; sleep 30"], tmp_path / "stubborn.log")
    time.sleep(0.2)
    started = time.monotonic()
    stop_process(record, timeout_seconds=0.5)
    assert not is_alive(record)
    assert time.monotonic() - started < 5


def test_record_with_other_start_time_is_not_alive(tmp_path: Path) -> None:
    record = start_process("sleeper", ["sleep", "30"], tmp_path / "sleeper.log")
    try:
        reused = dataclasses.replace(record, start_ticks=record.start_ticks + 1)
        assert not is_alive(reused)
    finally:
        stop_process(record, timeout_seconds=5)


def test_record_round_trips_through_json() -> None:
    record = ProcessRecord("etcd", 42, 1000, "/logs/etcd.log", (2379, 2380))
    assert ProcessRecord.from_json(record.to_json()) == record


def test_output_goes_to_log_file(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    record = start_process("echo", ["sh", "-c", "echo out; echo err >&2"], log)
    deadline = time.monotonic() + 5
    while is_alive(record) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert log.read_text().splitlines() == ["out", "err"]
    assert tail(log, 1) == "err"


def test_append_keeps_earlier_log(tmp_path: Path) -> None:
    log = tmp_path / "restarted.log"
    for text in ("first", "second"):
        record = start_process("echo", ["echo", text], log, append=text == "second")
        assert wait_until_ended(record, 5)
    assert log.read_text().splitlines() == ["first", "second"]


def test_port_checks_follow_listener() -> None:
    port = free_port()
    assert not is_port_open(port)
    with socket.socket() as server:
        server.bind(("127.0.0.1", port))
        server.listen()
        assert is_port_open(port)
        assert wait_until_ports_closed([port], 0.2) == [port]
    assert wait_until_ports_closed([port], 1.0) == []


def test_api_server_restart_needs_running_control_plane(tmp_path: Path) -> None:
    control_plane = ControlPlane(tmp_path / "bin", tmp_path / "state")
    with pytest.raises(ControlPlaneError, match="does not run"):
        control_plane.restart_api_server()
