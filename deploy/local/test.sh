#!/usr/bin/env bash
# `make test`: the whole suite against real PostgreSQL and NATS, found or
# started the same way as `make up`.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
ensure_cargo
ensure_postgres
ensure_nats
ensure_drill_servers
ensure_python
export JIESU_TEST_DATABASE_URL="$DB_URL"
export JIESU_TEST_NATS_URL="$NATS_URL"
say "running the test suite (PostgreSQL at ${DB_URL##*@}, NATS at ${NATS_URL##*@})"
started=$(date +%s)
cargo test --workspace --no-fail-fast "$@"
say "test suite passed in $(( $(date +%s) - started ))s"
say "contract run: schemathesis against the served OpenAPI document, as every role"
started=$(date +%s)
cargo test --workspace --test http contract::schemathesis -- --ignored --nocapture
say "contract run passed in $(( $(date +%s) - started ))s (target/contract/report.md)"
for report in target/tmp/e2e/report.md target/tmp/e2e/drills.md; do
  if [ -f "$report" ]; then cat "$report"; fi
done
