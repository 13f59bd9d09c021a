#!/usr/bin/env bash
# Starts OpenChat (what `make run` runs): the backend, then, once it answers /healthz, the
# frontend's standalone Next.js server; then says where to open the app.
#
#   scripts/run.sh BACKEND_DIR BACKEND_PORT [FRONTEND_DIR FRONTEND_PORT]
#
# Each server runs in a session (process group) of its own, so a terminal's Ctrl-C reaches
# only this script, which stops them in order. Stopping a server means SIGTERM to its whole
# group (npm, node and other children included), then SIGKILL after OPENCHAT_STOP_TIMEOUT
# seconds (10); the script returns only when nothing of either group is left.
#  - Ctrl-C (SIGINT), SIGTERM, SIGHUP or SIGQUIT: both servers are stopped; exit status 0.
#  - A server stops by itself (any exit status or signal): the other one is stopped too, the
#    script says which one stopped and how, and exits with status 1.
#  - If this script is killed outright (SIGKILL), each server gets SIGTERM (setpriv --pdeathsig).
#
# OPENCHAT_BACKEND_CMD and OPENCHAT_FRONTEND_CMD replace the servers' commands (for tests):
# run by bash in BACKEND_DIR / FRONTEND_DIR, with the server's port in $PORT.
set -euo pipefail

