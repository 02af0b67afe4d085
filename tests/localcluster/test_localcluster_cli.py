"""Unit tests for the etl-localcluster command line that need no running cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_localcluster import cli


def test_state_dir_defaults_to_dot_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(cli.STATE_DIR_VARIABLE, raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.default_state_dir() == tmp_path / ".state"


def test_state_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cli.STATE_DIR_VARIABLE, str(tmp_path / "elsewhere"))
    assert cli.default_state_dir() == tmp_path / "elsewhere"


def test_logs_prints_every_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pods" / "ns1_p1"
    folder.mkdir(parents=True)
    (folder / "main.log").write_text("main output\n")
    (folder / "sidecar.log").write_text("sidecar output\n")
    assert cli.main(["--state-dir", str(tmp_path), "logs", "ns1", "p1"]) == 0
    output = capsys.readouterr().out
    assert "==> container main <==\nmain output\n" in output
    assert "==> container sidecar <==\nsidecar output\n" in output


def test_logs_of_one_container(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "pods" / "ns1_p1"
    folder.mkdir(parents=True)
    (folder / "main.log").write_text("main output\n")
    (folder / "sidecar.log").write_text("sidecar output\n")
    assert cli.main(["--state-dir", str(tmp_path), "logs", "ns1", "p1", "-c", "main"]) == 0
    assert capsys.readouterr().out == "main output\n"


def test_logs_of_unknown_pod_fail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "logs", "ns1", "absent"]) == 1
    assert "no logs for pod ns1/absent" in capsys.readouterr().err


def test_down_without_cluster_succeeds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "down"]) == 0
    assert "nothing to stop" in capsys.readouterr().err


def test_status_without_cluster_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--state-dir", str(tmp_path), "status"]) == 1
    assert "no local cluster recorded" in capsys.readouterr().err
