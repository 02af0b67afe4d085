"""Parameters of one task run, held in memory with case-insensitive names.

``ETLTask`` keeps one ``ParameterSet``. It fills the set from the task database and writes back
the values that the job sets, except those marked ``local_only``. Values that will be written
are checked to be JSON when they are set, so the error points at the line that set them.

A secret parameter keeps its real value here, but is written to the task database as the mask
(``_secrets.SECRET_MASK``), and ``ParameterValues`` shows it masked. The database row of a secret
parameter that the operator stored has only the mask, so ``merge_loaded`` takes its value from the
environment variable that the operator fills from the Kubernetes Secret.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from etl_runtime._errors import ParameterError
from etl_runtime._json import check_parameter_value
from etl_runtime._secrets import SECRET_MASK, register_secret, secret_parameter_variable

ParameterInput = Mapping[str, Any] | Iterable[tuple[str, Any]]


class _Missing:
    """Type of ``MISSING``, the default that makes ``get_parameter`` raise."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class _Unavailable:
    """Type of ``UNAVAILABLE``, the value of a secret parameter whose value this process lacks."""

    def __repr__(self) -> str:
        return SECRET_MASK


# The value of a secret parameter that the task database lists, when this process has no value
# for it: outside a pod, or without its environment variable.
UNAVAILABLE: Any = _Unavailable()


@dataclass
class Parameter:
    name: str
    value: Any
    local_only: bool
    # Set but not yet written to the task database. Never true for a local-only parameter.
    pending: bool
    # Written to the task database as the mask, and shown masked.
    secret: bool = False

    def __repr__(self) -> str:
        value = SECRET_MASK if self.secret else repr(self.value)
        return f"Parameter(name={self.name!r}, value={value}, secret={self.secret})"


class ParameterValues(dict[str, Any]):
    """Parameter values by name, as ``ETLTask.parameters()`` returns them.

    Items contain the real values, also of secret parameters, but ``repr`` and ``str`` show the
    secret ones as the mask, so logging the dict does not reveal them.
    """

    def __init__(self, values: Mapping[str, Any], secret_names: Iterable[str] = ()) -> None:
        super().__init__(values)
        self.secret_names = frozenset(secret_names)

    def masked(self) -> dict[str, Any]:
        """Return a plain dict with the secret values replaced by the mask."""
        return {name: SECRET_MASK if name in self.secret_names else value for name, value in self.items()}

    def __repr__(self) -> str:
        return repr(self.masked())

    __str__ = __repr__


def secret_value_from_environment(name: str, environ: Mapping[str, str]) -> Any:
    """Return the value of secret parameter ``name`` from its environment variable, or UNAVAILABLE."""
    try:
        variable = secret_parameter_variable(name)
    except ValueError:
        return UNAVAILABLE
    value = environ.get(variable)
    return UNAVAILABLE if value is None else value


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

    def set(self, name: str, value: Any, *, local_only: bool = False, secret: bool = False) -> None:
        """Set a value. A parameter that is secret stays secret when it is set again."""
        if not isinstance(name, str) or not name.strip():
            raise ParameterError(f"parameter name {name!r} is invalid: expected a non-empty string")
        current = self.find(name)
        secret = secret or (current is not None and current.secret)
        if secret:
            # Only the mask is written, so the value need not be JSON.
            register_secret(value)
        elif not local_only:
            check_parameter_value(name, value)
        self._by_key[name.lower()] = Parameter(name, value, local_only, pending=not local_only, secret=secret)

    def find(self, name: str) -> Parameter | None:
        return self._by_key.get(name.lower())

    def names(self) -> list[str]:
        return [parameter.name for parameter in self._by_key.values()]

    def as_dict(self) -> ParameterValues:
        """Return the values by name; a secret value that this process lacks shows as the mask."""
        values = {
            parameter.name: SECRET_MASK if parameter.value is UNAVAILABLE else parameter.value
            for parameter in self._by_key.values()
        }
        secret_names = [parameter.name for parameter in self._by_key.values() if parameter.secret]
        return ParameterValues(values, secret_names)

    def masked(self) -> dict[str, Any]:
        """Return the values by name with every secret value replaced by the mask."""
        return self.as_dict().masked()

    def merge_loaded(
        self,
        values: Mapping[str, Any],
        *,
        secret_names: Collection[str] = (),
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Take the values read from the task database.

        Values that the job set locally and has not written yet, and local-only values, are
        newer than the database's and are kept. The parameters in ``secret_names`` are secret:
        the database contains only their mask, so each keeps the value this process has, or
        takes it from its environment variable in ``environ`` (default ``os.environ``), or is
        UNAVAILABLE.
        """
        environ = os.environ if environ is None else environ
        secret_keys = {name.lower() for name in secret_names}
        for name, value in values.items():
            secret = name.lower() in secret_keys
            current = self.find(name)
            if current is not None and (current.pending or current.local_only):
                if secret and not current.secret:
                    current.secret = True
                    register_secret(current.value)
                continue
            if not secret:
                self._by_key[name.lower()] = Parameter(name, value, local_only=False, pending=False)
                continue
            if current is not None and current.secret and current.value is not UNAVAILABLE:
                continue
            value = secret_value_from_environment(name, environ)
            if value is not UNAVAILABLE:
                register_secret(value)
            self._by_key[name.lower()] = Parameter(name, value, local_only=False, pending=False, secret=True)

    def pending(self) -> dict[str, Any]:
        """Return the parameters that were set but not yet written, by name, secret ones as the mask."""
        return {
            parameter.name: SECRET_MASK if parameter.secret else parameter.value
            for parameter in self._by_key.values()
            if parameter.pending
        }

    def pending_secret_names(self) -> list[str]:
        """Return the names of the secret parameters among ``pending()``."""
        return [
            parameter.name for parameter in self._by_key.values() if parameter.pending and parameter.secret
        ]

    def mark_written(self, names: Iterable[str]) -> None:
        for name in names:
            parameter = self.find(name)
            if parameter is not None:
                parameter.pending = False
