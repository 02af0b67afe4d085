import abc

from etl_runtime import ETLTask


class EtlTaskE(ETLTask):
    def load(self) -> None:
        pass


class AbstractLoader(ETLTask, abc.ABC):
    """Abstract, so never a candidate for a partial name."""

    @abc.abstractmethod
    def rows(self) -> list[int]: ...
