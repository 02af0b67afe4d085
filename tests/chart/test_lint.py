"""`helm lint --strict` over the chart's defaults and every values file of the matrix."""

from __future__ import annotations

import pytest

from .support import CHART_DIR, VALUES_FILES, Tools, values_arguments


def test_chart_lints_with_defaults(tools: Tools) -> None:
    result = tools.helm("lint", "--strict", str(CHART_DIR), check=False)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_chart_lints_with_values(tools: Tools, values_file: str) -> None:
    result = tools.helm("lint", "--strict", str(CHART_DIR), *values_arguments([values_file]), check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout
