"""Every manifest that the chart renders is accepted by the apiserver in a server-side dry run."""

from __future__ import annotations

from pathlib import Path

import pytest

from .support import VALUES_FILES, Tools, render_text

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_manifests_pass_server_dry_run(
    tools: Tools,
    kubeconfig: Path,
    chart_namespaces: set[str],
    chart_crds_applied: None,
    values_file: str,
) -> None:
    manifests = render_text(tools, [values_file]).stdout

    result = tools.kubectl(
        "apply", "--dry-run=server", "-f", "-", kubeconfig=kubeconfig, input_text=manifests, check=False
    )

    assert result.returncode == 0, result.stderr
    assert "(server dry run)" in result.stdout
