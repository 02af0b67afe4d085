from etl_runtime import ETLTask


class EtlTaskD1(ETLTask):
    def load(self) -> None:
        pass
