"""Operator settings from the environment, and the errors that name the variable."""

from __future__ import annotations

import pytest

from etl_operator._settings import OperatorSettings, SettingsError


def test_missing_database_url_names_variable() -> None:
    with pytest.raises(SettingsError, match="KUBE_ETL_DATABASE_URL"):
        OperatorSettings.from_env({})


def test_invalid_integer_names_variable_and_value() -> None:
    with pytest.raises(SettingsError, match=r"KUBE_ETL_MAX_CONCURRENT_TASKS='many'"):
        OperatorSettings.from_env({"KUBE_ETL_DATABASE_URL": "x", "KUBE_ETL_MAX_CONCURRENT_TASKS": "many"})


def test_values_are_read() -> None:
    settings = OperatorSettings.from_env(
        {
            "KUBE_ETL_DATABASE_URL": "x",
            "KUBE_ETL_MAX_CONCURRENT_TASKS": "3",
            "KUBE_ETL_DEFAULT_IMAGE": "img:1",
            "KUBE_ETL_START_TIMEOUT_SECONDS": "30",
        }
    )
    assert settings.max_concurrent_tasks == 3
    assert settings.start_timeout_seconds == 30
    assert settings.default_image == "img:1"
