# shellcheck shell=bash
# shellcheck disable=SC2153  # NAME, PIDS, ... are set by the sourcing script
# Background-process management shared by stack.sh (Kafka, FerretDB) and services.sh (intake,
# order simulator): messages, port checks, spawning with a PID file and a log, telling whether a
# recorded PID is still ours, stopping (TERM, then KILL) and showing a log's tail on failure.
# Sourced, not run. The sourcing script sets, before calling anything here:
#   PROC_TAG      message prefix (stack, services)      NAME  the stack's name
#   PIDS          folder of the <component>.pid files   STOP_TIMEOUT  seconds from TERM to KILL
#   TAIL_LINES    lines of a log shown on failure
# Every process spawned here carries COMPLAINTS_PID_FILE=<its PID file> in its environment from
# its first instant; live_pid accepts a PID only with that marker, so a recycled PID is never
# signalled.

# say MSG...: a progress line on stdout, prefixed "<PROC_TAG>[<NAME>]: ".
say() { printf '%s[%s]: %s\n' "$PROC_TAG" "$NAME" "$*"; }

# err MSG...: an error line on stderr, prefixed "<PROC_TAG>[<NAME>]: ERROR: ".
err() { printf '%s[%s]: ERROR: %s\n' "$PROC_TAG" "$NAME" "$*" >&2; }

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# port_free PORT [HINT]: true if PORT is free; else says who to ask (ss) plus HINT, and fails.
port_free() {
  port_open "$1" || return 0
  err "port $1 is already in use by another process (see: ss -ltnp 'sport = :$1')${2:+; $2}"
  return 1
}

# live_pid COMP: prints the PID in pids/COMP.pid if that process is alive and carries our marker.
live_pid() {
  local f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qxF -- "COMPLAINTS_PID_FILE=$f" || return 1
  printf '%s\n' "$pid"
}

# spawn COMP LOG [ENV=...] CMD...: runs CMD detached (own session, no stdin, >>LOG); PID to pids/COMP.pid.
spawn() {
  local name=$1 pidfile=$PIDS/$1.pid log=$2; shift 2
  rm -f "$pidfile"
  # One simple command, so that the background child execs setsid and keeps no copy of our
  # stdout (a pipe reading `make up` would never end). The marker is in the environment from
  # the first instant, so live_pid never misses it. ($$, $0, $@ are the child's.)
  # shellcheck disable=SC2016
  COMPLAINTS_PID_FILE=$pidfile setsid nohup bash -c 'echo $$ >"$0"; exec env "$@"' \
    "$pidfile" "$@" >>"$log" 2>&1 </dev/null &
  local i
  for i in $(seq 50); do [[ -s $pidfile ]] && return 0; sleep 0.1; done
  err "$name did not start (no PID file)"; return 1
}

# stop_pids NONE_MSG COMP...: TERM each live COMP, KILL after STOP_TIMEOUT, remove their PID files.
stop_pids() {
  local none=$1 comp pid pids=() names=(); shift
  for comp in "$@"; do
    if pid=$(live_pid "$comp"); then
      say "stopping $comp (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid"); names+=("$comp")
    elif [[ -f $PIDS/$comp.pid ]]; then
      say "$comp not running (removing stale PID file)"
    fi
  done
  local deadline=$((SECONDS + STOP_TIMEOUT)) i
  for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
      say "${names[$i]} still up after ${STOP_TIMEOUT}s: KILL"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      sleep 0.2
    fi
  done
  for comp in "$@"; do rm -f "$PIDS/$comp.pid"; done
  ((${#pids[@]})) || say "$none"
  return 0
}

# tail_log FILE...: prints the last TAIL_LINES lines of each non-empty FILE on stderr.
tail_log() {
  local f
  for f in "$@"; do
    [[ -s $f ]] || continue
    printf -- '----- last lines of %s -----\n' "$f" >&2
    tail -n "$TAIL_LINES" "$f" >&2
  done
}
