#!/usr/bin/env bash
# `make up`: dependencies, build, migrate, demo tenant, all targets in one
# process, in the background. `make down` stops it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

if [ -f "$LOCAL/jiesu.pid" ] && kill -0 "$(cat "$LOCAL/jiesu.pid")" 2>/dev/null; then
  say "Jiesu is already running (pid $(cat "$LOCAL/jiesu.pid")); 'make down' stops it"
else
  ensure_cargo
  ensure_postgres
  ensure_nats
  say "building"
  cargo build --bin jiesu
  JIESU="$ROOT/target/debug/jiesu"
  "$JIESU" dev-keys --dir "$LOCAL/dev" >/dev/null
  # Notification asks intake for citizens' contacts with this key; intake
  # knows only its SHA-256.
  CONTACT_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  CONTACT_KEY_SHA256="$(printf %s "$CONTACT_KEY" | sha256sum | cut -d' ' -f1)"
  # Dispatch asks grid where a ticket lies with this one.
  GRID_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  GRID_KEY_SHA256="$(printf %s "$GRID_KEY" | sha256sum | cut -d' ' -f1)"
  # It holds the database password: readable by you only.
  (umask 077; : > "$LOCAL/env")
  cat > "$LOCAL/env" <<ENV
export JIESU__DATABASE__URL='$DB_URL'
export JIESU__BUS__URL='$NATS_URL'
export JIESU__AUTH__DEV_SIGNING_KEY_FILE='$LOCAL/dev/jwt-dev-key.pem'
export JIESU__PII__KEYRING_FILE='$LOCAL/dev/pii-keyring.json'
export JIESU__NOTIFICATION__CONTACT_KEY='$CONTACT_KEY'
export JIESU__INTAKE__CONTACT_KEY_DIGESTS='$CONTACT_KEY_SHA256'
export JIESU__DISPATCH__GRID_URL='http://127.0.0.1:50053'
export JIESU__DISPATCH__GRID_KEY='$GRID_KEY'
export JIESU__GRID__SERVICE_KEY_DIGESTS='$GRID_KEY_SHA256'
ENV
  # shellcheck disable=SC1091
  source "$LOCAL/env"
  say "migrating and loading the demo tenant 370202 (青岛市市南区)"
  "$JIESU" seed-demo
  port_open 127.0.0.1 8080 && die "port 8080 is taken; stop what uses it or set JIESU__GATEWAY__HTTP_ADDR"
  say "starting all targets (log: .local/jiesu.log)"
  setsid "$JIESU" serve --target all </dev/null >>"$LOCAL/jiesu.log" 2>&1 &
  echo $! > "$LOCAL/jiesu.pid"
  for _ in $(seq 1 150); do
    http_ok 127.0.0.1 8080 /healthz && break
    kill -0 "$(cat "$LOCAL/jiesu.pid")" 2>/dev/null || die "jiesu exited; see .local/jiesu.log"
    sleep 0.2
  done
  http_ok 127.0.0.1 8080 /healthz || die "the gateway did not answer; see .local/jiesu.log"
fi

cat <<MSG

Jiesu is running.
  Gateway:  http://127.0.0.1:8080        (OpenAPI: http://127.0.0.1:8080/api/v1/openapi.json)
  Admin:    http://127.0.0.1:9090/readyz  (and /healthz, /metrics)
  Log:      .local/jiesu.log

Get a token and call the API:
  source .local/env
  TOKEN=\$(./target/debug/jiesu token --tenant 370202 --role agent)
  curl -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:8080/api/v1/categories

'make down' stops what 'make up' started.
MSG
