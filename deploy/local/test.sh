#!/usr/bin/env bash
# `make test`: the whole suite against real PostgreSQL and NATS, found or
# started the same way as `make up`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_cargo
ensure_postgres
ensure_nats
export JIESU_TEST_DATABASE_URL="$DB_URL"
export JIESU_TEST_NATS_URL="$NATS_URL"
say "running the test suite (PostgreSQL at ${DB_URL##*@}, NATS at ${NATS_URL##*@})"
started=$(date +%s)
cargo test --workspace --no-fail-fast "$@"
say "test suite passed in $(( $(date +%s) - started ))s"
if [ -f target/tmp/e2e/report.md ]; then cat target/tmp/e2e/report.md; fi
