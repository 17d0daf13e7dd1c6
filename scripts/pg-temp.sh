#!/usr/bin/env bash
# Sourced by the quick start and the benchmark: start_temp_pg starts a throwaway PostgreSQL
# cluster (initdb + pg_ctl in a temp dir, as user postgres when run as root) on a free local
# port and sets PG_TEMP_DIR, PG_TEMP_PORT, PG_BIN and PG_TEMP_URL; stop_temp_pg removes it.

pg_bin_dir() {
  local ctl
  if ctl=$(command -v pg_ctl 2>/dev/null); then dirname "$(readlink -f "$ctl")"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_pg_user() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# A port nothing listens on (bash's /dev/tcp: no python or netcat needed).
free_port() {
  local p
  for _ in $(seq 100); do
    p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  echo "no free port found" >&2; return 1
}

start_temp_pg() {
  local fsync=${1:-on}
  PG_BIN=$(pg_bin_dir)
  if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/pg_ctl" ]; then
    echo "PostgreSQL server binaries not found (Debian: apt-get install postgresql)" >&2
    return 1
  fi
  PG_TEMP_DIR=$(mktemp -d /tmp/db-init-pg.XXXXXX)
  PG_TEMP_PORT=$(free_port)
  [ "$(id -u)" = 0 ] && chown postgres "$PG_TEMP_DIR"
  as_pg_user "$PG_BIN/initdb" -D "$PG_TEMP_DIR/data" -U postgres -A trust -E UTF8 --no-locale >/dev/null
  # In the file rather than on pg_ctl's command line, so a stop and start keep them.
  cat >> "$PG_TEMP_DIR/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_TEMP_PORT
unix_socket_directories = '$PG_TEMP_DIR'
fsync = $fsync
log_line_prefix = '%m '
CONF
  as_pg_user "$PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -l "$PG_TEMP_DIR/server.log" -w start >/dev/null
  PG_TEMP_URL="postgres://postgres@127.0.0.1:$PG_TEMP_PORT/postgres"
}

stop_temp_pg() {
  [ -n "${PG_TEMP_DIR:-}" ] || return 0
  as_pg_user "$PG_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$PG_TEMP_DIR"
}
