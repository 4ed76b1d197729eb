# Shared by `make up`, `make down` and `make test`: find or install and start
# PostgreSQL and NATS (JetStream), remembering what this checkout started so
# `make down` stops exactly that.
#
# Honoured: JIESU__DATABASE__URL (a PostgreSQL server URL, no database) and
# JIESU__BUS__URL. When they are set and reachable nothing is installed.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
LOCAL="$ROOT/.local"
mkdir -p "$LOCAL"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root for: $* (run it as root, or install the packages yourself)"; fi
}

apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found: install $* yourself, or set JIESU__DATABASE__URL / JIESU__BUS__URL"
  say "installing Debian packages: $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# port_open HOST PORT
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# host and port of a URL such as nats://user:pw@host:4222
url_host() { local h="${1#*://}"; h="${h##*@}"; h="${h%%/*}"; echo "${h%%:*}"; }
url_port() { local h="${1#*://}"; h="${h##*@}"; h="${h%%/*}"; [[ "$h" == *:* ]] && echo "${h##*:}" || echo "$2"; }

wait_port() { # host port what
  for _ in $(seq 1 100); do port_open "$1" "$2" && return 0; sleep 0.2; done
  die "$3 did not come up on $1:$2"
}

# -w: never prompt for a password (fail instead).
pg_works() { PGCONNECT_TIMEOUT=3 psql -w "$1/postgres" -tAc 'SELECT 1' >/dev/null 2>&1; }

# http_ok HOST PORT PATH: a 200 answer, without needing curl.
http_ok() {
  { exec 3<>"/dev/tcp/$1/$2"; } 2>/dev/null || return 1
  printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
  local status; IFS= read -r -t 5 status <&3 || status=""
  exec 3>&-
  [[ "$status" == *" 200 "* ]]
}

ensure_postgres() {
  command -v psql >/dev/null 2>&1 || apt_install postgresql-client
  if [ -n "${JIESU__DATABASE__URL:-}" ]; then
    pg_works "$JIESU__DATABASE__URL" || die "JIESU__DATABASE__URL is set but PostgreSQL does not answer there"
    DB_URL="$JIESU__DATABASE__URL"; return
  fi
  if ! port_open 127.0.0.1 5432; then
    if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then apt_install postgresql; fi
    local ver; ver="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    [ -n "$ver" ] || as_root pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -n 1)" main
    ver="$(ls /etc/postgresql | sort -V | tail -n 1)"
    say "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start
    echo "$ver" > "$LOCAL/started-postgres"
    wait_port 127.0.0.1 5432 PostgreSQL
  fi
  local u pw_file="$LOCAL/pg-password"
  local candidates=("postgres://postgres@127.0.0.1:5432" "postgres://$(id -un)@127.0.0.1:5432")
  [ -f "$pw_file" ] && candidates=("postgres://jiesu:$(cat "$pw_file")@127.0.0.1:5432" "${candidates[@]}")
  for u in "${candidates[@]}"; do
    if pg_works "$u"; then DB_URL="$u"; return; fi
  done
  # A fresh Debian server asks for passwords on TCP: make our own role with
  # a random password kept in .local/pg-password (readable by you only). It
  # may create databases, nothing more.
  say "creating the PostgreSQL role jiesu (local development)"
  local pw; pw="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
  (umask 077; printf '%s' "$pw" > "$pw_file")
  (cd / && as_root runuser -u postgres -- psql -qc "DO \$\$BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname='jiesu') THEN ALTER ROLE jiesu LOGIN CREATEDB PASSWORD '$pw'; ELSE CREATE ROLE jiesu LOGIN CREATEDB PASSWORD '$pw'; END IF; END\$\$;") \
    || die "cannot create a PostgreSQL role; set JIESU__DATABASE__URL to a server URL whose user may create databases"
  DB_URL="postgres://jiesu:$pw@127.0.0.1:5432"
  pg_works "$DB_URL" || die "PostgreSQL refuses the jiesu role; set JIESU__DATABASE__URL"
}

ensure_nats() {
  NATS_URL="${JIESU__BUS__URL:-nats://127.0.0.1:4222}"
  local host port; host="$(url_host "$NATS_URL")"; port="$(url_port "$NATS_URL" 4222)"
  if port_open "$host" "$port"; then return; fi
  [ -z "${JIESU__BUS__URL:-}" ] || die "JIESU__BUS__URL is set but nothing answers at $host:$port"
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_install nats-server
  local bin; bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  say "starting NATS with JetStream (data in .local/nats)"
  mkdir -p "$LOCAL/nats"
  setsid "$bin" -a 127.0.0.1 -p "$port" -js -sd "$LOCAL/nats" -l "$LOCAL/nats.log" -P "$LOCAL/nats.pid" </dev/null >/dev/null 2>&1 &
  echo started > "$LOCAL/started-nats"
  wait_port 127.0.0.1 "$port" NATS
}

# The fault drills (tests/e2e/drills.rs) start a PostgreSQL cluster and a
# nats-server of their own: they need the server binaries even where the
# suite's servers run elsewhere.
ensure_drill_servers() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_install postgresql
  command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || apt_install nats-server
}

# The contract run (tests/contract/run.sh) keeps schemathesis in a Python
# virtualenv under target/contract/.
ensure_python() {
  if command -v python3 >/dev/null 2>&1 && python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then return; fi
  apt_install python3 python3-venv
}

ensure_cargo() {
  command -v cargo >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/cargo" ] || die "cargo not found: install Rust with rustup first"
  command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
  command -v cc >/dev/null 2>&1 || apt_install gcc libc6-dev
}
