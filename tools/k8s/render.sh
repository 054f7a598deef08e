#!/usr/bin/env bash
# Render the Kubernetes manifests (infra/k8s) with Kustomize, installing it first if needed.
#
#   tools/k8s/render.sh                  every overlay (local, production), each after "---" and "# overlay: NAME"
#   tools/k8s/render.sh production       one overlay, ready for `kubectl apply -f -`
#   tools/k8s/render.sh path/to/dir      any kustomization directory (e.g. tools/k8s/broken)
#   tools/k8s/render.sh --install        only make sure the binary exists; prints its path
#
# Kustomize is built from the Go module proxy into the git-ignored .cache/bin (no download from a
# vendor's site is possible on these machines); an existing binary of the pinned version is reused.
set -euo pipefail

KUSTOMIZE_VERSION=v5.8.1   # its go.mod needs Go >= 1.24
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${COMPLAINTS_CACHE:-$ROOT/.cache}"
BIN="$CACHE/bin"
KUSTOMIZE="$BIN/kustomize"
OVERLAYS="$ROOT/infra/k8s/overlays"

install_kustomize() {
  if [[ -x "$KUSTOMIZE" ]] && "$KUSTOMIZE" version 2>/dev/null | grep -qx "$KUSTOMIZE_VERSION"; then
    return 0
  fi
  if ! command -v go >/dev/null 2>&1; then
    echo "render.sh: 'go' is not installed; it is needed once to build kustomize $KUSTOMIZE_VERSION" >&2
    exit 3
  fi
  mkdir -p "$BIN"
  echo "render.sh: installing kustomize $KUSTOMIZE_VERSION into $BIN (go install, about a minute cold)" >&2
  # Take a lock so that parallel callers (e.g. tests) build it once.
  exec 9>"$BIN/.kustomize.lock"
  flock 9
  if ! { [[ -x "$KUSTOMIZE" ]] && "$KUSTOMIZE" version 2>/dev/null | grep -qx "$KUSTOMIZE_VERSION"; }; then
    GOBIN="$BIN" go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  fi
  flock -u 9
}

render() {  # $1: an overlay name or a directory
  local dir="$1"
  [[ -d "$dir" ]] || dir="$OVERLAYS/$1"
  if [[ ! -f "$dir/kustomization.yaml" ]]; then
    echo "render.sh: no overlay or kustomization directory '$1' (overlays: $(ls "$OVERLAYS" | tr '\n' ' '))" >&2
    exit 2
  fi
  "$KUSTOMIZE" build "$dir"
}

install_kustomize
if [[ "${1:-}" == --install ]]; then
  echo "$KUSTOMIZE"
  exit 0
fi
targets=("$@")
if ((${#targets[@]} == 0)); then
  for overlay in "$OVERLAYS"/*/; do targets+=("$(basename "$overlay")"); done
fi
if ((${#targets[@]} == 1)); then
  render "${targets[0]}"
else
  for target in "${targets[@]}"; do
    printf -- '---\n# overlay: %s\n' "$target"   # a document break, so the stream stays parseable
    render "$target"
  done
fi
