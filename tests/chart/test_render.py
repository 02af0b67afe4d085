"""What `helm template` renders over the values matrix, and the values that the chart rejects."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import pytest

from .support import (
    CHART_DIR,
    RELEASE_NAMESPACE,
    VALUES_FILES,
    Tools,
    cluster_rules,
    environment_of,
    find,
    lease_rules,
    namespace_rules,
    operator_container,
    render,
    render_text,
    rule_set,
    the_one,
    values_arguments,
)

OPERATOR = "kube-etl-operator"
URL = "postgresql+psycopg://kube_etl:change-me@db.example:5432/kube_etl"


def decoded(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def all_containers(manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Return (workload name, pod spec, container) for every container of every workload."""
    found = []
    for manifest in manifests:
        if manifest["kind"] in ("Deployment", "StatefulSet"):
            pod = manifest["spec"]["template"]["spec"]
            for container in pod.get("initContainers", []) + pod["containers"]:
                found.append((manifest["metadata"]["name"], pod, container))
    return found


# Values that the schema must reject, each with a part of the expected message.
REJECTED_VALUES = {
    "misspelt top-level key": ({"taskDatabse.url": URL}, "taskDatabse"),
    "misspelt nested key": ({"taskDatabase.url": URL, "operator.replicas": "1"}, "replicas"),
    "eleven replicas": ({"taskDatabase.url": URL, "operator.replicaCount": "11"}, "replicaCount"),
    "unknown scope": ({"taskDatabase.url": URL, "rbac.scope": "namespace"}, "scope"),
    "namespaced without namespaces": (
        {"taskDatabase.url": URL, "rbac.scope": "namespaced"},
        "watchNamespaces",
    ),
    "cluster scope with namespaces": (
        {"taskDatabase.url": URL, "rbac.watchNamespaces": "{a}"},
        "watchNamespaces",
    ),
    "invalid namespace name": ({"taskDatabase.url": URL, "jobs.namespaces": "{Not_Valid}"}, "namespaces"),
    "unknown pull policy": ({"taskDatabase.url": URL, "image.pullPolicy": "Sometimes"}, "pullPolicy"),
}


@pytest.mark.parametrize("settings,fragment", REJECTED_VALUES.values(), ids=REJECTED_VALUES.keys())
def test_schema_rejects_invalid_values(tools: Tools, settings: dict[str, str], fragment: str) -> None:
    result = render_text(tools, settings=settings, check=False)

    assert result.returncode != 0
    assert "schema" in result.stderr
    assert fragment in result.stderr


def test_missing_database_fails_naming_values(tools: Tools) -> None:
    result = render_text(tools, check=False)

    assert result.returncode != 0
    assert "kube-etl needs a task database" in result.stderr
    assert "postgresql.enabled=true" in result.stderr


def test_two_databases_fail_naming_both(tools: Tools) -> None:
    result = render_text(tools, settings={"taskDatabase.url": URL, "postgresql.enabled": "true"}, check=False)

    assert result.returncode != 0
    assert "taskDatabase.url, postgresql.enabled are set" in result.stderr


def test_cluster_scope_grants_exact_cluster_role(tools: Tools) -> None:
    manifests = render(tools, ["cluster-url.yaml"])

    role = the_one(manifests, "ClusterRole", OPERATOR)
    binding = the_one(manifests, "ClusterRoleBinding", OPERATOR)
    assert rule_set(role["rules"]) == cluster_rules()
    assert binding["roleRef"]["name"] == OPERATOR
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR, "namespace": RELEASE_NAMESPACE}
    ]
    assert [role["metadata"]["name"] for role in find(manifests, "Role")] == [f"{OPERATOR}-leader-election"]
    assert "--namespace" not in " ".join(operator_container(the_one(manifests, "Deployment"))["args"])


def test_namespaced_scope_grants_role_per_namespace(tools: Tools) -> None:
    manifests = render(tools, ["namespaced.yaml"])

    roles = {role["metadata"]["namespace"]: role for role in find(manifests, "Role", OPERATOR)}
    bindings = {item["metadata"]["namespace"]: item for item in find(manifests, "RoleBinding", OPERATOR)}
    assert set(roles) == {"chart-watch-a", "chart-watch-b"}
    assert set(bindings) == {"chart-watch-a", "chart-watch-b"}
    for role in roles.values():
        assert rule_set(role["rules"]) == namespace_rules()
    for binding in bindings.values():
        assert binding["subjects"][0]["namespace"] == RELEASE_NAMESPACE
    assert find(manifests, "ClusterRole") == []
    args = operator_container(the_one(manifests, "Deployment"))["args"]
    assert "--namespace=chart-watch-a" in args
    assert "--namespace=chart-watch-b" in args


