#!/usr/bin/env bash
# The platform's own processes on top of the local stack (stack.sh): the order and carrier
# simulators, the mailbox (SMTP sink), the telephony simulator, and the intake, routing, carrier
# and notify services, in the background, on 127.0.0.1.
#
#   services.sh start  [--name up] [--kafka-port N] [--mongo-port N] [--intake-port N] [--routing-port N]
#                      [--carrier-port N] [--notify-port N] [--orders-port N] [--carriers-port N]
#                      [--mailbox-port N] [--smtp-port N] [--telephony-port N]
#   services.sh stop   [--name up]
#   services.sh status [--name up]
#
# Defaults: kafka 9092 (a stack started with --brokers 3: it and the next two), mongo 27017 (an
# exported MONGODB_URL wins, as in stack.sh), intake 8001,
# routing 8002, carrier 8003, notify 8004, order simulator 8090, carrier simulator 8091, mailbox 8025
# (SMTP 2525), telephony simulator 8092. Logs in <cache>/<name>/logs/<svc>.log, PIDs in <cache>/<name>/pids/<svc>.pid,
# cache being ${COMPLAINTS_CACHE:-<repo>/.cache}. `start` skips what already runs and waits until
# each service's /health/ready answers 200; `stop` signals only the PIDs recorded here (TERM, then KILL).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
CACHE=${COMPLAINTS_CACHE:-$REPO/.cache}
READY_TIMEOUT=${SERVICES_READY_TIMEOUT:-60}
STOP_TIMEOUT=20
TAIL_LINES=40
PROC_TAG=services
SERVICES=(order-simulator carrier-simulator mailbox telephony-simulator intake routing carrier notify)   # started in this order, stopped in reverse
# shellcheck source-path=SCRIPTDIR source=processes.sh
. "$HERE/processes.sh"   # say, err, port_open, port_free, live_pid, spawn, stop_pids, tail_log

usage() { sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }

CMD=${1:-}; [[ $# -gt 0 ]] && shift
case $CMD in start|stop|status) ;; -h|--help|help) usage 0 ;; *) NAME=? err "unknown command '${CMD}'"; usage ;; esac
NAME=up KAFKA_PORT=9092 MONGO_PORT=27017 INTAKE_PORT=8001 ROUTING_PORT=8002 CARRIER_PORT=8003 ORDERS_PORT=8090
CARRIERS_PORT=8091 NOTIFY_PORT=8004 MAILBOX_PORT=8025 SMTP_PORT=2525 TELEPHONY_PORT=8092
while [[ $# -gt 0 ]]; do
  case $1 in
    --name) NAME=${2:?--name needs a value}; shift 2 ;;
    --kafka-port) KAFKA_PORT=${2:?}; shift 2 ;;
    --mongo-port) MONGO_PORT=${2:?}; shift 2 ;;
    --intake-port) INTAKE_PORT=${2:?}; shift 2 ;;
    --routing-port) ROUTING_PORT=${2:?}; shift 2 ;;
    --orders-port) ORDERS_PORT=${2:?}; shift 2 ;;
    --notify-port) NOTIFY_PORT=${2:?}; shift 2 ;;
    --mailbox-port) MAILBOX_PORT=${2:?}; shift 2 ;;
    --smtp-port) SMTP_PORT=${2:?}; shift 2 ;;
    --telephony-port) TELEPHONY_PORT=${2:?}; shift 2 ;;
    --carrier-port) CARRIER_PORT=${2:?}; shift 2 ;;
    --carriers-port) CARRIERS_PORT=${2:?}; shift 2 ;;
    --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    -h|--help) usage 0 ;;
    *) err "unknown option '$1'"; usage ;;
  esac
done
[[ $NAME =~ ^[A-Za-z0-9_-]+$ ]] || { err "--name must be letters, digits, - or _"; exit 2; }
for p in "$KAFKA_PORT" "$MONGO_PORT" "$INTAKE_PORT" "$ROUTING_PORT" "$CARRIER_PORT" "$ORDERS_PORT" "$CARRIERS_PORT" \
         "$NOTIFY_PORT" "$MAILBOX_PORT" "$SMTP_PORT" "$TELEPHONY_PORT"; do
  [[ $p =~ ^[0-9]+$ ]] || { err "bad port '$p'"; exit 2; }
done

