#!/usr/bin/env bash
# The local stack: a real Apache Kafka broker (single KRaft node) and FerretDB (MongoDB wire
# protocol on SQLite), on 127.0.0.1, each stack under its own name, ports and data folder.
#
#   stack.sh start  [--name up|test|...] [--kafka-port N] [--controller-port N] [--mongo-port N] [--fresh] [--auth]
#                   [--brokers 1|3]
#   stack.sh stop   [--name ...]
#   stack.sh status [--name ...]
#   stack.sh env    [--name ...]   prints the exports for clients (KAFKA_BOOTSTRAP_SERVERS, MONGODB_URL)
#
# --auth (or STACK_KAFKA_AUTH=1): Kafka with SASL/SCRAM-SHA-512 on its listener and ACLs (docs/adr/0021, issue 16):
# an `admin` super user (tests, tools) and one user per service with the ACLs of
# infra/k8s/kafka-users (infra/local/kafka_users.py); passwords in <dir>/kafka/credentials.env.
# A stack formatted with --auth keeps it. `env` then exports the admin's credentials.
# STACK_KAFKA_CREDENTIALS=<file>: take the passwords from another stack's credentials.env (a test's
# own broker then answers the same users as the shared one).
# --brokers 3 (or STACK_KAFKA_BROKERS=3): a KRaft cluster of three nodes (each broker + controller,
# the three controllers the quorum) as production runs it (docs/adr/0030): clients on --kafka-port
# and the next two ports, controllers on --controller-port (default: the port after the last
# client port) and the next two; new topics get 3 replicas and min.insync.replicas 2. A stack
# formatted as a cluster stays one (until --fresh); `env` then prints all three addresses.
#
# Defaults: --name up   -> kafka 9092 (controller 9093), mongo 27017
#           --name test -> kafka 29092 (controller 29093), mongo 29017
# Everything lives under <cache>/<name>/ (kafka/, ferretdb/, logs/, pids/), cache being
# ${COMPLAINTS_CACHE:-<repo>/.cache}. If MONGODB_URL is set, FerretDB is not started: that URL
# (a real mongod) is pinged instead. Processes are stopped only by the PIDs recorded here.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${COMPLAINTS_CACHE:-$REPO/.cache}
HEALTH_TIMEOUT=${STACK_HEALTH_TIMEOUT:-90}
STOP_TIMEOUT=15
TAIL_LINES=30
PROC_TAG=stack
# shellcheck source-path=SCRIPTDIR source=processes.sh
. "$HERE/processes.sh"   # say, err, port_open, port_free, live_pid, spawn, stop_pids, tail_log

usage() { sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

# --- arguments ----------------------------------------------------------------------------
CMD=${1:-}; [[ $# -gt 0 ]] && shift
case $CMD in start|stop|status|env) ;; -h|--help|help) usage 0 ;; *) NAME=? err "unknown command '${CMD}'"; usage ;; esac
NAME=up KAFKA_PORT= CONTROLLER_PORT= MONGO_PORT= FRESH=0 AUTH=${STACK_KAFKA_AUTH:-0} BROKERS=${STACK_KAFKA_BROKERS:-}
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    --name=*) NAME=${1#*=}; shift ;;
    --kafka-port) KAFKA_PORT=${2:?}; shift 2 ;;
    --kafka-port=*) KAFKA_PORT=${1#*=}; shift ;;
    --controller-port) CONTROLLER_PORT=${2:?}; shift 2 ;;
    --controller-port=*) CONTROLLER_PORT=${1#*=}; shift ;;
    --mongo-port) MONGO_PORT=${2:?}; shift 2 ;;
    --mongo-port=*) MONGO_PORT=${1#*=}; shift ;;
    --fresh) FRESH=1; shift ;;
    --auth) AUTH=1; shift ;;
    --brokers) BROKERS=${2:?--brokers needs a value}; shift 2 ;;
    --brokers=*) BROKERS=${1#*=}; shift ;;
    -h|--help) usage 0 ;;
    *) err "unknown option '$1'"; usage ;;
  esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || { err "--name must be letters, digits, - or _"; exit 2; }
case $NAME in
  test) : "${KAFKA_PORT:=29092}" "${MONGO_PORT:=29017}" ;;
  *)    : "${KAFKA_PORT:=9092}"  "${MONGO_PORT:=27017}" ;;
