#!/usr/bin/env bash
# Install the peers the benchmarks compare db-init with, at exact versions, into a cache folder.
#
#   scripts/peers/install.sh dbmate|sqlx-cli|squawk-cli
#
# dbmate 2.36.0 (npm package, a static Go binary) and sqlx-cli 0.9.0 (cargo install, postgres
# and rustls only) and squawk-cli 2.66.0 (npm, the static linter the lock analysis is measured
# against) go to ${DB_INIT_TOOLS_CACHE:-$HOME/.cache/db-init-tools}/peers/<tool>-<version>/;
# the path of the tool's executable is the last line of stdout. A complete install (a marker
# file written last) is reused without asking the registry again; an interrupted one is redone.
# Exit codes: 0 ok, 2 usage, 3 npm or cargo missing, 4 the install failed.
set -euo pipefail

die() { local code=$1; shift; echo "peers/install.sh: $*" >&2; exit "$code"; }
[ $# -eq 1 ] || die 2 "usage: $0 dbmate|sqlx-cli|squawk-cli"
CACHE=${DB_INIT_TOOLS_CACHE:-$HOME/.cache/db-init-tools}/peers

case "$1" in
  dbmate) VERSION=2.36.0; EXE=node_modules/.bin/dbmate ;;
  sqlx-cli) VERSION=0.9.0; EXE=bin/sqlx ;;
  squawk-cli) VERSION=2.66.0; EXE=node_modules/.bin/squawk ;;
  *) die 2 "unknown tool $1 (dbmate, sqlx-cli or squawk-cli)" ;;
esac
DIR=$CACHE/$1-$VERSION
if [ -f "$DIR/.db-init-install-complete" ] && [ -x "$DIR/$EXE" ]; then
  echo "$DIR/$EXE"
  exit 0
fi
rm -rf "$DIR"
mkdir -p "$DIR"
case "$1" in
  dbmate|squawk-cli)
    command -v npm >/dev/null || die 3 "npm is not installed"
    echo '{"private": true}' > "$DIR/package.json"
    (cd "$DIR" && npm install --silent --no-audit --no-fund "$1@$VERSION" >&2) \
      || die 4 "npm install $1@$VERSION failed"
    ;;
  sqlx-cli)
    command -v cargo >/dev/null || die 3 "cargo is not installed"
    cargo install --locked --version "$VERSION" --no-default-features --features rustls,postgres \
      --root "$DIR" sqlx-cli >&2 || die 4 "cargo install sqlx-cli@$VERSION failed"
    ;;
esac
[ -x "$DIR/$EXE" ] || die 4 "$1 installed but $DIR/$EXE is missing"
touch "$DIR/.db-init-install-complete"
echo "$DIR/$EXE"
