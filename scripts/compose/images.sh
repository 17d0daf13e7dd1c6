#!/usr/bin/env bash
# Builds the three local images deploy/compose.yaml runs in the Compose test (no image can be
# pulled here):
#   $POSTGRES_IMAGE  PostgreSQL from this machine's server files (Debian package postgresql),
#                    entrypoint scripts/compose/postgres-entrypoint.sh; rebuilt only when its
#                    inputs change
#   $DB_INIT_IMAGE   the Dockerfile's `host` target (FROM scratch, the static binary built here)
#   $WEB_IMAGE       a stand-in web app: the static binary alone running `db-init wait` against
#                    the stack's database, so its log records that it started and saw a ready
#                    database; it exits 0
# The static binary must exist (scripts/build-static.sh); setup.sh and the test build it first.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

[ -f "$CONTAINERS_CONF" ] || write_containers_conf
command -v podman >/dev/null || compose_fail "podman is not installed: run scripts/compose/setup.sh"
[ -x "$BINARY" ] || compose_fail "$BINARY is missing: run scripts/build-static.sh"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# --- PostgreSQL -----------------------------------------------------------------------------
pg_bin="$(printf '%s\n' /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1)"
[ -x "$pg_bin" ] || pg_bin=""
[ -n "$pg_bin" ] || compose_fail "no PostgreSQL server in /usr/lib/postgresql (apt-get install postgresql)"
pg_dir="$(dirname "$(dirname "$pg_bin")")"
pg_ver="$(basename "$pg_dir")"
[ -d "/usr/share/postgresql/$pg_ver" ] || compose_fail "/usr/share/postgresql/$pg_ver is missing"

stamp="$({
  echo "$pg_ver"
  "$pg_bin" --version
  cat "$COMPOSE_SCRIPTS/postgres-entrypoint.sh" "${BASH_SOURCE[0]}"
} | sha256sum | cut -c1-16)"
have="$(podman image inspect --format '{{index .Labels "db-init-test.stamp"}}' "$POSTGRES_IMAGE" 2>/dev/null || true)"
old_id="$(podman image inspect --format '{{.Id}}' "$POSTGRES_IMAGE" 2>/dev/null || true)"
if [ "$have" = "$stamp" ]; then
  echo "images: $POSTGRES_IMAGE is up to date (PostgreSQL $pg_ver)"
else
  echo "images: building $POSTGRES_IMAGE from the host's PostgreSQL $pg_ver"
  root="$work/root"
  mkdir -p "$root"/{bin,etc,tmp,usr/share,var/lib/postgresql/data,var/run/postgresql}
  chmod 1777 "$root/tmp"
  for d in "$pg_dir" "/usr/share/postgresql/$pg_ver" /usr/share/zoneinfo; do
    mkdir -p "$root$(dirname "$d")"
    cp -a "$d" "$root$d"
  done
  # Without the JIT provider (LLVM, about 150 MB) the server runs with jit off.
  rm -rf "$root$pg_dir"/lib/llvmjit* "$root$pg_dir/lib/bitcode"
  # The shared libraries of every program and module, with the dynamic loader.
  find "$root$pg_dir" /bin/dash -type f \( -perm -u+x -o -name '*.so' \) -print0 |
    xargs -0 sh -c 'ldd "$@" 2>/dev/null; true' ldd |
    awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $1 !~ /:$/ { print $1 }' |
    sort -u |
    while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  cp -L /bin/dash "$root/bin/sh"
  # initdb asks `locale -a` for the system locales; there are none but C and POSIX.
  printf '#!/bin/sh\necho C\necho POSIX\n' >"$root/bin/locale"
  chmod 0755 "$root/bin/locale"
  install -D -m 0755 "$COMPOSE_SCRIPTS/postgres-entrypoint.sh" "$root/usr/local/bin/docker-entrypoint.sh"
  printf 'root:x:0:0:root:/root:/bin/sh\npostgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\npostgres:x:999:\n' >"$root/etc/group"
  chown -R 999:999 "$root/var/lib/postgresql" "$root/var/run/postgresql"
  chmod 0700 "$root/var/lib/postgresql/data"
  tar --numeric-owner -C "$root" -cf "$work/root.tar" .
  podman import -q \
    --change "ENV PATH=$pg_dir/bin:/usr/local/bin:/usr/bin:/bin" \
    --change "ENV PGDATA=/var/lib/postgresql/data" \
    --change "ENV TZ=UTC" \
    --change "USER 999:999" \
    --change "VOLUME /var/lib/postgresql/data" \
    --change "EXPOSE 5432" \
    --change "STOPSIGNAL SIGINT" \
    --change 'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]' \
    --change "LABEL db-init-test.stamp=$stamp" \
    "$work/root.tar" "$POSTGRES_IMAGE" >/dev/null
  # The previous build, now untagged (unless a container still uses it).
  [ -z "$old_id" ] || podman rmi "$old_id" >/dev/null 2>&1 || true
fi

# --- db-init: the repository's Dockerfile, with the host's static binary ----------------------
echo "images: building $DB_INIT_IMAGE (Dockerfile, --target host)"
podman build -q --target host -t "$DB_INIT_IMAGE" -f "$REPO/Dockerfile" "$REPO" >/dev/null

# --- web: the static binary waiting for the database, then exiting 0 ------------------------
echo "images: building $WEB_IMAGE"
mkdir -p "$work/web"
cp "$BINARY" "$work/web/db-init"
cat >"$work/web/Containerfile" <<'EOF'
FROM scratch
COPY db-init /web
ENV DATABASE_URL=postgres://postgres:postgres@postgres:5432/app
USER 65532:65532
ENTRYPOINT ["/web", "wait", "--wait-timeout", "30s"]
EOF
podman build -q -t "$WEB_IMAGE" "$work/web" >/dev/null
echo "images: ready: $POSTGRES_IMAGE $DB_INIT_IMAGE $WEB_IMAGE"
