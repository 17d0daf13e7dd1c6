#!/usr/bin/env bash
# Benchmark: db-init against the psql floor and Drizzle's own migrator, in one run, on a
# throwaway local PostgreSQL with default durability (fsync on). Prints a Markdown table.
#   bench/run.sh [rounds]        (default 5 rounds, tools interleaved)
#   bench/run.sh readiness [rounds]           only the readiness race (bench/readiness.py)
#   bench/run.sh lockwait [rounds]            what a migration's lock wait costs a read load
#                                             (bench/lockwait.py, pgbench)
#   bench/run.sh lint [rounds]                the lock analysis beside squawk-cli (bench/lint.py)
#   bench/run.sh formats [rounds]             the 300 migrations in every format, beside dbmate
#                                             and sqlx-cli themselves (bench/formats.py)
#   bench/run.sh fleet [rounds] [databases]   many databases (default 1 round, 1,000 databases;
#                                             bench/fleet.py; needs python3-yaml for the floor)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-temp.sh
scripts/build-static.sh --quiet
start_temp_pg on
trap stop_temp_pg EXIT
export PG_TEMP_DIR PG_TEMP_PORT PG_BIN PG_TEMP_URL
export PG_RUN_AS=""; [ "$(id -u)" = 0 ] && PG_RUN_AS=postgres
if [ "${1:-}" = readiness ]; then
  python3 bench/readiness.py "${2:-5}"
  exit 0
fi
if [ "${1:-}" = lockwait ]; then
  python3 bench/lockwait.py "${2:-1}"
  exit 0
fi
if [ "${1:-}" = lint ]; then
  python3 bench/lint.py "${2:-5}"
  exit 0
fi
if [ "${1:-}" = formats ]; then
  python3 bench/formats.py "${2:-3}"
  exit 0
fi
if [ "${1:-}" = fleet ]; then
  python3 bench/fleet.py "${2:-1}" "${3:-1000}"
  exit 0
fi
python3 bench/bench.py "${1:-5}"
python3 bench/readiness.py "${1:-5}"
python3 bench/rollout.py "${1:-5}"
