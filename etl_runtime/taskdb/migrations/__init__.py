"""Alembic migrations of the task database schema.

A package only so that setuptools ships ``env.py``, ``script.py.mako`` and the revisions with
``etl_runtime``. ``etl_runtime.taskdb._migrations`` points Alembic at this folder.
"""
