"""Secret parameters: the mask that replaces their values, and the redaction of those values.

A bottom layer of ``etl_runtime``, beside ``_errors``: it imports nothing from the package. The
task database stores a secret parameter as ``SECRET_MASK`` with its ``secret`` flag set. In a pod,
the real value of the secret parameter ``name`` comes from the environment variable that
``secret_parameter_variable(name)`` returns, which the operator fills from a Kubernetes Secret
(``spec.secretParameters``). The operator imports the same helpers, so both sides agree on the
variable names.

Every secret value that the runtime learns is registered here, for the life of the process.
``redact`` replaces those values in free text: the error text saved to the task database, the
failure mail, and the log records that pass through ``_logging.SecretRedactor``.
"""

from __future__ import annotations

import re
import threading
from typing import Any

# The text that the task database, parameters(), repr and logs show in place of a secret value.
SECRET_MASK = "********"
SECRET_PARAMETER_VARIABLE_PREFIX = "KUBE_ETL_SECRET_PARAMETER_"
# Secret parameter names become environment variable names, so they are identifiers.
SECRET_PARAMETER_NAME_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Shorter values are masked in parameters and the task database, but not searched for in free
# text, where they would mask ordinary words and numbers.
MIN_REDACTED_LENGTH = 4

_lock = threading.Lock()
_values: set[str] = set()
_pattern: re.Pattern[str] | None = None


def check_secret_parameter_name(name: Any) -> str:
    """Return ``name`` when it is a valid secret parameter name, else raise ValueError naming it."""
    if not isinstance(name, str) or not SECRET_PARAMETER_NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"secret parameter name {name!r} is invalid: use letters, digits and underscores, "
            "not starting with a digit (for example api_token), because it also names an "
            "environment variable"
        )
    return name


def secret_parameter_variable(name: str) -> str:
    """Return the environment variable that contains secret parameter ``name`` in a pod.

    For example ``api_token`` is in ``KUBE_ETL_SECRET_PARAMETER_API_TOKEN``. Names are
    case-insensitive, so ``API_Token`` shares that variable.
    """
    return SECRET_PARAMETER_VARIABLE_PREFIX + check_secret_parameter_name(name).upper()


def secret_texts(value: Any) -> set[str]:
    """Return the texts of ``value`` that ``redact`` searches for: its str() and repr()."""
    if value is None or isinstance(value, bool):
        return set()
    texts = {str(value), repr(value)}
    return {text for text in texts if len(text) >= MIN_REDACTED_LENGTH}


def register_secret(value: Any) -> None:
    """Remember a secret value, so that ``redact`` masks it from now on in this process."""
    texts = secret_texts(value)
    global _pattern
    with _lock:
        if texts <= _values:
            return
        _values.update(texts)
        # Sorted by length, longest first, so that a value containing another one is masked whole.
        ordered = sorted(_values, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(text) for text in ordered))


def redact(text: str) -> str:
    """Return ``text`` with every registered secret value replaced by ``SECRET_MASK``."""
    pattern = _pattern
    if pattern is None or not text:
        return text
    return pattern.sub(SECRET_MASK, text)


def redacting() -> bool:
    """Return whether any secret value is registered, so that ``redact`` may change text."""
    return _pattern is not None
