"""The task's config.ini: settings and database connections.

The operator mounts the ETLTask's ``spec.config.secretName`` as a file and names it in
``$KUBE_ETL_CONFIG``. ``ETLTask.config``, ``get_setting`` and ``get_database`` read it through the
functions here. Values may refer to other values as ``${section:option}`` (``ExtendedInterpolation``).
"""

from __future__ import annotations

import configparser
import os
from contextlib import AbstractContextManager

from sqlalchemy import Connection, Engine, MetaData, create_engine
from sqlalchemy.engine import URL, make_url

from etl_runtime._errors import ConfigError

CONFIG_VARIABLE = "KUBE_ETL_CONFIG"
DEFAULT_DIALECT = "postgresql+psycopg"


def load_config(path: str | os.PathLike[str] | None) -> configparser.ConfigParser:
    """Read the config file at ``path``, or return an empty config when ``path`` is None."""
    config = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    if path is None:
        return config
    try:
        with open(path, encoding="utf-8") as file:
            config.read_file(file)
    except OSError as exc:
        raise ConfigError(f"config file {os.fspath(path)!r} cannot be read: {exc.strerror}") from exc
    except configparser.Error as exc:
        raise ConfigError(f"config file {os.fspath(path)!r} is invalid: {exc}") from exc
    return config


def load_config_from_env() -> configparser.ConfigParser:
    """Read the file named by ``$KUBE_ETL_CONFIG``, or return an empty config when it is unset."""
    path = os.environ.get(CONFIG_VARIABLE, "").strip()
    return load_config(path or None)


def read_option(config: configparser.ConfigParser, section: str, option: str) -> str | None:
    """Return an option's interpolated value, or None when the section or option is missing."""
    if not config.has_option(section, option):
        return None
    try:
        return config.get(section, option)
    except configparser.Error as exc:
        raise ConfigError(f"config option [{section}] {option} is invalid: {exc}") from exc


class DatabaseMetadata(MetaData):
    """SQLAlchemy ``MetaData`` together with the engine of the database it describes.

    SQLAlchemy 2 removed ``MetaData.bind``, so the engine is an attribute here and the methods
    below are shortcuts to it. ``ETLTask.close`` disposes the engine.
    """

    def __init__(self, engine: Engine, *, database_name: str, schema: str | None = None) -> None:
        super().__init__(schema=schema)
        self.engine = engine
        self.database_name = database_name

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"DatabaseMetadata({self.database_name!r}, {url!r}, schema={self.schema!r})"

    def connect(self) -> Connection:
        return self.engine.connect()

    def begin(self) -> AbstractContextManager[Connection]:
        """Return a context manager that yields a connection in a transaction, committed on success."""
        return self.engine.begin()

    def dispose(self) -> None:
        self.engine.dispose()


def database_url(config: configparser.ConfigParser, name: str, user: str | None = None) -> URL:
    """Build the URL of database ``name`` from the config section of that name.

    The section sets either ``url``, or ``dialect`` (default ``postgresql+psycopg``), ``host``,
    ``port``, ``dbname`` (or ``database``), ``user`` and ``password``. A ``user`` argument replaces
    the login. Its password comes from the option ``password_<user>``, and without that option
    the URL carries no password, so the driver falls back to its own sources such as ~/.pgpass.
    """
    if not config.has_section(name):
        sections = ", ".join(config.sections()) or "none"
        raise ConfigError(
            f"database {name!r} not found: the config has no section [{name}] (sections: {sections}); "
            f"add [{name}] with a url option, and check that ${CONFIG_VARIABLE} names the right file"
        )

    url_text = read_option(config, name, "url")
    if url_text:
        try:
            url = make_url(url_text)
        except Exception as exc:  # SQLAlchemy raises ArgumentError, and ValueError for a bad port.
            raise ConfigError(f"config option [{name}] url is not a valid database URL: {exc}") from exc
    else:
        host = read_option(config, name, "host")
        if not host:
            raise ConfigError(
                f"config section [{name}] needs a url option, "
                "or a host option with port, dbname, user and password"
            )
        port = read_option(config, name, "port")
        try:
            port_number = int(port) if port else None
        except ValueError as exc:
            raise ConfigError(f"config option [{name}] port is not a number: {port!r}") from exc
        url = URL.create(
            read_option(config, name, "dialect") or DEFAULT_DIALECT,
            username=read_option(config, name, "user"),
            password=read_option(config, name, "password"),
            host=host,
            port=port_number,
            database=read_option(config, name, "dbname") or read_option(config, name, "database"),
        )

    if url.drivername == "postgresql":
        url = url.set(drivername=DEFAULT_DIALECT)
    if user is not None:
        # Built anew because URL.set ignores a password of None.
        url = URL.create(
            url.drivername,
            username=user,
            password=read_option(config, name, f"password_{user}"),
            host=url.host,
            port=url.port,
            database=url.database,
            query=url.query,
        )
    return url


def create_database_metadata(
    config: configparser.ConfigParser,
    name: str,
    *,
    user: str | None = None,
    schema: str | None = None,
    echo: bool = False,
) -> DatabaseMetadata:
    """Create an engine for database ``name`` and return metadata bound to it.

    ``schema`` defaults to the section's ``schema`` option. The engine connects lazily, so a wrong
    password shows up on first use, not here.
    """
    url = database_url(config, name, user)
    if schema is None:
        schema = read_option(config, name, "schema") or None
    engine = create_engine(url, pool_pre_ping=True, echo=echo)
    return DatabaseMetadata(engine, database_name=name, schema=schema)
