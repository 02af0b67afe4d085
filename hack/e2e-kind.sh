#!/usr/bin/env bash
# End-to-end test on kind: build the images, install the Helm chart with the bundled Postgres into a new
# kind cluster, run the integration suite against it, and delete the cluster.
#
# Needs Docker and kind; helm and kubectl come from hack/build-control-plane.sh. `make e2e-kind` runs it.
# The suite runs in its external-cluster mode (see tests/conftest.py): the chart's operator does the
# work, and the tests reach the database through a port-forward on 127.0.0.1.
#
# Settings (environment):
#   KIND_CLUSTER_NAME   name of the kind cluster (default kube-etl-e2e)
#   E2E_ARTIFACTS       folder for the kubeconfig, logs and, on failure, the cluster's state
#                       (default .state/e2e-kind)
#   E2E_DATABASE_PORT   local port of the database port-forward (default 15432)
#   E2E_KEEP_CLUSTER=1  keep the cluster after the run, to look around
#   E2E_PYTEST_ARGS     extra pytest arguments, such as "-k mutex"
set -euo pipefail
cd "$(dirname "$0")/.."

CLUSTER="${KIND_CLUSTER_NAME:-kube-etl-e2e}"
ARTIFACTS="${E2E_ARTIFACTS:-.state/e2e-kind}"
DATABASE_PORT="${E2E_DATABASE_PORT:-15432}"
NAMESPACE=kube-etl
RELEASE=kube-etl
VALUES=tests/chart/values/e2e-kind.yaml
# The image names and tags that the values file expects.
OPERATOR_IMAGE=kube-etl:e2e
WAREHOUSE_IMAGE=kube-etl-warehouse:e2e
TESTS_IMAGE=kube-etl-tests:e2e

log() { printf 'e2e-kind: %s\n' "$*" >&2; }
die() {
  log "$*"
  exit 1
}

# Fail before any slow step when a tool is missing.
command -v docker >/dev/null || die "docker not found on PATH: install Docker; this test builds images and runs kind in it"
command -v kind >/dev/null || die "kind not found on PATH: install kind, which runs Kubernetes nodes as Docker containers"
docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable ('docker info' failed): start it, or run this where Docker runs"
[[ -x .venv/bin/pytest ]] || die ".venv/bin/pytest not found: run 'make e2e-kind', which creates the virtualenv first"

BIN_DIR="$(hack/build-control-plane.sh | tail -n 1)"
KUBECTL="$BIN_DIR/kubectl"
HELM="$BIN_DIR/helm"
mkdir -p "$ARTIFACTS"
ARTIFACTS="$(cd "$ARTIFACTS" && pwd)"
KUBECONFIG_PATH="$ARTIFACTS/kubeconfig"
export KUBECONFIG="$KUBECONFIG_PATH"
PORT_FORWARD_PID=""

collect_logs() {
  log "collecting the cluster's state into $ARTIFACTS"
  "$KUBECTL" get all,etltasks,events --all-namespaces -o wide >"$ARTIFACTS/objects.txt" 2>&1 || true
  "$KUBECTL" --namespace "$NAMESPACE" describe pods >"$ARTIFACTS/describe-pods.txt" 2>&1 || true
  "$KUBECTL" --namespace "$NAMESPACE" logs deployment/kube-etl-operator --all-containers --prefix \
    >"$ARTIFACTS/operator.log" 2>&1 || true
  "$KUBECTL" --namespace "$NAMESPACE" logs statefulset/kube-etl-postgresql >"$ARTIFACTS/postgresql.log" 2>&1 || true
  kind export logs "$ARTIFACTS/kind-logs" --name "$CLUSTER" >/dev/null 2>&1 || true
}

finish() {
  local status=$?
  if [[ -n "$PORT_FORWARD_PID" ]]; then
    kill "$PORT_FORWARD_PID" 2>/dev/null || true
  fi
  if ((status != 0)); then
    collect_logs
    log "failed with exit code $status; logs are in $ARTIFACTS"
  fi
  if [[ "${E2E_KEEP_CLUSTER:-0}" == 1 ]]; then
    log "keeping kind cluster $CLUSTER; KUBECONFIG=$KUBECONFIG_PATH"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  fi
  exit "$status"
}

if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  die "kind cluster $CLUSTER exists already: delete it with 'kind delete cluster --name $CLUSTER', or set KIND_CLUSTER_NAME"
fi
trap finish EXIT
log "creating kind cluster $CLUSTER"
kind create cluster --name "$CLUSTER" --kubeconfig "$KUBECONFIG_PATH" --wait 180s

log "building the images"
docker build --tag "$OPERATOR_IMAGE" --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" .
docker build --tag "$WAREHOUSE_IMAGE" --file examples/Dockerfile --build-arg BASE_IMAGE="$OPERATOR_IMAGE" .
# The suite's task classes (tests.jobs) on top of the demo warehouse jobs that some tests run.
docker build --tag "$TESTS_IMAGE" --file - . <<EOF
FROM $WAREHOUSE_IMAGE
COPY tests/__init__.py tests/jobs.py /opt/kube-etl-jobs/tests/
EOF
kind load docker-image --name "$CLUSTER" "$OPERATOR_IMAGE" "$TESTS_IMAGE"

log "installing the chart"
"$KUBECTL" create namespace "$NAMESPACE"
"$HELM" install "$RELEASE" charts/kube-etl --namespace "$NAMESPACE" --values "$VALUES" --wait --timeout 10m
"$KUBECTL" --namespace "$NAMESPACE" rollout status statefulset/kube-etl-postgresql --timeout 5m
"$KUBECTL" --namespace "$NAMESPACE" rollout status deployment/kube-etl-operator --timeout 5m

# Pods reach the database by its Service name; the tests reach it through a port-forward.
POD_DATABASE_URL="$("$KUBECTL" --namespace "$NAMESPACE" get secret kube-etl-database -o jsonpath='{.data.url}' | base64 -d)"
PASSWORD="$("$KUBECTL" --namespace "$NAMESPACE" get secret kube-etl-postgresql -o jsonpath='{.data.password}' | base64 -d)"
TEST_DATABASE_URL="postgresql+psycopg://kube_etl:${PASSWORD}@127.0.0.1:${DATABASE_PORT}/kube_etl"

log "forwarding 127.0.0.1:$DATABASE_PORT to the database"
"$KUBECTL" --namespace "$NAMESPACE" port-forward --address 127.0.0.1 service/kube-etl-postgresql \
  "$DATABASE_PORT:5432" >"$ARTIFACTS/port-forward.log" 2>&1 &
PORT_FORWARD_PID=$!
for _ in $(seq 1 60); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$DATABASE_PORT") 2>/dev/null; then
    break
  fi
  sleep 0.5
done
(exec 3<>"/dev/tcp/127.0.0.1/$DATABASE_PORT") 2>/dev/null || die "the port-forward to the database did not open within 30 s"

log "running the integration suite against the cluster"
# shellcheck disable=SC2086  # E2E_PYTEST_ARGS is a list of arguments
KUBE_ETL_TEST_KUBECONFIG="$KUBECONFIG_PATH" \
  KUBE_ETL_TEST_DATABASE_URL="$TEST_DATABASE_URL" \
  KUBE_ETL_TEST_POD_DATABASE_URL="$POD_DATABASE_URL" \
  KUBE_ETL_TEST_OPERATOR=external \
  .venv/bin/pytest -m integration tests/integration -p no:cacheprovider --junitxml="$ARTIFACTS/junit.xml" \
  ${E2E_PYTEST_ARGS:-}
log "passed"
