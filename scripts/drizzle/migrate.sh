#!/usr/bin/env bash
# Run drizzle-orm's own migrate() (node-postgres) at an exact version.
#
#   scripts/drizzle/migrate.sh VERSION URL FOLDER [--schema S] [--table T]
#
# Installs drizzle-orm@VERSION with install.sh (cached; see README.md), then runs migrate.mjs
# with modules resolved from that install. Prints one JSON line on stdout, e.g.
#   {"ok":true,"version":"0.45.4","schema":"drizzle","table":"__drizzle_migrations","rows_before":0,"rows_after":6,"applied":6}
#   {"ok":false,"version":"0.45.4",...,"error":"Failed query: ...","cause":"...","code":"25001",...}
# Exit 0 on success, 1 on error (also when the install fails), 2 on a usage error.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

json_error() { # CODE MESSAGE
  local msg=$2
  msg=${msg//\\/\\\\}; msg=${msg//\"/\\\"}; msg=${msg//$'\n'/\\n}; msg=${msg//$'\t'/\\t}
  printf '{"ok":false,"error":"%s"}\n' "$msg"
  exit "$1"
}

[ $# -ge 3 ] || json_error 2 "usage: migrate.sh VERSION URL FOLDER [--schema S] [--table T]"
VERSION=$1; shift

ERR=$(mktemp)
trap 'rm -f "$ERR"' EXIT
if ! OUT=$("$HERE/install.sh" "$VERSION" 2>"$ERR"); then
  cat "$ERR" >&2
  json_error 1 "install of drizzle-orm $VERSION failed: $(grep 'install.sh:' "$ERR" | tail -n 1)"
fi
# Keep install.sh's messages (npm progress on a first install) on stderr.
cat "$ERR" >&2
DIR=$(printf '%s\n' "$OUT" | tail -n 1)

node "$HERE/migrate.mjs" --install-dir "$DIR" "$@"
