from etl_runtime import ETLTask

from .etl_task_d1 import EtlTaskD1


class EtlTaskD2(ETLTask):
    """Its module imports EtlTaskD1, which must still count only under etl_task_d1."""

    def load(self) -> None:
        EtlTaskD1()
