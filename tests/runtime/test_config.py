"""Task config: interpolation, settings by task class, and database URLs from config sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_runtime import ConfigError, DatabaseMetadata, ETLTask
from etl_runtime._config import database_url, load_config

CONFIG_TEXT = """
[DEFAULT]
host = 127.0.0.1

[postgres]
port = 5433

[warehouse]
url = postgresql://etl:secret@${host}:${postgres:port}/warehouse
password_loader = loader-secret
schema = analytics

[by_parts]
dialect = postgresql+psycopg
host = ${DEFAULT:host}
port = ${postgres:port}
dbname = staging
user = etl
password = p%ss

[tests.runtime.test_config.Job]
batch_size = 250

[Job]
batch_size = 999
mode = from-short-section
"""


class Job(ETLTask):
    def load(self) -> None:
        pass


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(CONFIG_TEXT)
    return path


def test_extended_interpolation_resolves_references(config_path: Path) -> None:
    config = load_config(config_path)

    assert config.get("warehouse", "url") == "postgresql://etl:secret@127.0.0.1:5433/warehouse"


def test_config_comes_from_environment(config_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_ETL_CONFIG", str(config_path))

    assert Job().config.get("postgres", "port") == "5433"


def test_missing_config_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path / "missing.ini")


def test_no_config_gives_empty_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_ETL_CONFIG", raising=False)

    assert Job().config.sections() == []


def test_setting_prefers_full_class_section(config_path: Path) -> None:
    job = Job(config=config_path)

    assert job.name == "tests.runtime.test_config.Job"
    assert job.get_setting("batch_size") == "250"
    assert job.get_setting("mode") == "from-short-section"


def test_missing_setting_raises_naming_sections(config_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'timeout'.*\[tests\.runtime\.test_config\.Job\] or \[Job\]"):
        Job(config=config_path).get_setting("timeout")


def test_setting_or_default_returns_default(config_path: Path) -> None:
    job = Job(config=config_path)

    assert job.get_setting_or_default("timeout", None) is None
    assert job.get_setting_or_default("batch_size", "1") == "250"


def test_url_option_selects_psycopg(config_path: Path) -> None:
    url = database_url(load_config(config_path), "warehouse")

    assert url.drivername == "postgresql+psycopg"
    assert url.host == "127.0.0.1"
    assert url.port == 5433
    assert url.username == "etl"
    assert url.password == "secret"


def test_url_from_parts(config_path: Path) -> None:
    url = database_url(load_config(config_path), "by_parts")

    assert (
        url.render_as_string(hide_password=False) == "postgresql+psycopg://etl:p%25ss@127.0.0.1:5433/staging"
    )


def test_user_argument_takes_user_password(config_path: Path) -> None:
    config = load_config(config_path)

    loader = database_url(config, "warehouse", user="loader")
    reader = database_url(config, "warehouse", user="reader")

    assert (loader.username, loader.password) == ("loader", "loader-secret")
    assert (reader.username, reader.password) == ("reader", None)


def test_missing_database_section_raises(config_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"database 'sales' not found: the config has no section \[sales\]"):
        database_url(load_config(config_path), "sales")


def test_get_database_binds_engine_and_schema(config_path: Path) -> None:
    job = Job(config=config_path)

    database = job.get_database("warehouse")

    assert isinstance(database, DatabaseMetadata)
    assert database.schema == "analytics"
    assert database.engine.url.database == "warehouse"
    assert job.get_database("warehouse") is database
    assert job.get_database("warehouse", schema="other").schema == "other"
    assert "secret" not in repr(database)
    job.close()


def test_add_database_is_returned_by_get_database(config_path: Path) -> None:
    job = Job(config=config_path)
    database = job.get_database("by_parts")
    other = Job(config=config_path)

    other.add_database(database)

    assert other.get_database("by_parts") is database
    job.close()
