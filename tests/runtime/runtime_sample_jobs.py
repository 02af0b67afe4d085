"""Small task classes that the runtime tests run in a subprocess through ``etl-runtime run``.

The tests put this folder on PYTHONPATH, so the classes are ``runtime_sample_jobs.<Name>``.
"""

from __future__ import annotations

import time

from etl_runtime import ETLTask


class SetParameterJob(ETLTask):
    """Sets one committed, one deferred and one local-only parameter, and counts them."""

    def load(self) -> None:
        self.set_parameter("Watermark", "2026-12-01")
        self.set_parameter("deferred_count", 5, commit=False)
        self.set_parameter("local_secret", "not for the database", local_only=True)
        self.statistics.add("parameters_set", 3)


class EchoParametersJob(ETLTask):
    """Copies each parameter's name and JSON type into its statistics."""

    def load(self) -> None:
        for name, value in self.parameters().items():
            self.statistics.set(f"parameter_types.{name}", type(value).__name__)


class SlowJob(ETLTask):
    """Counts loops of 50 ms in ``load`` until a stop request, for at most 60 s."""

    def load(self) -> None:
        self.log.info("slow load started")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            self.raise_if_stop_requested()
            self.statistics.add("loops")
            time.sleep(0.05)


class BrokenConstructorJob(ETLTask):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("constructor failed on purpose")


class NotATask:
    pass


class UncheckedSlowJob(ETLTask):
    """Sleeps 60 s in ``load`` without checking for a stop request."""

    def load(self) -> None:
        self.log.info("unchecked load started")
        time.sleep(60)
        self.statistics.add("woke_up")
