"""Alembic configuration and the migration lock of the task database.

Called by ``TaskDatabase.upgrade``. The Alembic config is built in code so that no alembic.ini has
to exist next to an installed package.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, text

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Key of the Postgres advisory lock that serialises schema upgrades. It is derived from a fixed
# string so that every kube-etl process computes the same 32-bit key.
MIGRATION_LOCK_KEY = zlib.crc32(b"kube-etl task database migrations")


def alembic_config(url: str) -> Config:
    """Build an Alembic config for the task database at ``url``, without an ini file."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    # ConfigParser treats "%" as interpolation syntax, and URL-encoded passwords contain it.
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_to_head(engine: Engine) -> tuple[str | None, str | None]:
    """Apply every pending migration and return the revisions before and after.

    The upgrade holds a transaction-scoped advisory lock. A second process that upgrades at the
    same time waits for the lock, then finds the schema at head and changes nothing. Postgres DDL
    is transactional, so a failed upgrade leaves no partial schema behind.
    """
    url = engine.url.render_as_string(hide_password=False)
    config = alembic_config(url)
    with engine.begin() as connection:
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        after = MigrationContext.configure(connection).get_current_revision()
    return before, after
