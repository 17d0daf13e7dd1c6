#!/usr/bin/env bash
# Quick start: build db-init, start a throwaway PostgreSQL, run the main job with this repo's
# migrations/ and seeds/ (a small multi-tenant app in Drizzle's format), print the status,
# run it again (nothing to do), and remove the database.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-temp.sh
echo "== building db-init (release; the first build takes a few minutes)"
cargo build --release --locked
start_temp_pg
trap stop_temp_pg EXIT
export DATABASE_URL="$PG_TEMP_URL"
echo "== db-init run (fresh database)"
target/release/db-init run
echo "== db-init status"
target/release/db-init status
echo "== db-init run (again: nothing to do)"
target/release/db-init run
