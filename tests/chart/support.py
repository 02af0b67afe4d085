"""Helpers of the chart tests: helm and kubectl from the control plane build, and rendered manifests.

The tests in this folder render `charts/kube-etl` over the values files in `values/`, check the
manifests, and install the chart into the session's local cluster (see `tests/conftest.py`).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPOSITORY_ROOT / "charts" / "kube-etl"
VALUES_DIR = Path(__file__).resolve().parent / "values"
# Every values file of the matrix; each renders a valid release.
VALUES_FILES = sorted(path.name for path in VALUES_DIR.glob("*.yaml"))
RELEASE_NAMESPACE = "kube-etl"


class CommandFailed(AssertionError):
    """A helm or kubectl command exited with an error."""


@dataclass(frozen=True)
class Tools:
    """helm and kubectl of the control plane build, with helm's state kept in a folder of its own."""

    bin_dir: Path
    helm_home: Path

    def run(
        self,
        program: str,
        *args: str,
        kubeconfig: Path | None = None,
        input_text: str | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[str]:
        environment = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.helm_home / "cache"),
            "HELM_CONFIG_HOME": str(self.helm_home / "config"),
            "HELM_DATA_HOME": str(self.helm_home / "data"),
        }
        if kubeconfig is not None:
            environment["KUBECONFIG"] = str(kubeconfig)
        result = subprocess.run(
            [str(self.bin_dir / program), *args],
            input=input_text,
            capture_output=True,
            text=True,
            env=environment,
            timeout=300,
            check=False,
        )
        if check and result.returncode != 0:
            raise CommandFailed(
                f"{program} {' '.join(args)} exited with {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return result

    def helm(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.run("helm", *args, **options)

    def kubectl(self, *args: str, **options: Any) -> subprocess.CompletedProcess[str]:
        return self.run("kubectl", *args, **options)


def values_arguments(values_files: Iterable[str], settings: Mapping[str, str] | None = None) -> list[str]:
    """Return helm's --values and --set arguments for files in `values/` and single settings."""
    arguments: list[str] = []
    for name in values_files:
        arguments += ["--values", str(VALUES_DIR / name)]
    for key, value in (settings or {}).items():
        arguments += ["--set", f"{key}={value}"]
    return arguments


def render_text(
    tools: Tools,
    values_files: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
    *,
    release: str = "kube-etl",
    include_crds: bool = False,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run `helm template` on the chart; the result carries the manifests or the error."""
    arguments = ["template", release, str(CHART_DIR), "--namespace", RELEASE_NAMESPACE]
    if include_crds:
        arguments.append("--include-crds")
    return tools.helm(*arguments, *values_arguments(values_files, settings), check=check)


def render(
    tools: Tools,
    values_files: Sequence[str] = (),
    settings: Mapping[str, str] | None = None,
    **options: Any,
) -> list[dict[str, Any]]:
    """Return the manifests of `helm template`, one dict per object."""
    text = render_text(tools, values_files, settings, **options).stdout
    return [document for document in yaml.safe_load_all(text) if document]


def find(manifests: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Return the manifests of one kind, and of one name when given."""
    return [
        manifest
        for manifest in manifests
        if manifest["kind"] == kind and (name is None or manifest["metadata"]["name"] == name)
    ]


def the_one(manifests: Iterable[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """Return the only manifest of one kind (and name); fail if there are none or several."""
    found = find(manifests, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def namespaces_of(values_files: Iterable[str]) -> set[str]:
    """Return every namespace that the values files name, which must exist before an install."""
    namespaces: set[str] = set()
    for name in values_files:
        values = yaml.safe_load((VALUES_DIR / name).read_text()) or {}
        namespaces.update((values.get("rbac") or {}).get("watchNamespaces") or ())
        namespaces.update((values.get("jobs") or {}).get("namespaces") or ())
    return namespaces


def operator_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """Return the operator container of the operator Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    return next(container for container in containers if container["name"] == "operator")


def environment_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """Return a container's environment as name -> value, or name -> valueFrom for references."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


RuleKey = tuple[str, str, str, str]


def rule_set(rules: Iterable[Mapping[str, Any]]) -> set[RuleKey]:
    """Flatten RBAC rules to (apiGroup, resource, resourceName, verb); no resourceNames gives ""."""
    flattened: set[RuleKey] = set()
    for rule in rules:
        names = rule.get("resourceNames") or rule.get("resource_names") or [""]
        for group in rule.get("apiGroups") or rule.get("api_groups") or [""]:
            for resource in rule.get("resources") or ():
                for name in names:
                    for verb in rule.get("verbs") or ():
                        flattened.add((group, resource, name, verb))
    return flattened


def expand(group: str, resource: str, verbs: str, name: str = "") -> set[RuleKey]:
    """Return the rule keys of several space-separated verbs on one resource."""
    return {(group, resource, name, verb) for verb in verbs.split()}


# What the operator may do in every namespace it watches.
NAMESPACED_RULES = (
    expand("etl.kube-etl.io", "etltasks", "get list watch patch create delete")
    | expand("etl.kube-etl.io", "etltasks/status", "get patch")
    | expand("", "pods", "get list watch create delete")
    | expand("", "events", "create")
)


def cluster_rules() -> set[RuleKey]:
    """The exact rules of the operator's ClusterRole."""
    return (
        NAMESPACED_RULES
        | expand("", "namespaces", "get list watch")
        | expand("", "nodes", "list watch")
        | expand("apiextensions.k8s.io", "customresourcedefinitions", "list watch")
    )


def namespace_rules() -> set[RuleKey]:
    """The exact rules of the operator's Role in a watched namespace."""
    return set(NAMESPACED_RULES)


def lease_rules(lease: str) -> set[RuleKey]:
    """The exact rules of the operator's leader election Role in the release namespace."""
    return expand("coordination.k8s.io", "leases", "create") | expand(
        "coordination.k8s.io", "leases", "get update", name=lease
    )
