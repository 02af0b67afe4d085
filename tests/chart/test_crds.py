"""The chart's CRDs: one source for the ETLTask schema."""

from __future__ import annotations

from typing import Any

import yaml

from .support import CHART_DIR, REPOSITORY_ROOT

ETLTASK_CRD = "etltasks.etl.kube-etl.io.yaml"


def load_all(name: str) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all((CHART_DIR / "crds" / name).read_text()) if document]


def test_chart_etltask_crd_matches_repository() -> None:
    chart_copy = (CHART_DIR / "crds" / ETLTASK_CRD).read_bytes()
    source = (REPOSITORY_ROOT / "crds" / ETLTASK_CRD).read_bytes()

    assert chart_copy == source, "charts/kube-etl/crds is out of date: run `make chart-crds`"


def test_chart_crds_folder_holds_only_known_files() -> None:
    names = sorted(path.name for path in (CHART_DIR / "crds").iterdir())

    assert names == [ETLTASK_CRD]