if (($# != 2 && $# != 4)); then
  echo "usage: $0 BACKEND_DIR BACKEND_PORT [FRONTEND_DIR FRONTEND_PORT]" >&2
  exit 2
fi
backend_dir=$(cd "$1" && pwd)
backend_port=$2
frontend_dir=${3:+$(cd "$3" && pwd)}
frontend_port=${4:-}
stop_timeout=${OPENCHAT_STOP_TIMEOUT:-10}
poll=0.25

# Messages never fail the script (a closed terminal or pipe must not keep it from stopping the
# servers); SIGPIPE is caught, not ignored, so that the servers get it back at its default.
say() { echo "$@" 2>/dev/null || true; }
warn() { echo "!! $*" >&2 2>/dev/null || true; }
trap ':' PIPE

die() {
  warn "$@"
  exit 1
}

# Something already listens on 127.0.0.1:PORT.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# --- Checks before anything starts -----------------------------------------------------

backend_cmd=${OPENCHAT_BACKEND_CMD:-}
if [[ -z $backend_cmd ]]; then
  [[ -x $backend_dir/.venv/bin/uvicorn ]] || die "$backend_dir/.venv is not installed (run: make setup)"
  # app:app is the attribute `app` of the package app, built on first access (app/__init__.py).
  # Loopback only: browsers reach the API through the frontend (:3000); OPENCHAT_BACKEND_HOST=0.0.0.0
  # exposes it (and /metrics) to the network.
  # shellcheck disable=SC2016  # $PORT and the host are expanded by the server's shell
  backend_cmd='exec .venv/bin/uvicorn app:app --host "${OPENCHAT_BACKEND_HOST:-127.0.0.1}" --port "$PORT" --no-proxy-headers'
fi

frontend_cmd=${OPENCHAT_FRONTEND_CMD:-}
if [[ -n $frontend_dir && -z $frontend_cmd ]]; then
  # `next build` with output "standalone" writes .next/standalone/server.js, which serves the
  # static files only from its own folder: .next/static and public are copied there after
  # each build (the Makefile does it; this covers a build made with `npm run build` alone).
  standalone=$frontend_dir/.next/standalone
  [[ -f $standalone/server.js && -f $frontend_dir/.next/BUILD_ID ]] \
    || die "no standalone build in $frontend_dir/.next (run: make frontend)"
  build_id=$(<"$frontend_dir/.next/BUILD_ID")
  if [[ ! -d $standalone/.next/static/$build_id ]]; then
    say ">> Copying the frontend's static files into its standalone build"
    rm -rf "$standalone/.next/static" "$standalone/public"
    cp -R "$frontend_dir/.next/static" "$standalone/.next/static"
    cp -R "$frontend_dir/public" "$standalone/public"
  fi
  frontend_cmd='exec node .next/standalone/server.js'
fi

for port in "$backend_port" $frontend_port; do
  if port_in_use "$port"; then die "port $port is already in use (another OpenChat still running?)"; fi
done

# A server whose parent (this script) dies gets SIGTERM, where util-linux's setpriv can do it.
pdeathsig=()
if setpriv --pdeathsig TERM true 2>/dev/null; then pdeathsig=(setpriv --pdeathsig TERM); fi

# --- Servers ---------------------------------------------------------------------------

names=() # server names, in start order
pids=()  # their process ids; each is also the id of the server's process group
signal_name=""
signals=0

on_signal() {
  signal_name=$1
  signals=$((signals + 1))
}
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP
trap 'on_signal SIGQUIT' QUIT
trap 'stop_all' EXIT # whatever ends this script, the servers end with it

# start_server NAME DIR COMMAND [VAR=VALUE...]
start_server() {
  local name=$1 dir=$2 cmd=$3
  shift 3
  # The subshell is not a process group leader, so setsid makes it one without forking:
  # $! is the server's pid and its process group id.
  (cd "$dir" && exec setsid "${pdeathsig[@]}" env "$@" bash -c "$cmd") </dev/null &
  names+=("$name")
  pids+=("$!")
}

# A process of the group is still there, not counting zombies (already dead; where PID 1
# reaps orphans slowly, waiting for them would only delay the end).
group_alive() {
  if command -v pgrep >/dev/null; then
    pgrep -g "$1" -r R,S,D,T,t,W,P,I >/dev/null || kill -0 "$1" 2>/dev/null
  else
    kill -0 -- "-$1" 2>/dev/null || kill -0 "$1" 2>/dev/null
  fi
}

signal_all() {
  local pid
  for pid in "${pids[@]}"; do
    kill "-$1" -- "-$pid" 2>/dev/null || kill "-$1" "$pid" 2>/dev/null || true
  done
}

any_alive() {
  local pid
  for pid in "${pids[@]}"; do
    if group_alive "$pid"; then return 0; fi
  done
  return 1
}

# Stops every server's process group and waits until they are gone (SIGKILL after the
# timeout, or at once on a second Ctrl-C).
stop_all() {
  ((${#pids[@]})) || return 0
  local pid i signals_before=$signals deadline=$((SECONDS + stop_timeout))
  signal_all TERM
  while any_alive; do
    if ((SECONDS >= deadline || signals > signals_before)); then
      for i in "${!pids[@]}"; do
        if group_alive "${pids[$i]}"; then warn "${names[$i]} did not stop; killing it"; fi
      done
      signal_all KILL
      deadline=$((SECONDS + 5))
      while any_alive && ((SECONDS < deadline)); do pause 0.1; done
      if any_alive; then warn "some server processes are still there after SIGKILL"; fi
      break
    fi
    pause 0.1
  done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  names=()
  pids=()
}

# sleep, with the shell's own notice of a server killed by a signal ("Segmentation fault ...")
# left out: check() says which server stopped and how.
pause() {
  { sleep "$1" || true; } 2>/dev/null
}

describe_status() {
  local status=$1 sig
  if ((status > 128)) && sig=$(kill -l "$((status - 128))" 2>/dev/null); then
    echo "killed by SIG$sig"
  else
    echo "exit status $status"
  fi
}

# "the backend and the frontend"
the() {
  local out="" name
  for name in "$@"; do out+="${out:+ and }the $name"; done
  echo "$out"
}

# Handles a stop request or a server that stopped; returns only if neither happened.
check() {
  local i status others
  if [[ -n $signal_name ]]; then
    say ">> $signal_name: stopping $(the "${names[@]}")"
    stop_all
    say ">> Stopped"
    exit 0
  fi
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      status=0
      wait "${pids[$i]}" 2>/dev/null || status=$?
      others=$(the "${names[@]:0:i}" "${names[@]:i+1}")
      warn "${names[$i]} stopped ($(describe_status "$status"))${others:+; stopping $others}"
      stop_all
      exit 1
    fi
  done
}

answers() { # URL: the server answers HTTP there (any status)
  if command -v curl >/dev/null; then
    curl -s -o /dev/null --max-time 2 "$1"
  else
    python3 -c 'import sys, urllib.error, urllib.request as r
try: r.urlopen(sys.argv[1], timeout=2)
except urllib.error.HTTPError: pass' "$1" 2>/dev/null
  fi
}

healthy() { # URL: answers 2xx
  if command -v curl >/dev/null; then
    curl -fs -o /dev/null --max-time 2 "$1"
  else
    python3 -c 'import sys, urllib.request as r; r.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
  fi
}

say ">> Starting the backend on http://localhost:$backend_port"
start_server backend "$backend_dir" "$backend_cmd" "PORT=$backend_port"
until healthy "http://127.0.0.1:$backend_port/healthz"; do
  check
  pause "$poll"
done

if [[ -n $frontend_dir ]]; then
  say ">> Starting the frontend on http://localhost:$frontend_port"
  start_server frontend "$frontend_dir" "$frontend_cmd" "PORT=$frontend_port" HOSTNAME=0.0.0.0 \
    "BACKEND_URL=http://127.0.0.1:$backend_port" NODE_ENV=production NEXT_TELEMETRY_DISABLED=1
  until answers "http://127.0.0.1:$frontend_port/"; do
    check
    pause "$poll"
  done
  say ">> OpenChat is ready at http://localhost:$frontend_port (Ctrl-C stops it)"
else
  say ">> The backend is ready at http://localhost:$backend_port (Ctrl-C stops it)"
fi

while :; do
  check
  pause "$poll"
done
