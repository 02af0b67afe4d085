"""Task class resolution: the class is found, or the error names what was tried."""

from __future__ import annotations

import pytest

from etl_runtime import TaskClassNotFoundError, resolve_task_class


def test_resolves_demo_job() -> None:
    from warehouse.jobs.extract_weather import ExtractWeather

    assert resolve_task_class("warehouse.jobs.extract_weather.ExtractWeather") is ExtractWeather


def test_missing_class_names_module() -> None:
    with pytest.raises(TaskClassNotFoundError) as caught:
        resolve_task_class("warehouse.jobs.Nope")

    assert (
        str(caught.value)
        == "task class 'warehouse.jobs.Nope' not found: module 'warehouse.jobs' has no class 'Nope'"
    )


def test_missing_class_lists_task_classes() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"task classes there: ExtractWeather"):
        resolve_task_class("warehouse.jobs.extract_weather.ExtractWether")


def test_missing_module_names_module() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"no module named 'warehouse\.jobz'"):
        resolve_task_class("warehouse.jobz.extract.Extract")


def test_broken_module_reports_import_error() -> None:
    with pytest.raises(
        TaskClassNotFoundError,
        match=r"importing module 'runtime_broken_module' failed: .*a_dependency_that_is_not_installed",
    ):
        resolve_task_class("runtime_broken_module.Job")


def test_non_task_class_is_rejected() -> None:
    with pytest.raises(TaskClassNotFoundError, match=r"is not a subclass of etl_runtime\.ETLTask"):
        resolve_task_class("runtime_sample_jobs.NotATask")


@pytest.mark.parametrize("class_path", ["ExtractWeather", "warehouse..Job", "warehouse.jobs.1Job", ""])
def test_malformed_name_is_rejected(class_path: str) -> None:
    with pytest.raises(TaskClassNotFoundError, match="is invalid"):
        resolve_task_class(class_path)
