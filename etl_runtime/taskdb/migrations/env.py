"""Alembic environment of the task database.

``TaskDatabase.upgrade`` runs it through ``alembic.command.upgrade`` with an open connection in
``config.attributes["connection"]``, inside a transaction that holds the migration lock. Without a
connection it connects to the URL in the ``sqlalchemy.url`` option, which lets a developer call
``alembic.command.revision`` on a config from ``etl_runtime.taskdb._migrations.alembic_config``.
Offline mode (``--sql``) prints the DDL instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine

from etl_runtime.taskdb._schema import metadata


def run_with_connection(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    config = context.config
    url = config.get_main_option("sqlalchemy.url")

    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return

    connection = config.attributes.get("connection")
    if connection is not None:
        run_with_connection(connection)
        return

    if not url:
        raise RuntimeError("the task database migrations need a connection or the sqlalchemy.url option")
    engine = create_engine(url)
    try:
        with engine.connect() as new_connection:
            run_with_connection(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


run_migrations()
