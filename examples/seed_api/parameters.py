"""Parameters: read with defaults, names in any case, write back for the next run.

``IncrementalExtract`` reads ``since`` (default None: a full extract), ``batch_size`` and
``Mode``, and writes ``watermark`` (committed at once), ``rows_seen`` (written at the end of the
run) and a local-only ``cursor`` that never reaches the task database.
"""

from __future__ import annotations

from datetime import date, timedelta

from etl_runtime import ETLTask, ParameterError


class IncrementalExtract(ETLTask):
    DISPLAY_NAME = "Extract changed rows"

    def init(self) -> None:
        since = self.get_parameter("since", None)
        self.since = date.fromisoformat(since) if since is not None else None
        self.batch_size = int(self.get_parameter("batch_size", 100))
        # Names are case-insensitive: --param mode=delta and --param MODE=delta both count.
        self.mode = self.get_parameter("Mode", "full" if self.since is None else "delta")
        try:
            self.get_parameter("required_but_missing")
        except ParameterError as exc:
            self.log.info("as expected: %s", exc)

    def load(self) -> None:
        start = self.since or date(2026, 1, 1)
        days = [start + timedelta(days=offset) for offset in range(self.batch_size)]
        self.set_parameter("cursor", iter(days), local_only=True)
        self.set_parameter("rows_seen", len(days), commit=False)
        self.set_parameter("watermark", days[-1].isoformat())
        self.statistics.set("mode", self.mode)
        self.log.info("parameters now: %s", ", ".join(self.parameter_names()))