esac
for p in "$KAFKA_PORT" ${CONTROLLER_PORT:+"$CONTROLLER_PORT"} "$MONGO_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] || { err "bad port '$p'"; exit 2; }
done

DIR=$CACHE/$NAME
BROKERS_FILE=$DIR/kafka/brokers   # --brokers 3: the stack was formatted as a cluster of that many nodes
if [[ -f $BROKERS_FILE || -f $DIR/kafka/data/meta.properties ]] && ! { [[ $CMD == start ]] && ((FRESH)); }; then
  recorded=$(cat "$BROKERS_FILE" 2>/dev/null || echo 1)   # formatted, and no record: one node
  if [[ -n $BROKERS && $BROKERS != "$recorded" && $CMD == start ]]; then
    err "stack '$NAME' was formatted as $recorded broker(s), not $BROKERS: add --fresh to start it anew"; exit 2
  fi
  BROKERS=$recorded
fi
: "${BROKERS:=1}"
[[ $BROKERS == 1 || $BROKERS == 3 ]] || { err "--brokers must be 1 or 3 (a quorum of three controllers)"; exit 2; }
if ((BROKERS == 1)); then : "${CONTROLLER_PORT:=$((KAFKA_PORT + 1))}"
else : "${CONTROLLER_PORT:=$((KAFKA_PORT + BROKERS))}"; fi
if ((CONTROLLER_PORT < KAFKA_PORT + BROKERS && KAFKA_PORT < CONTROLLER_PORT + BROKERS)); then
  err "controller ports $CONTROLLER_PORT.. overlap the $BROKERS client ports from $KAFKA_PORT: pick another --controller-port"; exit 2
fi
KAFKA_DATA=$DIR/kafka/data
KAFKA_PROPS=$DIR/kafka/server.properties
FERRET_DATA=$DIR/ferretdb/data
FERRET_STATE=$DIR/ferretdb/state
LOGS=$DIR/logs
PIDS=$DIR/pids
LIBS=$CACHE/kafka/libs
FERRET_BIN=$CACHE/bin/ferretdb
VENV_PY=${STACK_PYTHON:-$REPO/.venv/bin/python}   # STACK_PYTHON: another venv with the project installed
EXTERNAL_MONGO=${MONGODB_URL:-}

CREDENTIALS=$DIR/kafka/credentials.env   # --auth: the SCRAM passwords (admin, each service)
ASKED_AUTH=$AUTH
[[ -f $CREDENTIALS ]] && AUTH=1          # a stack formatted with users keeps them (until --fresh)
NODES=$(seq "$BROKERS")

# Node i (1..BROKERS) of the cluster: node 1 is the single node's files and PID file (`kafka`), so
# whoever signals the broker by kafka.pid still finds it; the others have their own beside it.
node_comp() { if (($1 == 1)); then echo kafka; else echo "kafka-$1"; fi; }
node_port() { echo $((KAFKA_PORT + $1 - 1)); }
node_controller_port() { echo $((CONTROLLER_PORT + $1 - 1)); }
node_data() { if (($1 == 1)); then echo "$KAFKA_DATA"; else echo "$DIR/kafka/data-$1"; fi; }
node_props() { if (($1 == 1)); then echo "$KAFKA_PROPS"; else echo "$DIR/kafka/server-$1.properties"; fi; }
node_logs() { if (($1 == 1)); then echo "$LOGS"; else echo "$LOGS/kafka-$1"; fi; }
bootstrap() { local i list=(); for i in $NODES; do list+=("127.0.0.1:$(node_port "$i")"); done; (IFS=,; echo "${list[*]}"); }
ferret_log=$LOGS/ferretdb.log

# --- helpers ------------------------------------------------------------------------------
redact() { sed -E 's#(//)[^/@]*@#\1***@#' <<<"$1"; }
mongo_url() { if [[ -n $EXTERNAL_MONGO ]]; then printf '%s' "$EXTERNAL_MONGO"; else printf 'mongodb://127.0.0.1:%s/' "$MONGO_PORT"; fi; }

print_env() {
  say "use: KAFKA_BOOTSTRAP_SERVERS=$(bootstrap) MONGODB_URL=$(redact "$(mongo_url)")"
  ((AUTH)) && say "     KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_USERNAME=admin, its password and each service's in $CREDENTIALS ($0 env prints the exports)"
  return 0
}

