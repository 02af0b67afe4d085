from etl_runtime import ETLTask


class MonthlyReport(ETLTask):
    def load(self) -> None:
        pass


class Helper:
    """Not a task class, so never a candidate."""
