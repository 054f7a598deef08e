#!/usr/bin/env bash
# Obtains what the local stack runs, into the cache folder ${COMPLAINTS_CACHE:-<repo>/.cache}:
#   <cache>/kafka/libs/*.jar   Apache Kafka (KRaft broker) + log4j2, resolved from Maven Central
#   <cache>/bin/ferretdb       FerretDB v1 (MongoDB wire protocol on SQLite), built from the Go proxy
# Idempotent: each part has a stamp file and is skipped when the stamp matches the pinned version.
# Safe to run concurrently (e.g. `make up` and `make test` at once): serialised by a lock file.
set -euo pipefail

FERRETDB_VERSION=v1.24.2
FERRETDB_MODULE=github.com/FerretDB/FerretDB
# Our patch level of that build (bump it when the patch below changes: cached binaries rebuild).
FERRETDB_BUILD="$FERRETDB_VERSION+id-index-1+update-reads-first-2+no-resource-tracking-1"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${COMPLAINTS_CACHE:-$REPO/.cache}
POM=$HERE/kafka/pom.xml

log() { printf 'fetch: %s\n' "$*" >&2; }
die() { printf 'fetch: ERROR: %s\n' "$*" >&2; exit 1; }

# --- tools --------------------------------------------------------------------------------
missing=()
command -v java >/dev/null 2>&1 || missing+=("java  (Debian: apt-get install -y openjdk-17-jre-headless)")
command -v mvn  >/dev/null 2>&1 || missing+=("mvn   (Debian: apt-get install -y maven)")
command -v go   >/dev/null 2>&1 || missing+=("go    (Go >= 1.21; Debian: apt-get install -y golang-go, or a toolchain from go.dev)")
if ((${#missing[@]})); then
  printf 'fetch: ERROR: missing tool(s) needed to fetch the local stack:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
go_minor=$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [[ -z $go_minor || $go_minor -lt 21 ]]; then
  die "go $(go env GOVERSION 2>/dev/null || echo '?') is too old: FerretDB $FERRETDB_VERSION needs Go >= 1.24 (Go >= 1.21 can switch toolchains by itself)"
fi
if ((go_minor < 24)); then
  export GOTOOLCHAIN=go1.24.3+auto   # FerretDB's go.mod asks for 1.24; fetched as a Go module
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.fetch.lock"
flock 9

# --- Kafka jars ---------------------------------------------------------------------------
kafka_dir=$CACHE/kafka
kafka_stamp=$kafka_dir/libs.stamp
kafka_want="pom-sha256=$(sha256sum "$POM" | cut -d' ' -f1)"
if [[ -f $kafka_stamp && "$(cat "$kafka_stamp")" == "$kafka_want" ]] && compgen -G "$kafka_dir/libs/kafka_2.13-*.jar" >/dev/null; then
  log "kafka jars up to date ($kafka_dir/libs)"
else
  log "resolving Kafka jars from Maven Central into $kafka_dir/libs ..."
  t0=$SECONDS
  rm -rf "$kafka_dir/libs.tmp"
  mkdir -p "$kafka_dir"
  mvn -q -B -f "$POM" dependency:copy-dependencies \
      -DoutputDirectory="$kafka_dir/libs.tmp" -DincludeScope=runtime 2>&1 \
    | sed -e $'s/\x1b\\[[0-9;]*m//g' >&2 \
    || die "mvn could not resolve the Kafka jars (see the output above; is Maven Central reachable?)"
  rm -rf "$kafka_dir/libs"
  mv "$kafka_dir/libs.tmp" "$kafka_dir/libs"
  printf '%s\n' "$kafka_want" >"$kafka_stamp"
  log "kafka jars ready ($((SECONDS - t0)) s)"
fi

# --- FerretDB binary ----------------------------------------------------------------------
bin_dir=$CACHE/bin
ferret_bin=$bin_dir/ferretdb
ferret_stamp=$bin_dir/ferretdb.stamp
if [[ -x $ferret_bin && -f $ferret_stamp && "$(cat "$ferret_stamp")" == "$FERRETDB_BUILD" ]]; then
  log "ferretdb $FERRETDB_BUILD up to date ($ferret_bin)"
else
  # `go install ...@version` builds a binary that panics at start (its generated
  # build/version/version.txt is not in the module), so build from the module with it written.
  log "building FerretDB $FERRETDB_VERSION from the Go module proxy (about 75 s cold) ..."
  t0=$SECONDS
  mod_json=$(go mod download -json "$FERRETDB_MODULE@$FERRETDB_VERSION") \
    || die "go mod download $FERRETDB_MODULE@$FERRETDB_VERSION failed: $mod_json"
  src=$(printf '%s' "$mod_json" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  work=$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-build.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  printf '%s\n' "$FERRETDB_VERSION" >"$work/build/version/version.txt"
  # Patch: FerretDB 1.24's SQLite backend creates the _id index on `_ferretdb_sjson->"_id"` but
  # queries `_ferretdb_sjson->'$._id'`; SQLite matches index expressions by their text, so every
  # lookup by _id scanned the table (30 ms at 10,000 documents). Query with the indexed
  # expression: both denote the same JSON value; lookups become 0.5 ms at any size.
  meta=$work/internal/backends/sqlite/metadata/metadata.go
  grep -q "IDColumn = DefaultColumn + \"->'\$._id'\"" "$meta" \
    || die "FerretDB source changed: the _id index patch no longer applies to $meta"
  sed -i "s|IDColumn = DefaultColumn + \"->'\$._id'\"|IDColumn = DefaultColumn + \`->\"_id\"\`|" "$meta"
  # Patch: an update holds its query's SQLite result set (one of the database's 100 pooled
  # connections) while it writes in a transaction (a second one). 100 updates at once on one
  # database each held one and waited for another, for ever: the database answered nothing until
  # FerretDB restarted (goroutine dump, docs/adr/0038). Read the matching documents first, so the
  # query's connection is back in the pool before the write takes one.
  upd=$work/internal/handler/msg_update.go
  grep -q 'result, err := common.UpdateDocument(ctx, c, "update", iter, &u)' "$upd" \
    || die "FerretDB source changed: the update patch no longer applies to $upd"
  perl -0pi -e 's|(\t\tresult, err := common.UpdateDocument\(ctx, c, "update", iter, &u\))|\t\tdocs, err := iterator.ConsumeValues[struct{}, *types.Document](iter)\n\t\tif err != nil {\n\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n\t\t}\n\n\t\titer = iterator.Values(iterator.ForSlice(docs))\n\t\tcloser.Add(iter)\n\n$1|' "$upd"
  # Patch: every iterator, transaction and result set FerretDB opens is "tracked" for leak
  # reports: an entry in a pprof profile with its stack (runtime.Callers) and a finalizer. A
  # few of them a command: 8.5 % of FerretDB's CPU in a burst (pprof, docs/adr/0044). Keep the
  # tracking for debug builds only, as FerretDB does with the stacks it records.
  res=$work/internal/util/resource/resource.go
  [[ $(grep -c $'^\tcheckArgs(obj, token)$' "$res") == 2 ]] \
    || die "FerretDB source changed: the resource-tracking patch no longer applies to $res"
  perl -0pi -e 's|(\tcheckArgs\(obj, token\)\n)|$1\n\tif !debugbuild.Enabled {\n\t\treturn\n\t}\n|g' "$res"
  mkdir -p "$bin_dir"
  (cd "$work" && GOFLAGS="${GOFLAGS:-} -mod=mod" go build -o "$ferret_bin.tmp" ./cmd/ferretdb) \
    || die "go build of FerretDB failed (see the output above)"
  mv "$ferret_bin.tmp" "$ferret_bin"
  "$ferret_bin" --version >/dev/null 2>&1 || die "the built $ferret_bin does not run (try: $ferret_bin --version)"
  printf '%s\n' "$FERRETDB_BUILD" >"$ferret_stamp"
  rm -rf "$work"
  trap - EXIT
  log "ferretdb ready ($((SECONDS - t0)) s)"
fi
