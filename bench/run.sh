#!/usr/bin/env bash
# Benchmark: db-init against the psql floor and Drizzle's own migrator, in one run, on a
# throwaway local PostgreSQL with default durability (fsync on). Prints a Markdown table.
#   bench/run.sh [rounds]        (default 5 rounds, tools interleaved)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-temp.sh
scripts/build-static.sh --quiet
start_temp_pg on
trap stop_temp_pg EXIT
export PG_TEMP_DIR PG_TEMP_PORT PG_BIN PG_TEMP_URL
export PG_RUN_AS=""; [ "$(id -u)" = 0 ] && PG_RUN_AS=postgres
python3 bench/bench.py "${1:-5}"
