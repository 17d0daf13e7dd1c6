# shellcheck shell=bash disable=SC2034
# Sourced by the scripts beside it: where the Compose test's tools and state live.
#
# deploy/compose.yaml runs with docker-compose 1.29.2 (PyPI, in a private venv) against podman's
# Docker-compatible API (`podman system service` on a private unix socket). Podman's settings for
# this machine (runc, cgroupfs, ulimits) are in a private containers.conf, not the machine's.
#
#   DB_INIT_COMPOSE_STATE   state directory (default: ~/.cache/db-init-compose)

COMPOSE_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$COMPOSE_SCRIPTS/../.." && pwd)"
STATE="${DB_INIT_COMPOSE_STATE:-${XDG_CACHE_HOME:-$HOME/.cache}/db-init-compose}"
VENV="$STATE/venv"
SOCKET="$STATE/podman.sock"
SERVICE_PID="$STATE/service.pid"
SERVICE_LOG="$STATE/service.log"
HEALTH_PID="$STATE/health.pid"

export CONTAINERS_CONF="$STATE/containers.conf"
export DOCKER_HOST="unix://$SOCKET"
export PATH="$VENV/bin:$PATH"
# docker-compose 1.29 would otherwise try the "docker" CLI for builds and print hints about it.
export COMPOSE_DOCKER_CLI_BUILD=0 DOCKER_BUILDKIT=0

# The images the test builds; deploy/compose.yaml's defaults are the public ones.
export POSTGRES_IMAGE="${POSTGRES_IMAGE:-localhost/db-init-test-postgres:latest}"
export DB_INIT_IMAGE="${DB_INIT_IMAGE:-localhost/db-init-test:latest}"
export WEB_IMAGE="${WEB_IMAGE:-localhost/db-init-test-web:latest}"

BINARY="$REPO/target/x86_64-unknown-linux-gnu/release/db-init"

compose_fail() {
  echo "compose setup: $*" >&2
  exit 1
}

write_containers_conf() {
  mkdir -p "$STATE"
  cat >"$CONTAINERS_CONF.tmp" <<'EOF'
# Private podman settings for the Compose test (scripts/compose/env.sh), so the machine's own
# configuration stays as it is: podman's defaults (crun, systemd cgroups, the host's nofile and
# nproc limits) do not work on the CI machines, which have no systemd.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
  mv "$CONTAINERS_CONF.tmp" "$CONTAINERS_CONF"
}
