#!/usr/bin/env bash
# The contract run: schemathesis against the OpenAPI document a running
# gateway serves, as every role, with a fixed seed and example count.
#
#   tests/contract/run.sh BASE_URL TOKENS_FILE
#
# BASE_URL is the gateway (http://127.0.0.1:PORT); TOKENS_FILE has one
# `role token` per line. The gateway suite's `contract` test starts the stack,
# mints the tokens and calls this; `make test` runs that test (decision
# 0029). For each role, the operations it may call (docs/access-roles.csv)
# go through every phase; those it is refused get a short fuzzing pass. The
# virtualenv (pinned by requirements.txt) and every report go to
# target/contract/. Exit status 0 means zero failures and zero errors.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
BASE="${1:?usage: run.sh BASE_URL TOKENS_FILE}"
TOKENS="${2:?usage: run.sh BASE_URL TOKENS_FILE}"
OUT="${CARGO_TARGET_DIR:-$ROOT/target}/contract"
VENV="$OUT/venv"
ROLES_TABLE="$ROOT/docs/access-roles.csv"

# Repeatable: one seed, one example count, no example database carried
# between runs, one worker (so requests reach the server in one order).
SEED="${JIESU_CONTRACT_SEED:-12345}"
MAX_EXAMPLES="${JIESU_CONTRACT_MAX_EXAMPLES:-8}"
REFUSED_EXAMPLES=3
CHECKS="${JIESU_CONTRACT_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method}"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

mkdir -p "$OUT"
stamp="$VENV/.requirements"
if ! [ -x "$VENV/bin/schemathesis" ] || ! cmp -s "$HERE/requirements.txt" "$stamp"; then
  command -v python3 >/dev/null 2>&1 || { echo "python3 not found: the contract run needs it" >&2; exit 2; }
  say "creating the schemathesis virtualenv in $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
  cp "$HERE/requirements.txt" "$stamp"
fi

export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=hooks
# No telemetry, no colours in the logs kept under target/.
export SCHEMATHESIS_TELEMETRY=false NO_COLOR=1

# The document under test, kept with the reports.
"$VENV/bin/python" - "$BASE/api/v1/openapi.json" "$OUT/openapi.json" <<'PY'
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=30) as r, open(sys.argv[2], "wb") as f:
    f.write(r.read())
PY

# run ROLE TOKEN PASS PHASES EXAMPLES: one schemathesis run over the
# operations `plan.py` lists for the role and pass; sets $status, and
# appends a row to the report.
run() {
  local role="$1" token="$2" pass="$3" phases="$4" examples="$5"
  local log="$OUT/$role.$pass.log" args=() label labels
  labels=$("$VENV/bin/python" "$HERE/plan.py" "$OUT/openapi.json" "$ROLES_TABLE" "$role" "$pass")
  while IFS= read -r label; do
    if [ -n "$label" ]; then args+=(--include-name "$label"); fi
  done <<< "$labels"
  if [ "${#args[@]}" -eq 0 ]; then status=0; return; fi
  say "schemathesis as $role: $(( ${#args[@]} / 2 )) operations, $pass"
  local started; started=$(date +%s)
  set +e
  (cd "$OUT" && "$VENV/bin/schemathesis" run "$OUT/openapi.json" \
    --url "$BASE" \
    "${args[@]}" \
    --phases "$phases" \
    --checks "$CHECKS" \
    --seed "$SEED" \
    --max-examples "$examples" \
    --generation-database none \
    --workers 1 \
    --continue-on-failure \
    --request-timeout 30 \
    --header "Authorization: Bearer $token" \
    --report junit --report-junit-path "$OUT/$role.$pass.junit.xml" \
    --no-color) > "$log" 2>&1
  status=$?
  set -e
  local took=$(( $(date +%s) - started ))
  # The summary of a run: "Tested: N", "N generated, ...", "... N unique
  # failures", "... N errors ...".
  local ops cases fails errors
  ops=$(sed -nE 's/^ *Tested: ([0-9]+).*/\1/p' "$log" | tail -n1)
  cases=$(sed -nE 's/^ *([0-9]+) generated.*/\1/p' "$log" | tail -n1)
  fails=$(sed -nE 's/.* ([0-9]+) unique failures?.*/\1/p' "$log" | tail -n1)
  errors=$(sed -nE 's/^=+ .*\b([0-9]+) errors?\b.*/\1/p' "$log" | tail -n1)
  echo "| $role | $pass | ${ops:-?} | ${cases:-?} | ${fails:-0} | ${errors:-0} | ${took}s |" >> "$report"
  if [ "$status" -ne 0 ]; then
    say "schemathesis as $role ($pass): failures or errors (exit $status); see $log"
    sed -n '/\(FAILURES\|ERRORS\) ===/,/SUMMARY ===/p' "$log" | head -n 400 >&2
  fi
}

report="$OUT/report.md"
{
  echo "# Contract run (schemathesis $("$VENV/bin/schemathesis" --version | awk '{print $NF}'))"
  echo
  echo "Seed $SEED. Operations a role may call: every phase (examples, coverage,"
  echo "fuzzing, stateful), at most $MAX_EXAMPLES examples per operation and phase."
  echo "Operations it is refused: fuzzing, $REFUSED_EXAMPLES examples. Checks: ${CHECKS//,/, }."
  echo
  echo "| role | pass | operations | test cases | failures | errors | time |"
  echo "|---|---|---|---|---|---|---|"
} > "$report"

failed=0
started_all=$(date +%s)
while read -r role token; do
  [ -n "${role:-}" ] || continue
  # JIESU_CONTRACT_ROLES=agent,citizen narrows a run while fixing things.
  if [ -n "${JIESU_CONTRACT_ROLES:-}" ] && [[ ",$JIESU_CONTRACT_ROLES," != *",$role,"* ]]; then continue; fi
  run "$role" "$token" deep examples,coverage,fuzzing,stateful "$MAX_EXAMPLES"
  [ "$status" -eq 0 ] || failed=1
  run "$role" "$token" refused fuzzing "$REFUSED_EXAMPLES"
  [ "$status" -eq 0 ] || failed=1
done < "$TOKENS"
echo >> "$report"
echo "Total: $(( $(date +%s) - started_all ))s." >> "$report"

cat "$report" >&2
exit "$failed"