credential() { sed -n "s/^$1=//p" "$CREDENTIALS"; }

# --auth: a password per user, made once per stack (readable by its owner only)
make_credentials() {
  [[ -f $CREDENTIALS ]] && return 0
  if [[ -n ${STACK_KAFKA_CREDENTIALS:-} ]]; then
    (umask 077; cp "$STACK_KAFKA_CREDENTIALS" "$CREDENTIALS"); return 0
  fi
  (umask 077; python3 -c 'import secrets
for user in ("ADMIN", "INTAKE", "ROUTING", "CARRIER", "NOTIFY"):
    print(f"{user}_PASSWORD={secrets.token_hex(16)}")' >"$CREDENTIALS")
}

# --auth: the listener asks for SASL/SCRAM, the controller's for PLAIN (KRaft keeps SCRAM users in
# its metadata, which the controller itself must read first), the authorizer refuses what no ACL
# allows; later keys override the template's.
auth_properties() {
  local admin port=$1 controller_port=$2; admin=$(credential ADMIN_PASSWORD)
  cat <<PROPS

# --- stack.sh --auth: SASL/SCRAM and ACLs (docs/adr/0021, issue 16)
listeners=SASL_PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$controller_port
advertised.listeners=SASL_PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT
inter.broker.listener.name=SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="$admin" user_admin="$admin";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
PROPS
}

# --brokers 3: node $1 of a static quorum of three controllers; every topic created without a
# replication factor of its own (the services', kafka_users.py's) gets the broker's defaults, which
# are production's (infra/k8s/topics): 3 replicas, a write acknowledged by 2 of them. Later keys
# override the template's.
cluster_properties() {
  local i voters=() controllers=()
  for i in $NODES; do
    voters+=("$i@127.0.0.1:$(node_controller_port "$i")"); controllers+=("127.0.0.1:$(node_controller_port "$i")")
  done
  cat <<PROPS

# --- stack.sh --brokers $BROKERS: node $1 of a KRaft cluster (docs/adr/0030)
node.id=$1
controller.quorum.voters=$(IFS=,; echo "${voters[*]}")
controller.quorum.bootstrap.servers=$(IFS=,; echo "${controllers[*]}")
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
# A dead broker is fenced (its partitions and groups led elsewhere) 2 s after its last heartbeat,
# not the default 9 s, and a dead controller is replaced after 1 s without its fetches, not 2 s:
# the services' consumers (6 s sessions on a cluster) then find their group's new coordinator
# before they give up their member ids, so the group does not wait out its old members
# (docs/adr/0043: longest pause in dial-outs 10-12 s -> about 5 s)
broker.session.timeout.ms=2000
broker.heartbeat.interval.ms=250
controller.quorum.fetch.timeout.ms=1000
controller.quorum.election.timeout.ms=500
PROPS
}

python_bin() { if [[ -x $VENV_PY ]]; then printf '%s' "$VENV_PY"; else printf 'python3'; fi; }

# A real round trip. kafka: metadata from the broker. mongo: the `ping` command.
# Uses confluent_kafka / pymongo from the project's venv when there, else a fallback:
# Kafka's own BrokerApiVersionsCommand, and a hand-built OP_MSG ping (stdlib only).
probe() {
  local what=$1 target=$2 py rc
  py=$(python_bin)
  rc=0
  "$py" - "$what" "$target" 2>/dev/null <<'PY' || rc=$?
import struct, socket, sys
what, target = sys.argv[1], sys.argv[2]
if what == "kafka":
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        sys.exit(3)  # no client library: the caller falls back to the Java tool
    import os
    sasl = {"security.protocol": "sasl_plaintext", "sasl.mechanism": "SCRAM-SHA-512", "sasl.username": "admin",
            "sasl.password": os.environ["PROBE_KAFKA_PASSWORD"]} if os.environ.get("PROBE_KAFKA_PASSWORD") else {}
    md = AdminClient({"bootstrap.servers": target, "log_level": 0, **sasl}).list_topics(timeout=5)
    sys.exit(0 if len(md.brokers) >= int(os.environ.get("PROBE_KAFKA_BROKERS", "1")) else 1)
# mongo
try:
    import pymongo
    c = pymongo.MongoClient(target, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000)
    sys.exit(0 if c.admin.command("ping").get("ok") == 1 else 1)
except ImportError:
    pass
from urllib.parse import urlsplit
u = urlsplit(target)
hostport = u.netloc.rsplit("@", 1)[-1].split(",")[0]
host, _, port = hostport.rpartition(":") if ":" in hostport else (hostport, "", "27017")
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1) + b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
hdr = struct.pack("<iiii", 16 + len(msg), 1, 0, 2013)
with socket.create_connection((host.strip("[]"), int(port)), timeout=3) as s:
    s.sendall(hdr + msg)
    data = b""
    while len(data) < 4 or len(data) < struct.unpack("<i", data[:4])[0]:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
i = data.find(b"\x01ok\x00")
sys.exit(0 if i >= 0 and struct.unpack("<d", data[i + 4:i + 12])[0] == 1.0 else 1)
PY
  if [[ $what == kafka && $rc == 3 ]] && ((AUTH)); then
    err "--auth needs the project's venv (confluent_kafka) to reach the broker: make venv"; exit 1
  fi
  if [[ $what == kafka && $rc == 3 ]]; then
    rc=0
    timeout 30 java -Xmx128m -cp "$LIBS/*" -Dlog4j2.level=ERROR \
      org.apache.kafka.tools.BrokerApiVersionsCommand --bootstrap-server "$target" \
      >/dev/null 2>&1 || rc=$?
  fi
  return "$rc"
}

