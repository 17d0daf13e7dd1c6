#!/bin/sh
# Entrypoint of the test PostgreSQL image (scripts/compose/images.sh), a small stand-in for the
# official image: on first start it initialises $PGDATA (the data volume) with the superuser
# POSTGRES_USER (default postgres) whose password is POSTGRES_PASSWORD, creates POSTGRES_DB,
# then runs the server in the foreground as PID 1, listening on all addresses.
# Runs as the postgres user (uid 999); the image's data directory belongs to it.
set -eu
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
user="${POSTGRES_USER:-postgres}"
db="${POSTGRES_DB:-$user}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "postgres-entrypoint: POSTGRES_PASSWORD is not set" >&2
    exit 1
  fi
  echo "postgres-entrypoint: initialising $PGDATA"
  pwfile="/tmp/pwfile.$$"
  (umask 077 && printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile")
  initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  : >"$pwfile"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\";" | postgres --single -j -D "$PGDATA" postgres >/dev/null
  fi
  echo "postgres-entrypoint: database $db created"
fi

exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
