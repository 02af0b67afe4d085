"""The chart's CRDs: one source for the ETLTask schema, and kopf's peering resources."""

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

    assert names == [ETLTASK_CRD, "kopf-peerings.yaml"]


def test_peering_crds_have_kopf_names_and_scopes() -> None:
    crds = {crd["metadata"]["name"]: crd["spec"] for crd in load_all("kopf-peerings.yaml")}

    assert set(crds) == {"clusterkopfpeerings.kopf.dev", "kopfpeerings.kopf.dev"}
    assert crds["clusterkopfpeerings.kopf.dev"]["scope"] == "Cluster"
    assert crds["clusterkopfpeerings.kopf.dev"]["names"]["kind"] == "ClusterKopfPeering"
    assert crds["kopfpeerings.kopf.dev"]["scope"] == "Namespaced"
    assert crds["kopfpeerings.kopf.dev"]["names"]["kind"] == "KopfPeering"
    for spec in crds.values():
        (version,) = spec["versions"]
        assert version["name"] == "v1"
        # kopf writes its keep-alive records into status with a plain patch, so status must be a
        # free-form field of the object and not a subresource.
        assert "subresources" not in version
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        assert status["x-kubernetes-preserve-unknown-fields"] is True
