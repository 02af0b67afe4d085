"""``etl-runtime manifest``: the ETLTask that a class's declarations imply, valid for the CRD."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from etl_runtime import Dependency, ETLTask, build_manifest, resolve_task_class
from etl_runtime._manifest import ManifestError, default_task_name
from tests.runtime.crd_schema import etltask_schema, schema_errors

RunEtlRuntime = Callable[..., subprocess.CompletedProcess[str]]
MANIFESTS_DIR = Path(__file__).resolve().parents[2] / "examples" / "manifests"


class LoadRegionSales(ETLTask):
    DISPLAY_NAME = "Load regional sales"

    def depends_on(self) -> list[str | Dependency]:
        region = self.get_parameter("region", "emea")
        return [
            f"sales.jobs.extract_{region}.*",
            Dependency.on_name("build-dim-date"),
            "sales.jobs.extract_*",
        ]

    def mutually_exclusive_execution(self) -> list[str]:
        return ["sales.jobs.load_*", "warehouse"]

    def allow_concurrent_runs(self) -> bool:
        return True


class PlainJob(ETLTask):
    def load(self) -> None:
        pass


def test_manifest_carries_declarations() -> None:
    manifest = build_manifest(
        LoadRegionSales, name="load-sales", namespace="analytics", parameters={"region": "apac", "days": 3}
    )

    assert manifest == {
        "apiVersion": "etl.kube-etl.io/v1alpha1",
        "kind": "ETLTask",
        "metadata": {"name": "load-sales", "namespace": "analytics"},
        "spec": {
            "task": "tests.runtime.test_manifest.LoadRegionSales",
            "displayName": "Load regional sales",
            "parameters": {"region": "apac", "days": 3},
            "dependsOn": [
                {"name": "build-dim-date"},
                {"task": "sales.jobs.extract_*"},
                {"task": "sales.jobs.extract_apac.*"},
            ],
            "mutuallyExclusiveWith": ["sales.jobs.load_*", "warehouse"],
            "allowConcurrentRuns": True,
        },
    }


def test_manifest_of_plain_class_is_minimal() -> None:
    manifest = build_manifest(PlainJob)

    assert manifest["metadata"] == {"name": "plain-job"}
    assert manifest["spec"] == {"task": "tests.runtime.test_manifest.PlainJob", "allowConcurrentRuns": False}


def test_manifest_passes_crd_schema() -> None:
    manifest = build_manifest(LoadRegionSales, namespace="analytics", parameters={"nested": {"a": [1, None]}})

    assert schema_errors(manifest, etltask_schema()) == []


def test_schema_check_rejects_invalid_fields() -> None:
    manifest = build_manifest(PlainJob)
    manifest["spec"]["dependOn"] = [{"name": "a"}]
    manifest["spec"]["dependsOn"] = [{"name": "a", "task": "b"}, {"nmae": "c"}]
    manifest["spec"]["mutuallyExclusiveWith"] = [""]
    manifest["spec"]["task"] = "warehouse.jobs.extract_*"

    errors = schema_errors(manifest, etltask_schema())

    assert "spec.dependOn: unknown field" in errors
    assert "spec.dependsOn[0]: matches 2 of the oneOf alternatives, expected exactly 1" in errors
    assert "spec.dependsOn[1].nmae: unknown field" in errors
    assert "spec.mutuallyExclusiveWith[0]: shorter than 1" in errors
    assert any(error.startswith("spec.task: 'warehouse.jobs.extract_*' does not match") for error in errors)


@pytest.mark.parametrize("name", ["Load_Sales", "-load", "load-", "a" * 254, ""])
def test_invalid_name_raises(name: str) -> None:
    with pytest.raises(ManifestError, match="ETLTask name"):
        build_manifest(PlainJob, name=name)


def test_invalid_namespace_raises() -> None:
    with pytest.raises(ManifestError, match="namespace 'Analytics' is invalid"):
        build_manifest(PlainJob, namespace="Analytics")


@pytest.mark.parametrize(
    ("class_name", "expected"),
    [("ExtractWeather", "extract-weather"), ("load_fact_2", "load-fact-2"), ("ETLTaskD1", "etltask-d1")],
)
def test_default_name_is_kebab_case(class_name: str, expected: str) -> None:
    task_class = type(class_name, (PlainJob,), {})

    assert default_task_name(task_class) == expected


def test_cli_prints_yaml_accepted_by_crd(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(
        [
            *("manifest", "tests.runtime.test_manifest.LoadRegionSales"),
            *("--name", "load-sales", "--namespace", "analytics"),
            *("--param", "region=apac", "--param", "days=3", "--param", "as_of=2026-12-01"),
        ],
        env={"PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )

    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert schema_errors(manifest, etltask_schema()) == []
    assert manifest["metadata"] == {"name": "load-sales", "namespace": "analytics"}
    assert manifest["spec"]["parameters"] == {"region": "apac", "days": 3, "as_of": "2026-12-01"}
    assert {"task": "sales.jobs.extract_apac.*"} in manifest["spec"]["dependsOn"]
    assert manifest["spec"]["allowConcurrentRuns"] is True


def test_cli_resolves_partial_name(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["manifest", "load_fact_weather"], env={"KUBE_ETL_BASE_MODULES": "warehouse"})

    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["spec"]["task"] == "warehouse.jobs.load_fact_weather.LoadFactWeather"


def test_cli_lists_candidates_of_ambiguous_name(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["manifest", "extract_*"], env={"KUBE_ETL_BASE_MODULES": "warehouse"})

    assert result.returncode == 2
    assert result.stdout == ""
    assert (
        "warehouse.jobs.extract_stocks.ExtractStocks, warehouse.jobs.extract_weather.ExtractWeather"
        in result.stderr
    )


def test_cli_rejects_invalid_name(run_etl_runtime: RunEtlRuntime) -> None:
    result = run_etl_runtime(["manifest", "warehouse.jobs.failing.FailingJob", "--name", "Not_Valid"])

    assert result.returncode == 2
    assert "ETLTask name 'Not_Valid' is invalid" in result.stderr


def spec_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    """Return the fields that a class declares, with dependsOn as a set and absent defaults filled."""
    spec = manifest["spec"]
    return {
        "task": spec["task"],
        "displayName": spec.get("displayName"),
        "dependsOn": {tuple(sorted(entry.items())) for entry in spec.get("dependsOn", [])},
        "mutuallyExclusiveWith": sorted(spec.get("mutuallyExclusiveWith", [])),
        "allowConcurrentRuns": spec.get("allowConcurrentRuns", False),
    }


@pytest.mark.parametrize("manifest_file", sorted(path.name for path in MANIFESTS_DIR.glob("*.yaml")))
def test_demo_manifests_match_their_classes(manifest_file: str) -> None:
    checked_in = yaml.safe_load((MANIFESTS_DIR / manifest_file).read_text())
    task_class = resolve_task_class(checked_in["spec"]["task"], base_modules=[])

    generated = build_manifest(task_class, name=checked_in["metadata"]["name"])

    assert spec_fields(generated) == spec_fields(checked_in)
