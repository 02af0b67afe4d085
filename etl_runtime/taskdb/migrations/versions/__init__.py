"""Revisions of the task database schema, applied in order by ``TaskDatabase.upgrade``.

Alembic skips this file when it collects revisions.
"""
