#!/usr/bin/env bash
# Renders every deployable variant of deploy/k8s offline, one YAML stream per variant:
#
#   bash tools/deploy/render.sh [OUT_DIR]        OUT_DIR defaults to dist/k8s (gitignored)
#
# A variant is an overlay (local-cpu, gpu) alone or with components (tracing, lm-on-gpu, learn-as-jobs, object-store),
# plus the data-loader pod; the list is VARIANTS below. Components are added the way a user adds them: a small
# kustomization with the overlay as its resource, the components, and the namespace (README "Deploy on Kubernetes");
# with object-store, also the Secret `object-store` from an env file (here its example, placeholders only), by the
# secretGenerator its README gives.
# Writes OUT_DIR/<variant>.yaml and prints those paths on stdout, one per line; progress goes to stderr.
# Fails if kustomize fails or prints anything on stderr (deprecations included), so a warning cannot slip into CI.
#
# kustomize is pinned (KUSTOMIZE_VERSION) and installed on first use with `go install` through the Go module proxy
# (one to two minutes on two cores, once), into a cache outside the clone:
#   ${ALIGNMENT_TOOLS_DIR:-$HOME/.cache/alignment/tools}/kustomize-<version>/kustomize
# Concurrent callers serialise on a flock; a finished install is reused without it.
# Environment: KUSTOMIZE (a kustomize binary to use instead; it must report KUSTOMIZE_VERSION), ALIGNMENT_TOOLS_DIR.
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.2
NAMESPACE=alignment

# name|overlay|components (comma-separated; empty = none). "+" joins the parts of a name.
VARIANTS=(
  "local-cpu|local-cpu|"
  "local-cpu+tracing|local-cpu|tracing"
  "gpu|gpu|"
  "gpu+tracing|gpu|tracing"
  "gpu+lm-on-gpu|gpu|lm-on-gpu"
  "gpu+tracing+lm-on-gpu|gpu|tracing,lm-on-gpu"
  "gpu+learn-as-jobs|gpu|learn-as-jobs"
  "gpu+tracing+learn-as-jobs|gpu|tracing,learn-as-jobs"
  "local-cpu+object-store|local-cpu|object-store"
  "gpu+object-store|gpu|object-store"
  "gpu+learn-as-jobs+object-store|gpu|learn-as-jobs,object-store"
)

log() { printf 'render.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

root=$(cd "$(dirname "$0")/../.." && pwd)
k8s="$root/deploy/k8s"
out=${1:-$root/dist/k8s}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# --- kustomize, pinned -------------------------------------------------------------------------------------------
version_of() { "$1" version 2>/dev/null | head -n1; }

install_kustomize() {
  local dir=${ALIGNMENT_TOOLS_DIR:-$HOME/.cache/alignment/tools}/kustomize-$KUSTOMIZE_VERSION
  local bin=$dir/kustomize
  if [ -x "$bin" ] && [ "$(version_of "$bin")" = "$KUSTOMIZE_VERSION" ]; then
    printf '%s\n' "$bin"
    return
  fi
  command -v go >/dev/null 2>&1 || die "kustomize $KUSTOMIZE_VERSION is not installed and go is not on PATH to install it"
  mkdir -p "$dir"
  exec 8>"$dir.lock"
  flock 8
  if ! { [ -x "$bin" ] && [ "$(version_of "$bin")" = "$KUSTOMIZE_VERSION" ]; }; then
    log "installing kustomize $KUSTOMIZE_VERSION into $dir (go install; once)"
    # Built into a temp GOBIN and moved into place, so a killed build never leaves a half-written binary.
    local tmp
    tmp=$(mktemp -d "$dir/.gobin.XXXXXX")
    GOBIN=$tmp GOFLAGS=-buildvcs=false go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
    mv "$tmp/kustomize" "$bin"
    rm -rf "$tmp"
  fi
  exec 8>&-
  printf '%s\n' "$bin"
}

if [ -n "${KUSTOMIZE:-}" ]; then
  kustomize=$KUSTOMIZE
  [ "$(version_of "$kustomize")" = "$KUSTOMIZE_VERSION" ] ||
    die "KUSTOMIZE=$kustomize reports '$(version_of "$kustomize")', expected $KUSTOMIZE_VERSION"
else
  kustomize=$(install_kustomize)
fi

# --- render ------------------------------------------------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # build NAME DIR: kustomize DIR into OUT/NAME.yaml; any stderr output is an error
  local name=$1 dir=$2
  if ! "$kustomize" build "$dir" > "$work/$name.yaml" 2> "$work/$name.err" || [ -s "$work/$name.err" ]; then
    cat "$work/$name.err" >&2
    die "kustomize build failed or warned for variant $name ($dir)"
  fi
  [ -s "$work/$name.yaml" ] || die "variant $name rendered nothing"
  mv "$work/$name.yaml" "$out/$name.yaml"
  printf '%s\n' "$out/$name.yaml"
}

for variant in "${VARIANTS[@]}"; do
  IFS='|' read -r name overlay components <<< "$variant"
  [ -d "$k8s/overlays/$overlay" ] || die "no overlay $overlay"
  if [ -z "$components" ]; then
    build "$name" "$k8s/overlays/$overlay"
    continue
  fi
  dir="$work/$name"
  mkdir -p "$dir"
  {
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: %s\n' "$NAMESPACE"
    printf 'resources:\n  - %s\n' "$(realpath --relative-to="$dir" "$k8s/overlays/$overlay")"
    printf 'components:\n'
    IFS=',' read -ra parts <<< "$components"
    for component in "${parts[@]}"; do
      [ -d "$k8s/components/$component" ] || die "no component $component"
      printf '  - %s\n' "$(realpath --relative-to="$dir" "$k8s/components/$component")"
    done
    if [[ ",$components," == *,object-store,* ]]; then
      cp "$k8s/components/object-store/object-store.env.example" "$dir/object-store.env"
      printf 'secretGenerator:\n  - name: object-store\n    envs:\n      - object-store.env\n'
      printf '    options:\n      disableNameSuffixHash: true\n'
    fi
  } > "$dir/kustomization.yaml"
  build "$name" "$dir"
done
build data-loader "$k8s/data-loader"
log "rendered ${#VARIANTS[@]} variants and the data loader into $out with kustomize $KUSTOMIZE_VERSION"
