"""Unit tests for how the pod runner turns a pod spec into a process environment and command line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from etl_localcluster._podspec import (
    ContainerConfigError,
    MountTable,
    expand_references,
    field_value,
    mount_table,
    prepare_container,
    process_environment,
    resolve_environment,
)

JSON = dict[str, Any]


class FakeSource:
    """Secrets and ConfigMaps held in dictionaries."""

    def __init__(
        self,
        secrets: dict[str, dict[str, bytes]] | None = None,
        config_maps: dict[str, dict[str, bytes]] | None = None,
    ) -> None:
        self.secrets = secrets or {}
        self.config_maps = config_maps or {}

    def secret_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.secrets.get(f"{namespace}/{name}")

    def config_map_data(self, namespace: str, name: str) -> dict[str, bytes] | None:
        return self.config_maps.get(f"{namespace}/{name}")


def make_pod(container: JSON, volumes: list[JSON] | None = None) -> JSON:
    return {
        "metadata": {"name": "p1", "namespace": "ns1", "uid": "uid-1", "labels": {"b": "2", "a": "1"}},
        "spec": {
            "nodeName": "node-1",
            "serviceAccountName": "sa1",
            "containers": [container],
            "volumes": volumes or [],
        },
    }


def test_plain_value_and_reference_expansion() -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "BASE", "value": "/data"},
            {"name": "FILE", "value": "$(BASE)/in.csv"},
            {"name": "LITERAL", "value": "$$(BASE)"},
            {"name": "UNKNOWN", "value": "$(NOT_DEFINED)"},
        ],
    }
    variables = resolve_environment(make_pod(container), container, FakeSource())
    assert variables["FILE"] == "/data/in.csv"
    assert variables["LITERAL"] == "$(BASE)"
    assert variables["UNKNOWN"] == "$(NOT_DEFINED)"


def test_reference_to_later_variable_stays() -> None:
    container = {"name": "c", "env": [{"name": "A", "value": "$(B)"}, {"name": "B", "value": "b"}]}
    assert resolve_environment(make_pod(container), container, FakeSource())["A"] == "$(B)"


def test_secret_and_config_map_key_references() -> None:
    container = {
        "name": "c",
        "env": [
            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
            {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}}},
        ],
    }
    source = FakeSource({"ns1/db": {"password": b"s3cret"}}, {"ns1/settings": {"level": b"debug"}})
    variables = resolve_environment(make_pod(container), container, source)
    assert variables == {"PASSWORD": "s3cret", "LEVEL": "debug"}


def test_missing_secret_is_transient_error() -> None:
    container = {
        "name": "c",
        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}],
    }
    with pytest.raises(ContainerConfigError) as raised:
        resolve_environment(make_pod(container), container, FakeSource())
    assert raised.value.permanent is False
    assert 'secret "db" not found in namespace "ns1"' in str(raised.value)


def test_missing_key_is_error_unless_optional() -> None:
    reference: JSON = {"name": "db", "key": "absent"}
    container = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": reference}}]}
    source = FakeSource({"ns1/db": {"present": b"1"}})
    with pytest.raises(ContainerConfigError):
        resolve_environment(make_pod(container), container, source)
    reference["optional"] = True
    assert resolve_environment(make_pod(container), container, source) == {}


def test_field_references() -> None:
    pod = make_pod({"name": "c"})
    assert field_value(pod, "metadata.name") == "p1"
    assert field_value(pod, "metadata.namespace") == "ns1"
    assert field_value(pod, "metadata.uid") == "uid-1"
    assert field_value(pod, "spec.nodeName") == "node-1"
    assert field_value(pod, "spec.serviceAccountName") == "sa1"
    assert field_value(pod, "status.podIP") == "127.0.0.1"
    assert field_value(pod, "metadata.labels['a']") == "1"
    assert field_value(pod, "metadata.labels") == 'a="1"\nb="2"'


def test_unsupported_field_reference_is_permanent() -> None:
    with pytest.raises(ContainerConfigError) as raised:
        field_value(make_pod({"name": "c"}), "status.phase")
    assert raised.value.permanent is True


def test_env_from_with_prefix_is_overridden_by_env() -> None:
    container = {
        "name": "c",
        "envFrom": [{"prefix": "DB_", "secretRef": {"name": "db"}}, {"configMapRef": {"name": "settings"}}],
        "env": [{"name": "LEVEL", "value": "info"}],
    }
    source = FakeSource({"ns1/db": {"USER": b"etl", "bad=key": b"x"}}, {"ns1/settings": {"LEVEL": b"debug"}})
    variables = resolve_environment(make_pod(container), container, source)
    assert variables == {"DB_USER": "etl", "LEVEL": "info"}


def test_optional_env_from_may_be_missing() -> None:
    container = {"name": "c", "envFrom": [{"secretRef": {"name": "absent", "optional": True}}]}
    assert resolve_environment(make_pod(container), container, FakeSource()) == {}


def test_rewrite_replaces_mount_path_prefix() -> None:
    table = MountTable({"/etc/app": Path("/state/vol/cfg"), "/etc/app/keys": Path("/state/vol/keys")})
    assert table.rewrite("/etc/app") == "/state/vol/cfg"
    assert table.rewrite("/etc/app/config.ini") == "/state/vol/cfg/config.ini"
    assert table.rewrite("/etc/app/keys/id") == "/state/vol/keys/id"


def test_rewrite_respects_path_boundaries() -> None:
    table = MountTable({"/etc/app": Path("/state/vol/cfg")})
    assert table.rewrite("/etc/application") == "/etc/application"
    assert table.rewrite("--config=/etc/app/config.ini") == "--config=/etc/app/config.ini"
    assert table.rewrite("relative/etc/app") == "relative/etc/app"


def test_mount_table_uses_sub_path_and_skips_root() -> None:
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/etc/app/", "subPath": "prod"},
            {"name": "data", "mountPath": "/"},
        ],
    }
    table = mount_table(container, {"cfg": Path("/v/cfg"), "data": Path("/v/data")})
    assert dict(table.host_paths) == {"/etc/app": Path("/v/cfg/prod")}


def test_mount_of_undefined_volume_is_permanent_error() -> None:
    container = {"name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}
    with pytest.raises(ContainerConfigError) as raised:
        mount_table(container, {})
    assert raised.value.permanent is True


def test_prepare_container_rewrites_env_args_and_working_dir() -> None:
    container = {
        "name": "main",
        "image": "registry.example/etl:1",
        "command": ["etl-runtime", "run"],
        "args": ["--config", "$(CONFIG)", "--name=$(POD)"],
        "workingDir": "/etc/app",
        "env": [
            {"name": "CONFIG", "value": "/etc/app/config.ini"},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [{"name": "cfg", "mountPath": "/etc/app"}],
    }
    prepared = prepare_container(make_pod(container), container, {"cfg": Path("/v/cfg")}, FakeSource())
    assert prepared.argv == ["etl-runtime", "run", "--config", "/v/cfg/config.ini", "--name=p1"]
    assert prepared.environment == {"CONFIG": "/v/cfg/config.ini", "POD": "p1"}
    assert prepared.working_dir == Path("/v/cfg")
    assert prepared.image == "registry.example/etl:1"


def test_container_without_command_is_permanent_error() -> None:
    container = {"name": "main", "image": "etl:1", "args": ["run"]}
    with pytest.raises(ContainerConfigError) as raised:
        prepare_container(make_pod(container), container, {}, FakeSource())
    assert raised.value.permanent is True
    assert "set command" in str(raised.value)


def test_expand_references_handles_dollar_edge_cases() -> None:
    assert expand_references("$", {}) == "$"
    assert expand_references("a$$b", {}) == "a$b"
    assert expand_references("$(A)$(A)", {"A": "x"}) == "xx"
    assert expand_references("$(A", {"A": "x"}) == "$(A"


def test_process_environment_puts_virtualenv_and_python_paths_first() -> None:
    environment = process_environment(
        {"PYTHONPATH": "/image/lib", "JOB": "1"},
        hostname="p1",
        runner_environment={"PATH": "/usr/bin:/venv/bin", "HOME": "/root", "KUBECONFIG": "/secret/admin"},
        virtualenv_bin=Path("/venv/bin"),
        python_paths=["/jobs"],
    )
    assert environment["PATH"] == "/venv/bin:/usr/bin"
    assert environment["PYTHONPATH"] == "/jobs:/image/lib"
    assert environment["HOSTNAME"] == "p1"
    assert environment["HOME"] == "/root"
    assert environment["JOB"] == "1"
    assert "KUBECONFIG" not in environment


def test_process_environment_keeps_pod_path_after_virtualenv() -> None:
    environment = process_environment(
        {"PATH": "/opt/tools/bin"},
        hostname="p1",
        runner_environment={"PATH": "/usr/bin"},
        virtualenv_bin=Path("/venv/bin"),
        python_paths=[],
    )
    assert environment["PATH"] == "/venv/bin:/opt/tools/bin"
    assert "PYTHONPATH" not in environment
