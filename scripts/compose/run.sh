#!/usr/bin/env bash
# Runs a command with the Compose test's settings (scripts/compose/env.sh): DOCKER_HOST on the
# private podman socket, the docker-compose venv first on PATH, the private containers.conf and
# the test images in POSTGRES_IMAGE, DB_INIT_IMAGE and WEB_IMAGE. For example:
#   scripts/compose/run.sh docker-compose -p demo -f deploy/compose.yaml up -d
#   scripts/compose/run.sh podman ps -a
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
exec "$@"
