"""Failure mail: a check that fails, and the mail that its failure sends.

With ``[smtp] host`` in the config and recipients in ``$KUBE_ETL_NOTIFY_EMAIL`` (the operator sets
it from ``spec.notify.email``) or ``[smtp] to``, a failed run sends a mail with the subject
``[<environment>] seed_api.failure_mail.CheckRowCount failed``. ``--no-mail`` or
``KUBE_ETL_NO_MAIL=1`` turns it off.
"""

from __future__ import annotations

from etl_runtime import ETLTask


class CheckRowCount(ETLTask):
    DISPLAY_NAME = "Check the row count"

    def load(self) -> None:
        expected = int(self.get_parameter("expected_rows", 100))
        actual = int(self.get_parameter("actual_rows", 0))
        self.statistics.set("rows", actual)
        if actual < expected:
            raise ValueError(f"only {actual} rows arrived, expected at least {expected}")
