"""Unit tests for writing a pod's volumes as files for the pod runner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_localcluster._podspec import ContainerConfigError, materialise_volumes

JSON = dict[str, Any]


class FakeSource:
    def __init__(
        self, secrets: dict[str, dict[str, bytes]], config_maps: dict[str, dict[str, bytes]]
    ) -> None:
        self.secrets = secrets
        self.config_maps = config_maps

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get(f"{namespace}/{name}")

    def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.config_maps.get(f"{namespace}/{name}")


SOURCE = FakeSource(
    {"ns1/db": {"password": b"s3cret", "user": b"etl"}},
    {"ns1/settings": {"config.ini": b"[main]\n", "logo.png": b"\x89PNG"}},
)


def make_pod(volumes: list[JSON]) -> JSON:
    return {"metadata": {"name": "p1", "namespace": "ns1", "uid": "u1"}, "spec": {"volumes": volumes}}


def test_secret_volume_writes_every_key(tmp_path: Path) -> None:
    paths = materialise_volumes(make_pod([{"name": "db", "secret": {"secretName": "db"}}]), tmp_path, SOURCE)
    assert (paths["db"] / "password").read_bytes() == b"s3cret"
    assert (paths["db"] / "user").read_bytes() == b"etl"
    assert (paths["db"] / "password").stat().st_mode & 0o777 == 0o644


def test_secret_items_select_keys_paths_and_modes(tmp_path: Path) -> None:
    volume = {
        "name": "db",
        "secret": {
            "secretName": "db",
            "defaultMode": 0o400,
            "items": [{"key": "password", "path": "nested/pw"}],
        },
    }
    paths = materialise_volumes(make_pod([volume]), tmp_path, SOURCE)
    assert (paths["db"] / "nested" / "pw").read_bytes() == b"s3cret"
    assert not (paths["db"] / "user").exists()
    assert (paths["db"] / "nested" / "pw").stat().st_mode & 0o777 == 0o400


def test_config_map_volume_includes_binary_data(tmp_path: Path) -> None:
    paths = materialise_volumes(
        make_pod([{"name": "cfg", "configMap": {"name": "settings"}}]), tmp_path, SOURCE
    )
    assert (paths["cfg"] / "config.ini").read_text() == "[main]\n"
    assert (paths["cfg"] / "logo.png").read_bytes() == b"\x89PNG"


def test_missing_config_map_is_transient_unless_optional(tmp_path: Path) -> None:
    volume: JSON = {"name": "cfg", "configMap": {"name": "absent"}}
    with pytest.raises(ContainerConfigError) as raised:
        materialise_volumes(make_pod([volume]), tmp_path, SOURCE)
    assert raised.value.permanent is False
    volume["configMap"]["optional"] = True
    paths = materialise_volumes(make_pod([volume]), tmp_path, SOURCE)
    assert list(paths["cfg"].iterdir()) == []


def test_projected_and_downward_api_volumes(tmp_path: Path) -> None:
    projected = {
        "name": "all",
        "projected": {
            "sources": [
                {"secret": {"name": "db", "items": [{"key": "user", "path": "user"}]}},
                {"configMap": {"name": "settings", "items": [{"key": "config.ini", "path": "config.ini"}]}},
                {
                    "downwardAPI": {
                        "items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]
                    }
                },
                {"serviceAccountToken": {"path": "token"}},
            ]
        },
    }
    downward = {
        "name": "info",
        "downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]},
    }
    paths = materialise_volumes(make_pod([projected, downward]), tmp_path, SOURCE)
    assert (paths["all"] / "user").read_bytes() == b"etl"
    assert (paths["all"] / "config.ini").read_text() == "[main]\n"
    assert (paths["all"] / "namespace").read_text() == "ns1"
    assert not (paths["all"] / "token").exists()
    assert (paths["info"] / "name").read_text() == "p1"


def test_empty_dir_and_host_path(tmp_path: Path) -> None:
    pod = make_pod([{"name": "scratch", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/var/data"}}])
    paths = materialise_volumes(pod, tmp_path / "volumes", SOURCE)
    assert paths["scratch"].is_dir()
    assert list(paths["scratch"].iterdir()) == []
    assert paths["host"] == Path("/var/data")


def test_unsupported_volume_type_is_permanent_error(tmp_path: Path) -> None:
    pod = make_pod([{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}])
    with pytest.raises(ContainerConfigError) as raised:
        materialise_volumes(pod, tmp_path, SOURCE)
    assert raised.value.permanent is True
    assert "persistentVolumeClaim" in str(raised.value)


def test_item_path_may_not_leave_volume(tmp_path: Path) -> None:
    volume = {"name": "db", "secret": {"secretName": "db", "items": [{"key": "user", "path": "../escape"}]}}
    with pytest.raises(ContainerConfigError):
        materialise_volumes(make_pod([volume]), tmp_path / "volumes", SOURCE)
    assert not (tmp_path / "escape").exists()


def test_old_volume_files_are_removed(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "stale").write_text("old")
    paths = materialise_volumes(make_pod([{"name": "db", "secret": {"secretName": "db"}}]), tmp_path, SOURCE)
    assert not (paths["db"] / "stale").exists()