stop_all() { stop_pids "nothing running" ferretdb kafka kafka-2 kafka-3; }

# --- commands -----------------------------------------------------------------------------
cmd_status() {
  local pid ok=0 i comp port
  for i in $NODES; do
    comp=$(printf '%-8s' "$(node_comp "$i")") port=$(node_port "$i")
    if pid=$(live_pid "$(node_comp "$i")"); then
      if port_open "$port"; then say "$comp running, pid $pid, 127.0.0.1:$port"
      else say "$comp starting (pid $pid), 127.0.0.1:$port not answering yet"; ok=1; fi
    else say "$comp not running"; ok=1; fi
  done
  if [[ -n $EXTERNAL_MONGO ]]; then
    say "mongo    external MONGODB_URL=$(redact "$EXTERNAL_MONGO") (FerretDB not used)"
  elif pid=$(live_pid ferretdb); then
    if port_open "$MONGO_PORT"; then say "ferretdb running, pid $pid, 127.0.0.1:$MONGO_PORT"
    else say "ferretdb starting (pid $pid), 127.0.0.1:$MONGO_PORT not answering yet"; ok=1; fi
  else say "ferretdb not running"; ok=1; fi
  say "data and logs: $DIR"
  ((ok == 0)) && print_env
  return $ok
}