def test_operator_runs_with_leader_election_and_liveness(tools: Tools) -> None:
    manifests = render(tools, ["cluster-url.yaml"])
    deployment = the_one(manifests, "Deployment", OPERATOR)

    container = operator_container(deployment)
    assert container["command"] == ["etl-operator"]
    assert container["args"][:2] == [
        f"--leader-election={RELEASE_NAMESPACE}/{OPERATOR}",
        "--liveness=http://0.0.0.0:8080/healthz",
    ]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "probes"}
    assert container["ports"] == [{"name": "probes", "containerPort": 8080, "protocol": "TCP"}]
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    lease_role = the_one(manifests, "Role", f"{OPERATOR}-leader-election")
    assert lease_role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert rule_set(lease_role["rules"]) == lease_rules(OPERATOR)
    assert environment_of(container)["POD_NAME"] == {"fieldRef": {"fieldPath": "metadata.name"}}


def test_schema_migration_runs_before_operator(tools: Tools) -> None:
    deployment = the_one(render(tools, ["cluster-url.yaml"]), "Deployment", OPERATOR)

    (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert init["command"] == ["etl-runtime", "upgrade-db"]
    assert init["image"] == operator_container(deployment)["image"]
    assert environment_of(init)["KUBE_ETL_DATABASE_URL"] == {
        "secretKeyRef": {"name": "kube-etl-database", "key": "url"}
    }


def test_operator_settings_become_environment(tools: Tools) -> None:
    deployment = the_one(render(tools, ["postgresql.yaml"]), "Deployment", OPERATOR)

    environment = environment_of(operator_container(deployment))
    assert environment["KUBE_ETL_DATABASE_URL"] == {
        "secretKeyRef": {"name": "kube-etl-database", "key": "url"}
    }
    assert environment["KUBE_ETL_DATABASE_SECRET"] == "kube-etl-taskdb"
    assert environment["KUBE_ETL_DATABASE_SECRET_KEY"] == "url"
    assert environment["KUBE_ETL_DEFAULT_IMAGE"] == "kube-etl:0.1.0"
    assert environment["KUBE_ETL_IMAGE_PULL_POLICY"] == "IfNotPresent"
    assert environment["KUBE_ETL_POD_SERVICE_ACCOUNT"] == "kube-etl-job"
    assert environment["KUBE_ETL_MAX_CONCURRENT_TASKS"] == "4"
    assert environment["KUBE_ETL_SAFETY_INTERVAL_SECONDS"] == "60"
    assert environment["KUBE_ETL_WORKERS"] == "16"
    assert environment["KUBE_ETL_TERMINATION_GRACE_SECONDS"] == "30"
    assert environment["KUBE_ETL_NODE_LOST_SECONDS"] == "60"
    assert environment["KUBE_ETL_START_TIMEOUT_SECONDS"] == "600"
    assert environment["KUBE_ETL_RETENTION_DAYS"] == "0"
    assert "--verbose" in operator_container(deployment)["args"]


def test_existing_secret_feeds_operator(tools: Tools) -> None:
    manifests = render(tools, ["cluster-existing-secret.yaml"])

    environment = environment_of(operator_container(the_one(manifests, "Deployment", OPERATOR)))
    assert environment["KUBE_ETL_DATABASE_URL"] == {"secretKeyRef": {"name": "platform-taskdb", "key": "dsn"}}
    assert environment["KUBE_ETL_DEFAULT_IMAGE"] == "registry.example/warehouse-etl:1.4"
    # The chart cannot read the user's Secret, so it creates no copy of the URL anywhere.
    assert find(manifests, "Secret") == []


def test_job_secret_created_in_task_namespaces(tools: Tools) -> None:
    manifests = render(tools, ["namespaced.yaml"])

    operator_secret = the_one(manifests, "Secret", "kube-etl-database")
    job_secrets = find(manifests, "Secret", "kube-etl-taskdb")
    assert operator_secret["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert decoded(operator_secret, "url") == URL
    assert {secret["metadata"]["namespace"] for secret in job_secrets} == {
        "chart-watch-a",
        "chart-watch-b",
        "chart-jobs-a",
    }
    for secret in job_secrets:
        assert decoded(secret, "url") == URL


def test_job_account_has_no_token_and_no_role(tools: Tools) -> None:
    manifests = render(tools, ["namespaced.yaml"])

    accounts = find(manifests, "ServiceAccount", "kube-etl-job")
    assert {account["metadata"]["namespace"] for account in accounts} == {
        "chart-watch-a",
        "chart-watch-b",
        "chart-jobs-a",
    }
    for account in accounts:
        assert account["automountServiceAccountToken"] is False
    bindings = find(manifests, "RoleBinding") + find(manifests, "ClusterRoleBinding")
    subjects = [subject["name"] for binding in bindings for subject in binding["subjects"]]
    assert "kube-etl-job" not in subjects


def test_bundled_postgres_url_uses_generated_password(tools: Tools) -> None:
    manifests = render(tools, ["postgresql.yaml"])

    password = decoded(the_one(manifests, "Secret", "kube-etl-postgresql"), "password")
    url = urlsplit(decoded(the_one(manifests, "Secret", "kube-etl-database"), "url"))
    assert len(password) == 32
    assert url.scheme == "postgresql+psycopg"
    assert url.username == "kube_etl"
    assert url.password == password
    assert url.hostname == f"kube-etl-postgresql.{RELEASE_NAMESPACE}.svc"
    assert url.port == 5432
    assert url.path == "/kube_etl"
    job_secret = the_one(manifests, "Secret", "kube-etl-taskdb")
    assert decoded(job_secret, "url") == url.geturl()
    statefulset = the_one(manifests, "StatefulSet", "kube-etl-postgresql")
    assert statefulset["spec"]["template"]["spec"]["containers"][0]["image"] == "postgres:17.6-bookworm"
    the_one(manifests, "Service", "kube-etl-postgresql")


def test_optional_objects_switch_off(tools: Tools) -> None:
    manifests = render(tools, ["stopped.yaml"])

    deployment = the_one(manifests, "Deployment", OPERATOR)
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["replicas"] == 0
    assert pod["serviceAccountName"] == "platform-operator"
    assert pod["imagePullSecrets"] == [{"name": "registry-credentials"}]
    assert operator_container(deployment)["image"] == (
        "registry.example/kube-etl:0.1.0@sha256:" + "0123456789abcdef" * 4
    )
    assert "KUBE_ETL_POD_SERVICE_ACCOUNT" not in environment_of(operator_container(deployment))
    assert find(manifests, "ServiceAccount") == []
    assert find(manifests, "PodDisruptionBudget") == []
    assert find(manifests, "NetworkPolicy") == []
    assert [secret["metadata"]["name"] for secret in find(manifests, "Secret")] == ["kube-etl-database"]
    binding = the_one(manifests, "ClusterRoleBinding", OPERATOR)
    assert binding["subjects"][0]["name"] == "platform-operator"


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_containers_run_restricted(tools: Tools, values_file: str) -> None:
    containers = all_containers(render(tools, [values_file]))

    assert containers
    for workload, pod, container in containers:
        where = f"{workload}/{container['name']}"
        context = container["securityContext"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert context["runAsNonRoot"] is True, where
        assert context["readOnlyRootFilesystem"] is True, where
        assert context["allowPrivilegeEscalation"] is False, where
        assert context["capabilities"] == {"drop": ["ALL"]}, where
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert set(container["resources"]["requests"]) == {"cpu", "memory"}, where
        assert set(container["resources"]["limits"]) == {"cpu", "memory"}, where


def test_disruption_budget_and_network_policy_select_operator(tools: Tools) -> None:
    manifests = render(tools, ["cluster-url.yaml"])

    labels = the_one(manifests, "Deployment", OPERATOR)["spec"]["template"]["metadata"]["labels"]
    budget = the_one(manifests, "PodDisruptionBudget", OPERATOR)
    policy = the_one(manifests, "NetworkPolicy", OPERATOR)
    assert budget["spec"]["maxUnavailable"] == 1
    for selector in (budget["spec"]["selector"]["matchLabels"], policy["spec"]["podSelector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in policy["spec"]


@pytest.mark.parametrize("values_file", VALUES_FILES)
def test_resources_carry_chart_labels(tools: Tools, values_file: str) -> None:
    for manifest in render(tools, [values_file]):
        labels = manifest["metadata"]["labels"]
        where = f"{manifest['kind']}/{manifest['metadata']['name']}"
        assert labels["app.kubernetes.io/name"] == "kube-etl", where
        assert labels["app.kubernetes.io/instance"] == "kube-etl", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where


def notes(tools: Tools, values_file: str) -> str:
    """Return the notes that `helm install` prints, from a client-side dry run."""
    result = tools.helm(
        "install",
        "kube-etl",
        str(CHART_DIR),
        "--namespace",
        RELEASE_NAMESPACE,
        "--dry-run=client",
        *values_arguments([values_file]),
    )
    return result.stdout.split("NOTES:", 1)[1]


def test_notes_name_next_steps(tools: Tools) -> None:
    text = notes(tools, "cluster-url.yaml")

    assert "rollout status deployment/kube-etl-operator" in text
    assert "The chart created the Secret in: chart-jobs-a, chart-jobs-b." in text
    assert "kubectl --namespace NAMESPACE create secret generic kube-etl-taskdb" in text
    assert "kind: ETLTask" in text


def test_notes_say_when_operator_is_stopped(tools: Tools) -> None:
    text = notes(tools, "stopped.yaml")

    assert "The operator is stopped (operator.replicaCount=0)" in text
    assert "rollout status" not in text
