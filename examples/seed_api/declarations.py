"""Dependencies and mutual exclusion, declared in the class and printed as an ETLTask manifest.

    etl-runtime manifest seed_api.declarations.LoadOrders --name load-orders --param region=emea

prints the ETLTask that the declarations below imply. With ``seed_api`` as a base module, the
partial names ``LoadOrders``, ``declarations.LoadOrders`` and ``declarations.Load*`` select the
same class, while ``Load*`` is ambiguous, since it also matches ``seed_api.children.LoadRegion``.
"""

from __future__ import annotations

from etl_runtime import Dependency, ETLTask


class ExtractOrders(ETLTask):
    DISPLAY_NAME = "Extract orders"

    def load(self) -> None:
        self.statistics.set("rows_read", 0)


class LoadOrders(ETLTask):
    DISPLAY_NAME = "Load orders"

    def depends_on(self) -> list[str | Dependency]:
        # A class pattern waits while any matching task runs; a name must have succeeded.
        region = self.get_parameter("region", "all")
        return ["seed_api.declarations.ExtractOrders", Dependency.on_name(f"build-customers-{region}")]

    def mutually_exclusive_execution(self) -> list[str]:
        return ["orders-mart", "seed_api.declarations.Rebuild*"]

    def allow_concurrent_runs(self) -> bool:
        return False

    def load(self) -> None:
        self.log.info("depends on %s", sorted(str(entry) for entry in self.normalized_dependents_set()))
        self.log.info("never beside %s", sorted(self.mutually_exclusive_with_set()))
