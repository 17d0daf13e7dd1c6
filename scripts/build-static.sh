#!/usr/bin/env bash
# Builds the static release binary: target/x86_64-unknown-linux-gnu/release/db-init.
# RUSTFLAGS with an explicit --target applies to the binary only, not to build scripts and
# proc macros (which cannot be static).
# getrandom 0.4 looks up glibc's getrandom() with dlsym, which finds nothing in a static
# binary, and then needs /dev/urandom; linux_getrandom calls it directly, so the binary needs
# no /dev at all (an empty root file system has none).
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS='-C target-feature=+crt-static --cfg getrandom_backend="linux_getrandom"' cargo build --release --locked --target x86_64-unknown-linux-gnu "$@"
