#!/usr/bin/env bash
# Install the Debian packages that the local cluster needs and the machine lacks: PostgreSQL for the
# task database and the demo warehouse. Does nothing when they are there already.
set -euo pipefail

log() { printf 'install-system-packages: %s\n' "$*" >&2; }

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)

if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ "$(id -u)" != 0 ]]; then
  command -v sudo >/dev/null || { log "need root or sudo to install: ${missing[*]}"; exit 1; }
  sudo=(sudo)
fi
log "installing ${missing[*]} with apt-get"
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian starts a cluster of its own on port 5432; the local cluster runs its own throwaway one instead.
if command -v pg_lsclusters >/dev/null; then
  pg_lsclusters --no-header 2>/dev/null | while read -r version name _; do
    "${sudo[@]}" pg_ctlcluster "$version" "$name" stop 2>/dev/null || true
  done
fi
