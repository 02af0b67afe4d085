"""Task class resolution: full names, partial names under base modules, and what errors name."""

from __future__ import annotations

import configparser

import pytest

from etl_runtime import AmbiguousTaskNameError, TaskClassNotFoundError, find_task_classes, resolve_task_class
from etl_runtime._resolve import configured_base_modules

BASE = ["runtime_partial_jobs"]


def test_resolves_demo_job() -> None:
    from warehouse.jobs.extract_weather import ExtractWeather

    assert resolve_task_class("warehouse.jobs.extract_weather.ExtractWeather") is ExtractWeather


def test_missing_class_names_module() -> None:
    with pytest.raises(TaskClassNotFoundError) as caught:
        resolve_task_class("warehouse.jobs.Nope", base_modules=[])

    assert (
        str(caught.value)
        == "task class 'warehouse.jobs.Nope' not found: module 'warehouse.jobs' has no class 'Nope'"
    )


def test_missing_class_lists_task_classes() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"task classes there: ExtractWeather"):
        resolve_task_class("warehouse.jobs.extract_weather.ExtractWether", base_modules=[])


def test_missing_module_names_module() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"no module named 'warehouse\.jobz'"):
        resolve_task_class("warehouse.jobz.extract.Extract", base_modules=[])


def test_broken_module_reports_import_error() -> None:
    with pytest.raises(
        TaskClassNotFoundError,
        match=r"importing module 'runtime_broken_module' failed: .*a_dependency_that_is_not_installed",
    ):
        resolve_task_class("runtime_broken_module.Job", base_modules=BASE)


def test_non_task_class_is_rejected() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"is not a subclass of etl_runtime\.ETLTask"):
        resolve_task_class("runtime_sample_jobs.NotATask", base_modules=BASE)


@pytest.mark.parametrize("class_path", ["warehouse..Job", ".Job", "Job.", "a b", "pkg.Job()", ""])
def test_malformed_name_is_rejected(class_path: str) -> None:
    with pytest.raises(TaskClassNotFoundError, match="is invalid"):
        resolve_task_class(class_path, base_modules=BASE)


@pytest.mark.parametrize("class_path", ["ExtractWeather", "extract_*", "warehouse.jobs.1Job"])
def test_partial_name_without_base_modules_names_settings(class_path: str) -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"\[kube_etl\].*KUBE_ETL_BASE_MODULES"):
        resolve_task_class(class_path, base_modules=[])


@pytest.mark.parametrize(
    ("partial_name", "expected"),
    [
        ("etl_task_d1", "runtime_partial_jobs.etl_task_d1.EtlTaskD1"),
        ("EtlTaskD2", "runtime_partial_jobs.etl_task_d2.EtlTaskD2"),
        ("etl_task_e", "runtime_partial_jobs.etl_task_e.EtlTaskE"),
        ("etl_task_d2.EtlTaskD2", "runtime_partial_jobs.etl_task_d2.EtlTaskD2"),
        ("reports", "runtime_partial_jobs.reports.monthly.MonthlyReport"),
        ("reports.monthly", "runtime_partial_jobs.reports.monthly.MonthlyReport"),
        ("Monthly*", "runtime_partial_jobs.reports.monthly.MonthlyReport"),
        ("runtime_partial_jobs.etl_task_d1.EtlTaskD1", "runtime_partial_jobs.etl_task_d1.EtlTaskD1"),
    ],
)
def test_unique_partial_name_resolves(partial_name: str, expected: str) -> None:
    task_class = resolve_task_class(partial_name, base_modules=BASE)

    assert f"{task_class.__module__}.{task_class.__qualname__}" == expected


def test_ambiguous_partial_name_lists_candidates() -> None:
    with pytest.raises(AmbiguousTaskNameError) as caught:
        resolve_task_class("etl_task_d*", base_modules=BASE)

    assert caught.value.candidates == (
        "runtime_partial_jobs.etl_task_d1.EtlTaskD1",
        "runtime_partial_jobs.etl_task_d2.EtlTaskD2",
    )
    message = str(caught.value)
    assert "task name 'etl_task_d*' is ambiguous: it matches 2 task classes" in message
    assert "runtime_partial_jobs.etl_task_d1.EtlTaskD1, runtime_partial_jobs.etl_task_d2.EtlTaskD2" in message


def test_module_prefix_matches_every_class_below() -> None:
    with pytest.raises(AmbiguousTaskNameError) as caught:
        resolve_task_class("runtime_partial_jobs", base_modules=BASE)

    assert len(caught.value.candidates) == 4


def test_unmatched_partial_name_names_base_modules() -> None:
    with pytest.raises(TaskClassNotFoundError) as caught:
        resolve_task_class("NoSuchTask", base_modules=[*BASE, "warehouse.jobs"])

    assert not isinstance(caught.value, AmbiguousTaskNameError)
    assert str(caught.value) == (
        "task class 'NoSuchTask' not found: no task class under the base modules runtime_partial_jobs, "
        "warehouse.jobs matches the patterns NoSuchTask, *.NoSuchTask.*, *.NoSuchTask, NoSuchTask.*"
    )


def test_unmatched_full_name_reports_both_searches() -> None:
    with pytest.raises(TaskClassNotFoundError) as caught:
        resolve_task_class("warehouse.jobs.Nope", base_modules=BASE)

    message = str(caught.value)
    assert "module 'warehouse.jobs' has no class 'Nope'" in message
    assert "as a partial name: task class 'warehouse.jobs.Nope' not found" in message


def test_full_name_outside_base_modules_resolves() -> None:
    task_class = resolve_task_class("runtime_sample_jobs.SlowJob", base_modules=BASE)

    assert task_class.__name__ == "SlowJob"


def test_unimportable_modules_are_named() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"runtime_partial_broken\.broken: ModuleNotFoundError"):
        resolve_task_class("Missing", base_modules=["runtime_partial_broken"])

    assert resolve_task_class("GoodJob", base_modules=["runtime_partial_broken"]).__name__ == "GoodJob"


def test_missing_base_module_is_named() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"no_such_base_package: ModuleNotFoundError"):
        resolve_task_class("Anything", base_modules=["no_such_base_package"])


def test_classes_count_under_defining_module() -> None:
    found = find_task_classes(BASE)

    assert sorted(found.classes) == [
        "runtime_partial_jobs.etl_task_d1.EtlTaskD1",
        "runtime_partial_jobs.etl_task_d2.EtlTaskD2",
        "runtime_partial_jobs.etl_task_e.EtlTaskE",
        "runtime_partial_jobs.reports.monthly.MonthlyReport",
    ]
    assert found.failures == {}


def test_base_modules_come_from_config_and_environment() -> None:
    config = configparser.ConfigParser()
    config.read_string("[kube_etl]\nbase_modules = a.b, c\n    d\n")

    assert configured_base_modules(config, {"KUBE_ETL_BASE_MODULES": "c,e"}) == ["a.b", "c", "d", "e"]
    assert configured_base_modules(configparser.ConfigParser(), {}) == []


def test_environment_supplies_default_base_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_ETL_BASE_MODULES", "runtime_partial_jobs")

    assert resolve_task_class("EtlTaskE").__name__ == "EtlTaskE"
