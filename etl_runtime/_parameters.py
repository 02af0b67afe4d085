"""Parameters of one task run, held in memory with case-insensitive names.

``ETLTask`` keeps one ``ParameterSet``. It fills the set from the task database and writes back
the values that the job sets, except those marked ``local_only``. Values that will be written
are checked to be JSON when they are set, so the error points at the line that set them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from etl_runtime._errors import ParameterError
from etl_runtime._json import check_parameter_value

ParameterInput = Mapping[str, Any] | Iterable[tuple[str, Any]]


class _Missing:
    """Type of ``MISSING``, the default that makes ``get_parameter`` raise."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


@dataclass
class Parameter:
    name: str
    value: Any
    local_only: bool
    # Set but not yet written to the task database. Never true for a local-only parameter.
    pending: bool


def parameter_items(values: ParameterInput | None, extra: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Return the (name, value) pairs of a dict or a list of pairs, followed by ``extra``."""
    items: list[tuple[str, Any]] = []
    if isinstance(values, Mapping):
        items.extend(values.items())
    elif values is not None:
        for entry in values:
            if not isinstance(entry, tuple | list) or len(entry) != 2:
                raise ParameterError(f"parameter entry {entry!r} is invalid: expected a (name, value) pair")
            items.append((entry[0], entry[1]))
    items.extend(extra.items())
    return items


class ParameterSet:
    """Parameters by lower-cased name, remembering each name as it was given."""

    def __init__(self) -> None:
        self._by_key: dict[str, Parameter] = {}

    def set(self, name: str, value: Any, *, local_only: bool = False) -> None:
        if not isinstance(name, str) or not name.strip():
            raise ParameterError(f"parameter name {name!r} is invalid: expected a non-empty string")
        if not local_only:
            check_parameter_value(name, value)
        self._by_key[name.lower()] = Parameter(name, value, local_only, pending=not local_only)

    def find(self, name: str) -> Parameter | None:
        return self._by_key.get(name.lower())

    def names(self) -> list[str]:
        return [parameter.name for parameter in self._by_key.values()]

    def as_dict(self) -> dict[str, Any]:
        return {parameter.name: parameter.value for parameter in self._by_key.values()}

    def merge_loaded(self, values: Mapping[str, Any]) -> None:
        """Take the values read from the task database.

        Values that the job set locally and has not written yet, and local-only values, are
        newer than the database's and are kept.
        """
        for name, value in values.items():
            current = self.find(name)
            if current is not None and (current.pending or current.local_only):
                continue
            self._by_key[name.lower()] = Parameter(name, value, local_only=False, pending=False)

    def pending(self) -> dict[str, Any]:
        """Return the parameters that were set but not yet written, by name."""
        return {parameter.name: parameter.value for parameter in self._by_key.values() if parameter.pending}

    def mark_written(self, names: Iterable[str]) -> None:
        for name in names:
            parameter = self.find(name)
            if parameter is not None:
                parameter.pending = False
