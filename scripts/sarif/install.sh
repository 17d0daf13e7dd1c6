#!/usr/bin/env bash
# Install Microsoft's SARIF Multitool (the SARIF SDK's validator: the 2.1.0 JSON schema plus
# its rules) from npm, at an exact version, into a cache folder; print the path of its
# executable as the last line of stdout (npm's own output goes to stderr).
#
#   scripts/sarif/install.sh
#
# Idempotent: a complete install (marker file) is reused; an interrupted one is redone. Built
# in a temporary sibling folder and renamed into place, so a half install never looks complete.
# Environment: DB_INIT_TOOLS_CACHE (cache root, default ~/.cache/db-init-tools).
# Exit codes: 0 ok, 3 npm missing, 4 npm install failed.
set -euo pipefail

VERSION=5.7.0
PACKAGE=@microsoft/sarif-multitool-linux

die() { local code=$1; shift; echo "install.sh: $*" >&2; exit "$code"; }
command -v npm >/dev/null 2>&1 || die 3 "npm not found on PATH (apt-get install npm)"

CACHE=${DB_INIT_TOOLS_CACHE:-${HOME:?HOME is not set; set DB_INIT_TOOLS_CACHE}/.cache/db-init-tools}
DIR="$CACHE/sarif-multitool-$VERSION"
TOOL="$DIR/node_modules/$PACKAGE/Sarif.Multitool"
if [ -f "$DIR/.db-init-install-complete" ] && [ -x "$TOOL" ]; then
  echo "$TOOL"
  exit 0
fi
mkdir -p "$CACHE"
TMP=$(mktemp -d "$CACHE/.sarif-multitool-$VERSION.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
echo '{"private":true}' > "$TMP/package.json"
npm install --prefix "$TMP" --no-audit --no-fund --ignore-scripts --save-exact "$PACKAGE@$VERSION" >&2 \
  || die 4 "npm install $PACKAGE@$VERSION failed"
chmod +x "$TMP/node_modules/$PACKAGE/Sarif.Multitool"
touch "$TMP/.db-init-install-complete"
rm -rf "$DIR"
mv "$TMP" "$DIR"
trap - EXIT
echo "$TOOL"
