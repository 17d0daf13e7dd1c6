#!/usr/bin/env bash
# Install the real Drizzle migrator, at exact versions, into a cache folder.
#
#   scripts/drizzle/install.sh VERSION
#
# VERSION is a drizzle-orm version: 0.45.4 or 1.0.0-rc.5. Installs, with npm and exact versions,
#   drizzle-orm@VERSION, pg (node-postgres) and the matching drizzle-kit
#   (0.45.4 -> drizzle-kit 0.31.11, 1.0.0-rc.5 -> drizzle-kit 1.0.0-rc.5)
# into ${DB_INIT_TOOLS_CACHE:-$HOME/.cache/db-init-tools}/drizzle-orm-VERSION/ and prints that
# directory as the last line of stdout (npm's own output goes to stderr).
#
# Idempotent: a complete install (marker file .db-init-install-complete matching the exact
# package list, and the packages present) is reused without running npm. An incomplete one
# (interrupted, edited, other package list) is removed and done again. The install is built in
# a temporary sibling folder and renamed into place, so a concurrent or interrupted run never
# leaves a half-installed folder that looks complete; with flock(1) present, concurrent runs for
# one version wait for each other (lock file .drizzle-orm-VERSION.lock in the cache root).
#
# Environment: DB_INIT_TOOLS_CACHE (cache root), DB_INIT_PG_VERSION (override the pg version,
# default 8.23.1, the one the shared fixtures were made with).
# Exit codes: 0 ok, 2 usage / unsupported version, 3 node or npm missing, 4 npm install failed.
set -euo pipefail

PG_VERSION=${DB_INIT_PG_VERSION:-8.23.1}

die() { local code=$1; shift; echo "install.sh: $*" >&2; exit "$code"; }

[ $# -eq 1 ] || die 2 "usage: $0 VERSION   (VERSION: 0.45.4 or 1.0.0-rc.5)"
VERSION=$1
case "$VERSION" in
  0.45.4) KIT_VERSION=0.31.11 ;;
  1.0.0-rc.5) KIT_VERSION=1.0.0-rc.5 ;;
  *) die 2 "unsupported drizzle-orm version '$VERSION' (supported: 0.45.4, 1.0.0-rc.5)" ;;
esac
case "$PG_VERSION" in
  8.*) ;;
  *) die 2 "DB_INIT_PG_VERSION must be a pg 8.x version, got '$PG_VERSION'" ;;
esac

command -v node >/dev/null 2>&1 || die 3 "node not found on PATH (install Node.js 18 or newer, e.g. apt-get install nodejs npm)"
command -v npm >/dev/null 2>&1 || die 3 "npm not found on PATH (install npm, e.g. apt-get install npm)"

CACHE=${DB_INIT_TOOLS_CACHE:-${HOME:?HOME is not set; set DB_INIT_TOOLS_CACHE}/.cache/db-init-tools}
DIR="$CACHE/drizzle-orm-$VERSION"
MARKER=.db-init-install-complete
# What a complete install holds; the marker must match it exactly.
WANT="drizzle-orm@$VERSION drizzle-kit@$KIT_VERSION pg@$PG_VERSION"

installed_versions() { # DIR -> "drizzle-orm@V drizzle-kit@V pg@V" as installed (one node call)
  node -e '
    const [dir, ...names] = process.argv.slice(1);
    const fs = require("fs");
    const v = (n) => { try { return JSON.parse(fs.readFileSync(dir + "/node_modules/" + n + "/package.json", "utf8")).version } catch (e) { return "missing" } };
    process.stdout.write(names.map((n) => n + "@" + v(n)).join(" "));
  ' "$1" drizzle-orm drizzle-kit pg 2>/dev/null || true
}

is_complete() { # DIR: marker matches and the packages are there at those versions
  local d=$1
  [ -f "$d/$MARKER" ] && [ "$(cat "$d/$MARKER")" = "$WANT" ] || return 1
  [ -f "$d/node_modules/drizzle-kit/bin.cjs" ] || return 1
  [ "$(installed_versions "$d")" = "$WANT" ]
}

if is_complete "$DIR"; then
  echo "$DIR"
  exit 0
fi

mkdir -p "$CACHE"
# One installer per version at a time; a run that waited finds the other's install complete.
if command -v flock >/dev/null 2>&1; then
  exec 9>"$CACHE/.drizzle-orm-$VERSION.lock"
  flock 9
  if is_complete "$DIR"; then
    echo "$DIR"
    exit 0
  fi
fi
# Leftovers of runs killed before they could clean up.
find "$CACHE" -mindepth 1 -maxdepth 1 -name ".drizzle-orm-*.tmp.*" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
if [ -e "$DIR" ]; then
  echo "install.sh: $DIR is incomplete or outdated; installing again" >&2
fi

TMP=$(mktemp -d "$CACHE/.drizzle-orm-$VERSION.tmp.XXXXXX")
cleanup() { if [ -n "${TMP:-}" ]; then rm -rf "$TMP"; fi; }
trap cleanup EXIT

cat > "$TMP/package.json" <<JSON
{
  "name": "db-init-drizzle-tools",
  "private": true,
  "description": "Installed by db-init scripts/drizzle/install.sh",
  "type": "module",
  "dependencies": {
    "drizzle-kit": "$KIT_VERSION",
    "drizzle-orm": "$VERSION",
    "pg": "$PG_VERSION"
  }
}
JSON

echo "install.sh: installing $WANT into $DIR" >&2
# --ignore-scripts: no package here needs its install script (esbuild's binary comes from its
# platform package @esbuild/<os>-<arch>, an optional dependency).
if ! (cd "$TMP" && npm install --no-audit --no-fund --ignore-scripts --no-update-notifier \
        --loglevel=warn >&2); then
  die 4 "npm install of $WANT failed (is the npm registry reachable? npm registry: $(npm config get registry 2>/dev/null))"
fi

if [ "$(installed_versions "$TMP")" != "$WANT" ] || [ ! -f "$TMP/node_modules/drizzle-kit/bin.cjs" ]; then
  die 4 "npm install finished but the installed packages are $(installed_versions "$TMP"), not $WANT"
fi
printf '%s' "$WANT" > "$TMP/$MARKER"

# Move into place. If another run finished first, keep its folder and drop ours.
if is_complete "$DIR"; then
  echo "$DIR"
  exit 0
fi
rm -rf "$DIR"
if ! mv -T "$TMP" "$DIR" 2>/dev/null; then
  is_complete "$DIR" || die 4 "could not move the install into $DIR"
else
  TMP=
fi
echo "$DIR"
exit 0
