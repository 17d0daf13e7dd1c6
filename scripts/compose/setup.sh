#!/usr/bin/env bash
# Makes deploy/compose.yaml runnable on a Debian machine without Docker, for the Compose test
# (tests/it/compose.rs) and by hand:
#   1. installs podman and runc (apt), the PostgreSQL server files if missing (apt), and
#      docker-compose 1.29.2 (PyPI) in a venv in the state directory;
#   2. builds the static binary (scripts/build-static.sh);
#   3. starts `podman system service` on a private socket (scripts/compose/service.sh);
#   4. builds the three images (scripts/compose/images.sh).
# Idempotent: what is there already is kept. Fails with a message naming what is missing.
#
#   --no-install   check the tools instead of installing them (the test runs this)
#
# Afterwards, by hand (the test does the same with a project name of its own):
#   scripts/compose/run.sh docker-compose -p demo -f deploy/compose.yaml up -d
#   scripts/compose/run.sh docker-compose -p demo -f deploy/compose.yaml down -v
#   scripts/compose/service.sh stop
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

install=1
[ "${1:-}" = --no-install ] && install=""

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
updated=""
apt_install() {
  [ -n "$install" ] || compose_fail "$* missing (run scripts/compose/setup.sh without --no-install)"
  command -v apt-get >/dev/null || compose_fail "cannot install $*: no apt-get on this machine"
  echo "setup: installing $* (apt)"
  if [ -z "$updated" ]; then
    $sudo apt-get update -qq || compose_fail "apt-get update failed; cannot install $*"
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null ||
    compose_fail "apt-get install $* failed"
}

# --- podman, runc, the PostgreSQL server files ------------------------------------------------
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
  apt_install podman runc
fi
command -v podman >/dev/null || compose_fail "podman is still missing after installing it"
command -v runc >/dev/null || compose_fail "runc is still missing after installing it"
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_install postgresql
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || compose_fail "no PostgreSQL server in /usr/lib/postgresql"
for tool in setsid timeout ldd tar sha256sum; do
  command -v "$tool" >/dev/null || compose_fail "$tool is missing"
done

write_containers_conf
podman info >"$STATE/podman-info.log" 2>&1 ||
  compose_fail "podman is installed but does not work here (settings: $CONTAINERS_CONF): $(tail -n 5 "$STATE/podman-info.log")"

# --- docker-compose 1.29.2 ------------------------------------------------------------------
have_compose() {
  [ -x "$VENV/bin/docker-compose" ] && "$VENV/bin/docker-compose" version --short 2>/dev/null | grep -qx 1.29.2
}
if ! have_compose; then
  [ -n "$install" ] || compose_fail "docker-compose 1.29.2 missing in $VENV (run scripts/compose/setup.sh without --no-install)"
  # docker-compose 1.29 needs Python < 3.12 (distutils) and PyYAML 5, whose source build needs
  # Cython < 3; docker 7 and requests 2.32 broke docker-compose 1.29's transport.
  python=""
  for p in /usr/bin/python3 python3.11 python3.10 python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import sys; sys.exit(not (3, 7) <= sys.version_info < (3, 12))' 2>/dev/null; then
      python="$p"
      break
    fi
  done
  [ -n "$python" ] || compose_fail "no Python 3.7 to 3.11 for docker-compose 1.29.2 (apt-get install python3)"
  echo "setup: installing docker-compose 1.29.2 in $VENV ($("$python" --version))"
  rm -rf "$VENV"
  if ! "$python" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    apt_install python3-venv
    "$python" -m venv "$VENV" || compose_fail "$python -m venv failed"
  fi
  pip=("$VENV/bin/pip" install -q --disable-pip-version-check)
  "${pip[@]}" "cython<3" wheel "setuptools<70" || compose_fail "pip could not install the build tools for PyYAML"
  "${pip[@]}" --no-build-isolation "PyYAML==5.4.1" || compose_fail "pip could not install PyYAML 5.4.1"
  "${pip[@]}" "docker-compose==1.29.2" "docker==6.1.3" "requests==2.31.0" ||
    compose_fail "pip could not install docker-compose 1.29.2"
  have_compose || compose_fail "docker-compose 1.29.2 does not run from $VENV"
fi

# --- binary, service, images ------------------------------------------------------------------
echo "setup: building the static binary"
bash "$REPO/scripts/build-static.sh" --quiet || compose_fail "scripts/build-static.sh failed"
bash "$COMPOSE_SCRIPTS/service.sh" start
bash "$COMPOSE_SCRIPTS/images.sh"
echo "setup: ready: docker-compose $("$VENV/bin/docker-compose" version --short) on $DOCKER_HOST"