DIR=$CACHE/$NAME
LOGS=$DIR/logs
PIDS=$DIR/pids
PY=$REPO/.venv/bin/python
CREDENTIALS=$DIR/kafka/credentials.env   # a stack started with --auth: each service its own Kafka user
BROKERS=$(cat "$DIR/kafka/brokers" 2>/dev/null || echo 1)   # a stack started with --brokers 3: all three
BOOTSTRAP=127.0.0.1:$KAFKA_PORT
for ((i = 1; i < BROKERS; i++)); do BOOTSTRAP+=,127.0.0.1:$((KAFKA_PORT + i)); done
cd "$REPO"   # `python -m infra.simulators.orders` and `-m services.intake.app` resolve from here
ORDERS_URL=http://127.0.0.1:$ORDERS_PORT
INTAKE_URL=http://127.0.0.1:$INTAKE_PORT
ROUTING_URL=http://127.0.0.1:$ROUTING_PORT
NOTIFY_URL=http://127.0.0.1:$NOTIFY_PORT
MAILBOX_URL=http://127.0.0.1:$MAILBOX_PORT
TELEPHONY_URL=http://127.0.0.1:$TELEPHONY_PORT
CARRIER_URL=http://127.0.0.1:$CARRIER_PORT
CARRIERS_URL=http://127.0.0.1:$CARRIERS_PORT
DESK_ORIGINS=$INTAKE_URL,http://localhost:$INTAKE_PORT   # whose pages may call routing and carrier (CORS)

port_of() {
  case $1 in
    intake) echo "$INTAKE_PORT" ;; routing) echo "$ROUTING_PORT" ;; carrier) echo "$CARRIER_PORT" ;;
    order-simulator) echo "$ORDERS_PORT" ;; carrier-simulator) echo "$CARRIERS_PORT" ;;
    notify) echo "$NOTIFY_PORT" ;; mailbox) echo "$MAILBOX_PORT" ;; telephony-simulator) echo "$TELEPHONY_PORT" ;;
  esac
}
health_of() {
  case $1 in
    intake) echo "$INTAKE_URL/health/ready" ;; routing) echo "$ROUTING_URL/health/ready" ;;
    order-simulator) echo "$ORDERS_URL/health" ;; carrier-simulator) echo "$CARRIERS_URL/health" ;;
    carrier) echo "$CARRIER_URL/health/ready" ;;
    notify) echo "$NOTIFY_URL/health/ready" ;; mailbox) echo "$MAILBOX_URL/health" ;;
    telephony-simulator) echo "$TELEPHONY_URL/health" ;;
  esac
}
# urllib raises on any answer but 2xx; no proxy, whatever the environment says, for 127.0.0.1
answers_200() {
  "$PY" -c 'import sys, urllib.request as u; u.build_opener(u.ProxyHandler({})).open(sys.argv[1], timeout=2)' \
    "$1" 2>/dev/null
}

