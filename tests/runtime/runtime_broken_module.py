"""A module that cannot be imported, for the task class resolution tests."""

import a_dependency_that_is_not_installed  # type: ignore[import-not-found]  # noqa: F401