# start_node I: formats node I's storage if it has none, then starts it (detached).
start_node() {
  local i=$1 comp props data logs out
  comp=$(node_comp "$i") props=$(node_props "$i") data=$(node_data "$i") logs=$(node_logs "$i")
  out=$logs/kafka.out
  mkdir -p "$data" "$logs"
  sed -e "s#@KAFKA_PORT@#$(node_port "$i")#g" -e "s#@CONTROLLER_PORT@#$(node_controller_port "$i")#g" \
      -e "s#@DATA_DIR@#$data#g" "$HERE/kafka/server.properties.template" >"$props"
  ((BROKERS == 1)) || cluster_properties "$i" >>"$props"
  local scram=()
  if ((AUTH)); then
    auth_properties "$(node_port "$i")" "$(node_controller_port "$i")" >>"$props"
    chmod 600 "$props"
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(credential ADMIN_PASSWORD)]")
  fi
  local jvm=(java -Djava.awt.headless=true -XX:+ExitOnOutOfMemoryError
             -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" -Dkafka.logs.dir="$logs")
  if [[ ! -f $data/meta.properties ]]; then
    local cluster_id quorum=(--standalone)
    ((BROKERS == 1)) || quorum=()   # the voters are in the properties (a static quorum)
    # the cluster's id: a node formatted before knows it; else a 22-char base64url uuid, never
    # starting with '-' (the tool would read it as an option)
    cluster_id=$(sed -n 's/^cluster.id=//p' "$KAFKA_DATA/meta.properties" "$DIR"/kafka/data-*/meta.properties \
                 2>/dev/null | head -n 1) || true
    [[ -n $cluster_id ]] || cluster_id=$(python3 -c 'import uuid,base64
while True:
    c = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not c.startswith("-"): break
print(c)')
    say "formatting $comp storage (cluster id $cluster_id)"
    "${jvm[@]}" -Xmx256m -cp "$LIBS/*" kafka.tools.StorageTool format "${quorum[@]}" \
        -t "$cluster_id" -c "$props" "${scram[@]}" >>"$out" 2>&1 \
      || { err "$comp storage format failed"; tail_log "$out" "$logs/kafka-server.log"; exit 1; }
  fi
  # three JVMs share the machine: a smaller heap each
  local heap=(-Xms256m -Xmx768m); ((BROKERS == 1)) || heap=(-Xms256m -Xmx512m)
  # shellcheck disable=SC2086
  spawn "$comp" "$out" "${jvm[@]}" "${heap[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    ${KAFKA_JAVA_OPTS:-} -cp "$LIBS/*" kafka.Kafka "$props"
  say "$comp starting on 127.0.0.1:$(node_port "$i") (pid $(<"$PIDS/$comp.pid")), log $logs/kafka-server.log"
}

cmd_start() {
  local t_start=$SECONDS
  if ((FRESH)); then
    stop_all >/dev/null
    say "--fresh: wiping $DIR"
    rm -rf "$DIR"
    AUTH=$ASKED_AUTH
  fi
  if ((AUTH)) && [[ ! -f $CREDENTIALS && -f $KAFKA_DATA/meta.properties ]]; then
    # Users are written into the broker's metadata when it is formatted: a stack made without them
    # runs on as it was made (its data kept) rather than not starting at all.
    say "kafka    this stack was made without users: it runs without them (--fresh makes it again with users, wiping its data)"
    AUTH=0
  fi
  "$HERE/fetch.sh"
  mkdir -p "$KAFKA_DATA" "$FERRET_DATA" "$FERRET_STATE" "$LOGS" "$PIDS"
  ((BROKERS == 1)) || { rm -f "$BROKERS_FILE"; echo "$BROKERS" >"$BROKERS_FILE"; }

  local pid p i ferret_pid= kafka_pids=()
  for i in $NODES; do kafka_pids[i]=$(live_pid "$(node_comp "$i")") || true; done
  [[ -n $EXTERNAL_MONGO ]] || ferret_pid=$(live_pid ferretdb) || true
  # check every port needed before starting anything
  for i in $NODES; do
    [[ -z ${kafka_pids[i]} ]] || continue
    for p in "$(node_port "$i")" "$(node_controller_port "$i")"; do
      port_free "$p" "pick other ports with --kafka-port/--controller-port" || exit 1
    done
  done
  if [[ -z $EXTERNAL_MONGO && -z $ferret_pid ]]; then
    port_free "$MONGO_PORT" "pick another with --mongo-port, or set MONGODB_URL to use that server" || exit 1
  fi

  # --- kafka
  ((AUTH)) && make_credentials
  for i in $NODES; do
    if [[ -n ${kafka_pids[i]} ]]; then
      say "$(node_comp "$i") already running (pid ${kafka_pids[i]})"
    else
      start_node "$i"
    fi
  done

  # --- document store
  if [[ -n $EXTERNAL_MONGO ]]; then
    say "MONGODB_URL is set: not starting FerretDB, using $(redact "$EXTERNAL_MONGO")"
  elif [[ -n $ferret_pid ]]; then
    say "ferretdb already running (pid $ferret_pid)"
  else
    # FERRETDB_SQLITE_PARAMS: SQLite URI query. Our default: write transactions take the lock
    # at BEGIN (_txlock=immediate), so a read that turns into a write never fails with
    # SQLITE_BUSY under concurrent writers; and WAL with synchronous(normal), which survives a
    # crash of FerretDB (not of the machine) and spares an fsync per write. FerretDB adds
    # busy_timeout(10000) and journal_mode(wal) itself.
    : "${FERRETDB_SQLITE_PARAMS=_txlock=immediate&_pragma=synchronous(normal)}"
    # FERRETDB_DEBUG_ADDR=127.0.0.1:8089: FerretDB's debug handler, for a CPU profile of the store
    # (curl "http://127.0.0.1:8089/debug/pprof/profile?seconds=25" > ferret.prof; go tool pprof)
    spawn ferretdb "$ferret_log" "$FERRET_BIN" --handler=sqlite \
      --sqlite-url="file:$FERRET_DATA/${FERRETDB_SQLITE_PARAMS:+?$FERRETDB_SQLITE_PARAMS}" \
      --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$FERRET_STATE" --telemetry=disable \
      --debug-addr="${FERRETDB_DEBUG_ADDR:--}" --log-level=info
    say "ferretdb starting on 127.0.0.1:$MONGO_PORT (pid $(<"$PIDS/ferretdb.pid")), log $ferret_log"
  fi

  # --- wait for health: port open and a real round trip
  if ((AUTH)); then PROBE_KAFKA_PASSWORD=$(credential ADMIN_PASSWORD); export PROBE_KAFKA_PASSWORD; fi
  # a node of a cluster is healthy when it serves metadata naming every broker (all registered)
  export PROBE_KAFKA_BROKERS=$BROKERS
  local served="metadata served"; ((BROKERS == 1)) || served="metadata of all $BROKERS brokers served"
  local deadline=$((SECONDS + HEALTH_TIMEOUT)) kafka_ok=0 mongo_ok=0 node_ok=() comp
  while :; do
    for i in $NODES; do
      ((${node_ok[i]:-0})) && continue
      comp=$(node_comp "$i")
      if ! live_pid "$comp" >/dev/null; then
        err "$comp exited during startup"; tail_log "$(node_logs "$i")/kafka.out" "$(node_logs "$i")/kafka-server.log"; exit 1
      fi
      port_open "$(node_port "$i")" && probe kafka "127.0.0.1:$(node_port "$i")" && node_ok[i]=1 \
        && say "$comp healthy ($served) after $((SECONDS - t_start)) s"
    done
    ((${#node_ok[@]} == BROKERS)) && kafka_ok=1
    if ((!mongo_ok)); then
      if [[ -n $EXTERNAL_MONGO ]]; then
        probe mongo "$EXTERNAL_MONGO" && mongo_ok=1 && say "MONGODB_URL answers ping"
      else
        if ! live_pid ferretdb >/dev/null; then
          err "ferretdb exited during startup"; tail_log "$ferret_log"; exit 1
        fi
        port_open "$MONGO_PORT" && probe mongo "$(mongo_url)" && mongo_ok=1 \
          && say "ferretdb healthy (ping ok) after $((SECONDS - t_start)) s"
      fi
    fi
    ((kafka_ok && mongo_ok)) && break
    if ((SECONDS >= deadline)); then
      for i in $NODES; do
        ((${node_ok[i]:-0})) && continue
        err "$(node_comp "$i") not healthy after ${HEALTH_TIMEOUT}s (log: $(node_logs "$i")/kafka-server.log)"
        tail_log "$(node_logs "$i")/kafka.out" "$(node_logs "$i")/kafka-server.log"
      done
      if ((!mongo_ok)); then
        if [[ -n $EXTERNAL_MONGO ]]; then err "MONGODB_URL=$(redact "$EXTERNAL_MONGO") does not answer ping"
        else err "ferretdb not healthy after ${HEALTH_TIMEOUT}s (log: $ferret_log)"; tail_log "$ferret_log"; fi
      fi
      say "processes left running; stop them with: $0 stop --name $NAME"
      exit 1
    fi
    sleep 0.5
  done
  if ((AUTH)); then  # users and ACLs as in a cluster (infra/k8s/kafka-users), and the platform's topics
    "$(python_bin)" "$HERE/kafka_users.py" "$(bootstrap)" "$CREDENTIALS" \
      || { err "could not set up the Kafka users and ACLs"; exit 1; }
  fi
  say "ready in $((SECONDS - t_start)) s; data and logs under $DIR"
  print_env
}

case $CMD in
  start) cmd_start ;;
  stop) stop_all ;;
  status) cmd_status ;;
  env)
    printf 'export KAFKA_BOOTSTRAP_SERVERS=%s\n' "$(bootstrap)"
    if ((AUTH)); then
      printf 'export KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT KAFKA_SASL_MECHANISM=SCRAM-SHA-512\n'
      printf 'export KAFKA_SASL_USERNAME=admin KAFKA_SASL_PASSWORD=%q\n' "$(credential ADMIN_PASSWORD)"
      printf 'export KAFKA_CREDENTIALS_FILE=%q\n' "$CREDENTIALS"
    fi
    printf 'export MONGODB_URL=%q\n' "$(mongo_url)" ;;
esac