# start_one SVC: spawns SVC, its output appended to logs/SVC.log after a dated banner
start_one() {
  local mongo=${MONGODB_URL:-mongodb://127.0.0.1:$MONGO_PORT/} log=$LOGS/$1.log auth=()
  if [[ -f $CREDENTIALS ]]; then  # the service's own user and ACLs (infra/k8s/kafka-users), as in a cluster
    auth=(KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT "KAFKA_SASL_USERNAME=complaints-$1"
          "KAFKA_SASL_PASSWORD=$(sed -n "s/^${1^^}_PASSWORD=//p" "$CREDENTIALS")")
  fi
  # one broker: 3 s group sessions (its restart is a whole-cluster outage, the group then waits one
  # session for its old members: docs/adr/0039); three: the default 6 s, which outlives the move of a
  # group's coordinator when one broker dies (docs/adr/0043)
  local session=3000
  if ((BROKERS > 1)); then session=6000; fi
  local kernel=("CONSUMER_SESSION_TIMEOUT_MS=${CONSUMER_SESSION_TIMEOUT_MS:-$session}")
  printf '===== %s: starting %s =====\n' "$(date -Is)" "$1" >>"$log"
  case $1 in
    order-simulator) spawn "$1" "$log" "$PY" -m infra.simulators.orders --host 127.0.0.1 --port "$ORDERS_PORT" ;;
    carrier-simulator) spawn "$1" "$log" "$PY" -m infra.simulators.carriers --host 127.0.0.1 --port "$CARRIERS_PORT" ;;
    # the desk's pages call routing and carrier from the browser: each names the other's address;
    # a laptop's desk signs in without an identity provider (DEV_SIGN_IN)
    intake) spawn "$1" "$log" "${auth[@]}" "${kernel[@]}" KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" MONGODB_URL="$mongo" \
              ORDER_SYSTEM_URL="$ORDERS_URL" HTTP_HOST=127.0.0.1 HTTP_PORT="$INTAKE_PORT" \
              ROUTING_PUBLIC_URL="$ROUTING_URL" CARRIER_PUBLIC_URL="$CARRIER_URL" DEV_SIGN_IN=true \
              "$PY" -m services.intake.app ;;
    routing) spawn "$1" "$log" "${auth[@]}" "${kernel[@]}" KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" MONGODB_URL="$mongo" \
              HTTP_HOST=127.0.0.1 HTTP_PORT="$ROUTING_PORT" CORS_ORIGINS="$DESK_ORIGINS" \
              ORDER_SYSTEM_URL="$ORDERS_URL" "$PY" -m services.routing.app ;;
    mailbox) spawn "$1" "$log" "$PY" -m infra.simulators.mailbox --host 127.0.0.1 --port "$MAILBOX_PORT" \
              --smtp-port "$SMTP_PORT" ;;
    telephony-simulator) spawn "$1" "$log" "$PY" -m infra.simulators.telephony --host 127.0.0.1 --port "$TELEPHONY_PORT" ;;
    notify) spawn "$1" "$log" "${auth[@]}" "${kernel[@]}" KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" MONGODB_URL="$mongo" \
              HTTP_HOST=127.0.0.1 HTTP_PORT="$NOTIFY_PORT" PUBLIC_URL="$NOTIFY_URL" SMTP_HOST=127.0.0.1 \
              SMTP_PORT="$SMTP_PORT" TELEPHONY_URL="$TELEPHONY_URL" ORDER_SYSTEM_URL="$ORDERS_URL" \
              "$PY" -m services.notify.app ;;
    # the carrier simulator speaks all four carriers; its credentials are the settings' defaults
    carrier) spawn "$1" "$log" "${auth[@]}" "${kernel[@]}" KAFKA_BOOTSTRAP_SERVERS="$BOOTSTRAP" MONGODB_URL="$mongo" \
              ORDER_SYSTEM_URL="$ORDERS_URL" FEDEX_URL="$CARRIERS_URL" UPS_URL="$CARRIERS_URL" \
              USPS_URL="$CARRIERS_URL" AUSPOST_URL="$CARRIERS_URL" HTTP_HOST=127.0.0.1 HTTP_PORT="$CARRIER_PORT" \
              CORS_ORIGINS="$DESK_ORIGINS" "$PY" -m services.carrier.app ;;
  esac
}

wait_healthy() {
  local svc=$1 url deadline=$((SECONDS + READY_TIMEOUT))
  url=$(health_of "$svc")
  until answers_200 "$url"; do
    if ! live_pid "$svc" >/dev/null; then
      err "$svc exited during start-up (log: $LOGS/$svc.log)"; tail_log "$LOGS/$svc.log"
      say "stop what did start with: $0 stop --name $NAME"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      err "$svc: $url did not answer 200 within ${READY_TIMEOUT}s (log: $LOGS/$svc.log)"
      tail_log "$LOGS/$svc.log"
      say "left running; stop with: $0 stop --name $NAME"
      return 1
    fi
    sleep 0.5
  done
}

cmd_start() {
  [[ -x $PY ]] || { err "$PY not found: run 'make venv' first"; exit 1; }
  mkdir -p "$LOGS" "$PIDS"
  local svc pid port t0=$SECONDS
  for svc in "${SERVICES[@]}"; do
    port=$(port_of "$svc")
    if pid=$(live_pid "$svc"); then
      say "$svc already running (pid $pid)"
    elif ! port_free "$port"; then
      exit 1
    else
      start_one "$svc"
      say "$svc starting on 127.0.0.1:$port (pid $(<"$PIDS/$svc.pid")), log $LOGS/$svc.log"
    fi
    wait_healthy "$svc" || exit 1
    say "$svc ready ($(health_of "$svc") answers 200)"
  done
  say "ready in $((SECONDS - t0)) s"
}

cmd_stop() {
  local i reversed=()
  for ((i = ${#SERVICES[@]} - 1; i >= 0; i--)); do reversed+=("${SERVICES[$i]}"); done
  stop_pids "no service running" "${reversed[@]}"
}

cmd_status() {
  local svc pid rc=0
  for svc in "${SERVICES[@]}"; do
    if ! pid=$(live_pid "$svc"); then say "$(printf '%-16s' "$svc") not running"; rc=1
    elif answers_200 "$(health_of "$svc")"; then say "$(printf '%-16s' "$svc") running, pid $pid, 127.0.0.1:$(port_of "$svc")"
    else say "$(printf '%-16s' "$svc") pid $pid, $(health_of "$svc") not answering 200"; rc=1; fi
  done
  say "logs: $LOGS"
  return $rc
}

case $CMD in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
esac
