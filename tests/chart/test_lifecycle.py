"""Releases through their life: a namespaced one installed, upgraded to one more namespace and
uninstalled, and one with the bundled Postgres, whose generated password must survive both.

Each release has names of its own, so none touches the release of `test_install.py`.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .accounts import SELF_REVIEW_RULES, rules_of
from .support import CHART_DIR, Tools, namespace_rules

pytestmark = pytest.mark.integration

RELEASE = "lifecycle"
NAMESPACE = "kube-etl-lifecycle"
WATCHED = ("lifecycle-a", "lifecycle-b")
NAME = "lifecycle-kube-etl-operator"
OPERATOR_USER = f"system:serviceaccount:{NAMESPACE}:{NAME}"
ETLTASK_CRD = "etltasks.etl.kube-etl.io"


@pytest.fixture()
def namespaces(kube_api: client.ApiClient) -> Iterator[None]:
    core: Any = client.CoreV1Api(kube_api)
    for namespace in (NAMESPACE, *WATCHED):
        core.create_namespace({"metadata": {"name": namespace}})
    yield
    for namespace in (NAMESPACE, *WATCHED):
        core.delete_namespace(namespace)


def crd_names(kube_api: client.ApiClient) -> set[str]:
    extensions: Any = client.ApiextensionsV1Api(kube_api)
    return {crd.metadata.name for crd in extensions.list_custom_resource_definition().items}


def role_namespaces(kube_api: client.ApiClient) -> set[str]:
    rbac: Any = client.RbacAuthorizationV1Api(kube_api)
    roles = rbac.list_role_for_all_namespaces(field_selector=f"metadata.name={NAME}").items
    return {role.metadata.namespace for role in roles}


def operator_args(kube_api: client.ApiClient) -> list[str]:
    apps: Any = client.AppsV1Api(kube_api)
    deployment = apps.read_namespaced_deployment(NAME, NAMESPACE)
    args: list[str] = deployment.spec.template.spec.containers[0].args
    return args


def test_namespaced_release_lifecycle_keeps_crds(
    tools: Tools, kubeconfig: Path, kube_api: client.ApiClient, namespaces: None
) -> None:
    common = [
        "--namespace",
        NAMESPACE,
        "--set",
        "taskDatabase.url=postgresql+psycopg://u:p@db.example/kube_etl",
    ]

    tools.helm(
        "install",
        RELEASE,
        str(CHART_DIR),
        *common,
        "--set",
        "rbac.scope=namespaced",
        "--set",
        f"rbac.watchNamespaces={{{WATCHED[0]}}}",
        kubeconfig=kubeconfig,
    )
    assert ETLTASK_CRD in crd_names(kube_api)
    assert role_namespaces(kube_api) == {WATCHED[0]}
    assert f"--namespace={WATCHED[0]}" in operator_args(kube_api)
    assert rules_of(kube_api, OPERATOR_USER, WATCHED[0]) - SELF_REVIEW_RULES == namespace_rules()
    # A namespaced operator may do nothing outside its namespaces, not even read namespaces or CRDs.
    assert rules_of(kube_api, OPERATOR_USER, WATCHED[1]) == SELF_REVIEW_RULES
    with pytest.raises(ApiException):
        client.RbacAuthorizationV1Api(kube_api).read_cluster_role(NAME)

    tools.helm(
        "upgrade",
        RELEASE,
        str(CHART_DIR),
        *common,
        "--reuse-values",
        "--set",
        f"rbac.watchNamespaces={{{','.join(WATCHED)}}}",
        kubeconfig=kubeconfig,
    )
    assert role_namespaces(kube_api) == set(WATCHED)
    assert {f"--namespace={namespace}" for namespace in WATCHED} <= set(operator_args(kube_api))
    assert rules_of(kube_api, OPERATOR_USER, WATCHED[1]) - SELF_REVIEW_RULES == namespace_rules()
    history = tools.helm("history", RELEASE, "--namespace", NAMESPACE, kubeconfig=kubeconfig).stdout
    assert len(history.strip().splitlines()) == 3  # a header and two revisions

    tools.helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", kubeconfig=kubeconfig)
    assert role_namespaces(kube_api) == set()
    with pytest.raises(ApiException):
        client.AppsV1Api(kube_api).read_namespaced_deployment(NAME, NAMESPACE)
    # Helm never deletes what it installed from the chart's crds/ folder: ETLTasks survive an uninstall.
    assert ETLTASK_CRD in crd_names(kube_api)


def secret_text(kube_api: client.ApiClient, namespace: str, name: str, key: str) -> str:
    core: Any = client.CoreV1Api(kube_api)
    secret = core.read_namespaced_secret(name, namespace)
    return base64.b64decode(secret.data[key]).decode()


def test_postgres_password_survives_upgrade(
    tools: Tools, kubeconfig: Path, kube_api: client.ApiClient
) -> None:
    namespace = "kube-etl-first-try"
    core: Any = client.CoreV1Api(kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    chart = [str(CHART_DIR), "--namespace", namespace, "--set", "postgresql.enabled=true"]
    try:
        tools.helm("install", "first-try", *chart, kubeconfig=kubeconfig)
        password = secret_text(kube_api, namespace, "first-try-kube-etl-postgresql", "password")
        url = secret_text(kube_api, namespace, "first-try-kube-etl-database", "url")

        tools.helm(
            "upgrade", "first-try", *chart, "--set", "jobs.maxConcurrentTasks=2", kubeconfig=kubeconfig
        )
        assert secret_text(kube_api, namespace, "first-try-kube-etl-postgresql", "password") == password
        assert secret_text(kube_api, namespace, "first-try-kube-etl-database", "url") == url
        assert f":{password}@first-try-kube-etl-postgresql.{namespace}.svc:5432/" in url

        tools.helm("uninstall", "first-try", "--namespace", namespace, "--wait", kubeconfig=kubeconfig)
        # The data volume outlives the release, so the password it was created with stays too.
        assert secret_text(kube_api, namespace, "first-try-kube-etl-postgresql", "password") == password
        with pytest.raises(ApiException):
            core.read_namespaced_secret("first-try-kube-etl-database", namespace)
    finally:
        core.delete_namespace(namespace)
