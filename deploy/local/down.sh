#!/usr/bin/env bash
# `make down`: stops what `make up` (and `make test`) started, nothing else.
source "$(dirname "$0")/lib.sh"

stop_pid() { # pidfile what
  [ -f "$1" ] || return 0
  local pid; pid="$(cat "$1")"
  if kill -0 "$pid" 2>/dev/null; then
    say "stopping $2 (pid $pid)"
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  fi
  rm -f "$1"
}

stop_pid "$LOCAL/jiesu.pid" jiesu
if [ -f "$LOCAL/started-nats" ]; then stop_pid "$LOCAL/nats.pid" NATS; rm -f "$LOCAL/started-nats"; fi
if [ -f "$LOCAL/started-postgres" ]; then
  ver="$(cat "$LOCAL/started-postgres")"
  say "stopping PostgreSQL $ver"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main stop || true
  rm -f "$LOCAL/started-postgres"
fi
say "stopped"
