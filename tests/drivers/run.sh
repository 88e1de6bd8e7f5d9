#!/usr/bin/env bash
# Runs one driver session against the server named by PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE
# (and PGSSLMODE/PGSSLROOTCERT where set). Usage: run.sh psycopg|asyncpg|node|jdbc|psql
# Prints the driver's output; its last line is `DRIVER-OK <name>` on success. Exit 1 on failure.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="${1:-}"
limit=120 # seconds; each session bounds itself too, this is the backstop

for var in PGHOST PGPORT PGUSER PGPASSWORD PGDATABASE; do
  if [ -z "${!var:-}" ]; then
    echo "DRIVER-FAIL ${name:-?}: $var is not set" >&2
    exit 1
  fi
done

run_psql() {
  local tmp out status
  tmp="$(mktemp -d)"
  out="$tmp/out"
  PGAPPNAME=drv_psql timeout "$limit" psql -X -q -v ON_ERROR_STOP=1 -v copyout="$tmp/copyout" \
    -f "$here/psql_session.sql" >"$out" 2>&1
  status=$?
  cat "$out"
  # psql cannot exit non-zero on a failed \if check by itself: a missing final line is the failure.
  if [ "$status" -ne 0 ]; then
    echo "DRIVER-FAIL psql: psql exited with status $status" >&2
  elif ! grep -q 'Asynchronous notification "drv_psql_ch" with payload "hello" received' "$out"; then
    echo "DRIVER-FAIL psql: LISTEN/NOTIFY notification not printed" >&2
    status=1
  elif [ "$(tail -n 1 "$out")" != "DRIVER-OK psql" ]; then
    echo "DRIVER-FAIL psql: session did not reach its end" >&2
    status=1
  fi
  rm -rf "$tmp"
  [ "$status" -eq 0 ]
}

case "$name" in
  psycopg) timeout "$limit" python3 "$here/psycopg_session.py" ;;
  asyncpg) timeout "$limit" python3 "$here/asyncpg_session.py" ;;
  node) timeout "$limit" node "$here/node_pg_session.js" ;;
  jdbc) timeout "$limit" java -cp /usr/share/java/postgresql.jar "$here/JdbcSession.java" ;;
  psql) run_psql ;;
  *)
    echo "usage: $0 psycopg|asyncpg|node|jdbc|psql" >&2
    exit 2
    ;;
esac
status=$?
if [ "$status" -ne 0 ]; then
  [ "$status" -eq 124 ] && echo "DRIVER-FAIL $name: timed out after ${limit}s" >&2
  exit 1
fi
