#!/usr/bin/env bash
# Build the local control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl)
# and helm from the Go module proxy into a cache outside the repository, keyed by version.
#
# A second run only checks that the binaries exist. Prints the bin directory on its last line.
#
# k8s.io/kubernetes pins its staging modules (k8s.io/api, k8s.io/apiserver, ...) to v0.0.0 through
# `replace` directives that only work inside its own source tree, so `go install` cannot build it.
# Instead we generate a small wrapper module that requires the release and replaces every staging
# module with its published v0.MINOR.PATCH. etcd's server module is built the same way.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
HELM_VERSION="${HELM_VERSION:-v4.3.2}"
CACHE_DIR="${KUBE_ETL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kube-etl}"
BIN_DIR="$CACHE_DIR/bin/k8s-$KUBE_VERSION-etcd-$ETCD_VERSION-helm-$HELM_VERSION"
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl helm)

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--mod=mod}" GOTOOLCHAIN="${GOTOOLCHAIN:-local}"

log() { printf 'build-control-plane: %s\n' "$*" >&2; }

all_built() {
  local name
  for name in "${BINARIES[@]}"; do
    [[ -x "$BIN_DIR/$name" ]] || return 1
  done
}

# Print the modules that a go.mod replaces with folders of its own source tree, one a line. etcd also
# replaces a few paths with ./FORBIDDEN_DEPENDENCY to catch bad imports; those are not modules to build.
local_replacements() {
  local gomod="$1"
  awk '/=>[[:space:]]*\.\.?\// && !/FORBIDDEN_DEPENDENCY/ { for (i = 1; i <= NF; i++) if ($i ~ /^[a-z0-9.-]+\.[a-z]+\//) { print $i; break } }' "$gomod"
}

# Create a wrapper module in $1 that requires $2@$3 and replaces its in-tree modules with version $4.
make_wrapper() {
  local dir="$1" module="$2" version="$3" replacement_version="$4" gomod staged
  rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
  go mod init kube-etl.local/build-wrapper >/dev/null 2>&1
  gomod="$(go mod download -json "$module@$version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  for staged in $(local_replacements "$gomod"); do
    [[ "$staged" == "$module" ]] && continue
    go mod edit -replace="$staged=$staged@$replacement_version"
  done
  local godebug
  godebug="$(awk '$1 == "godebug" && NF == 2 { print $2 }' "$gomod" | head -n 1)"
  if [[ -n "$godebug" ]]; then
    go mod edit -godebug="$godebug"
  fi
  go mod edit -require="$module@$version"
}

build_kubernetes() {
  local minor_patch="${KUBE_VERSION#v1.}" dir="$CACHE_DIR/src/kubernetes-$KUBE_VERSION"
  local major=1 minor="${minor_patch%%.*}"
  log "building Kubernetes $KUBE_VERSION (first build takes a while on 2 cores)"
  make_wrapper "$dir" k8s.io/kubernetes "$KUBE_VERSION" "v0.$minor_patch"
  local commands=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
  local packages=() name
  for name in "${commands[@]}"; do packages+=("k8s.io/kubernetes/cmd/$name"); done
  cat > tools.go <<'GO'
//go:build tools

package tools
GO
  go get "${packages[@]/%/@$KUBE_VERSION}" >&2
  local pkg=k8s.io/component-base/version
  local ldflags="-s -w -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitCommit=0000000000000000000000000000000000000000 -X $pkg.gitTreeState=clean"
  ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
  mkdir -p "$BIN_DIR"
  for name in "${commands[@]}"; do
    if [[ ! -x "$BIN_DIR/$name" ]]; then
      log "go build $name"
      go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$name.tmp" "k8s.io/kubernetes/cmd/$name"
      mv "$BIN_DIR/$name.tmp" "$BIN_DIR/$name"
    fi
  done
}

build_etcd() {
  local dir="$CACHE_DIR/src/etcd-$ETCD_VERSION"
  log "building etcd $ETCD_VERSION"
  make_wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" "$ETCD_VERSION"
  go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >&2
  mkdir -p "$BIN_DIR"
  go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_helm() {
  log "building helm $HELM_VERSION"
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}

main() {
  if ! command -v go >/dev/null; then
    log "go not found on PATH: install Go 1.24 or later, then run this again"
    exit 1
  fi
  if ! all_built; then
    [[ -x "$BIN_DIR/etcd" ]] || (build_etcd)
    [[ -x "$BIN_DIR/helm" ]] || (build_helm)
    (build_kubernetes)
  fi
  all_built || { log "some binaries are missing from $BIN_DIR"; exit 1; }
  printf '%s\n' "$BIN_DIR"
}

main "$@"
