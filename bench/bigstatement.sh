#!/usr/bin/env bash
# Peak RSS of db-init applying one migration that is a single large statement, and one of the
# same size made of many statements, on a throwaway local PostgreSQL (GNU time -v). Target:
# peak RSS <= 1.3 x the largest statement + 10 MB (the many-statement file: 1.3 x the file).
#   bench/bigstatement.sh [MB]        (default 100)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/pg-temp.sh
MB=${1:-100}
BIN=${DB_INIT_BIN:-target/release/db-init}
[ -x "$BIN" ] || cargo build --locked --release --quiet
start_temp_pg off
WORK=$(mktemp -d /tmp/db-init-big.XXXXXX)
trap 'stop_temp_pg; rm -rf "$WORK"' EXIT
python3 - "$WORK" "$MB" <<'PY'
import os, sys
work, mb = sys.argv[1], int(sys.argv[2])
size = mb * 1000 * 1000
one = os.path.join(work, "single", "migrations"); os.makedirs(one)
with open(os.path.join(one, "0001_big.sql"), "w") as f:
    # One statement: a single string literal of `size` bytes.
    f.write("CREATE TABLE big AS SELECT length('")
    f.write("x" * (size - 60))
    f.write("') AS n;\n")
many = os.path.join(work, "many", "migrations"); os.makedirs(many)
with open(os.path.join(many, "0001_big.sql"), "w") as f:
    f.write("CREATE TABLE big (n int);\n")
    row = "INSERT INTO big SELECT length('" + "x" * 9950 + "');\n"
    for _ in range(size // len(row)):
        f.write(row)
PY
for kind in single many; do
  "$PG_BIN/psql" -X -q -d "$PG_TEMP_URL" -c "DROP DATABASE IF EXISTS big_$kind" -c "CREATE DATABASE big_$kind"
  size=$(stat -c %s "$WORK/$kind/migrations/0001_big.sql")
  largest=$size; [ "$kind" = many ] && largest=10000
  cd "$WORK/$kind"
  /usr/bin/time -v -o "$WORK/time.$kind" env DATABASE_URL="${PG_TEMP_URL%/postgres}/big_$kind" \
    "$OLDPWD/$BIN" migrate --seeds ./none >/dev/null 2>"$WORK/log.$kind" || { cat "$WORK/log.$kind"; exit 1; }
  cd "$OLDPWD"
  kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$WORK/time.$kind")
  python3 - "$kind" "$size" "$largest" "$kb" <<'PY'
import sys
kind, size, largest, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rss = kb * 1024
# The file is held once whatever its shape: the bound is on the largest statement plus that.
target = 1.3 * largest + 10e6 if kind == "single" else 1.3 * size + 10e6
print(f"| {kind} | file {size/1e6:.1f} MB | largest statement {largest/1e6:.2f} MB | peak RSS {rss/1e6:.1f} MB "
      f"| {rss/size:.2f}x the file | target {target/1e6:.1f} MB: {'met' if rss <= target else 'NOT met'} |")
PY
done
