#!/usr/bin/env bash
# The Docker-compatible API for docker-compose: `podman system service` on a private socket.
#
#   service.sh start   start it unless it answers already (pid file, log in the state dir)
#   service.sh stop    stop it and its healthcheck runner
#   service.sh status  exit 0 when it answers
#
# Podman schedules healthchecks with systemd timers; without systemd (as here) they never run and
# a service with a healthcheck stays "starting", so `condition: service_healthy` would wait
# forever. A small runner beside the service runs `podman healthcheck run` instead: every second
# while a container is starting, then at its own interval.
#
# Both processes are bounded (DB_INIT_COMPOSE_SERVICE_TIMEOUT, default 2 hours), so a run that
# never calls stop leaves nothing behind for long.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"

limit="${DB_INIT_COMPOSE_SERVICE_TIMEOUT:-7200}"

answers() {
  [ -S "$SOCKET" ] && podman --url "unix://$SOCKET" version >/dev/null 2>&1
}

alive() { # pidfile
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_pid() { # pidfile
  if alive "$1"; then
    local pid
    pid="$(cat "$1")"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$1"
}

health_runner() {
  local service="$1"
  declare -A next=()
  while kill -0 "$service" 2>/dev/null; do
    local now
    now="$(date +%s)"
    for line in $(podman ps --filter health=starting --filter health=healthy --filter health=unhealthy \
      --format '{{.ID}}/{{.Status}}' 2>/dev/null | tr ' ' '_'); do
      local id="${line%%/*}"
      if [[ "$line" == *starting* ]] || [ "${next[$id]:-0}" -le "$now" ]; then
        podman healthcheck run "$id" >/dev/null 2>&1 || true
        local every
        every="$(podman inspect --format '{{printf "%.0f" .Config.Healthcheck.Interval.Seconds}}' "$id" 2>/dev/null || true)"
        [[ "$every" =~ ^[1-9][0-9]*$ ]] || every=30
        next[$id]=$(( now + every ))
      fi
    done
    sleep 1
  done
}

case "${1:-}" in
start)
  command -v podman >/dev/null || compose_fail "podman is not installed: run scripts/compose/setup.sh"
  write_containers_conf
  if answers && alive "$SERVICE_PID"; then
    alive "$HEALTH_PID" || compose_fail "the podman service runs but its healthcheck runner does not: run $0 stop, then start"
    echo "service: running on $SOCKET"
    exit 0
  fi
  stop_pid "$HEALTH_PID"
  stop_pid "$SERVICE_PID"
  rm -f "$SOCKET"
  # setsid: each runs in its own process group, which stop ends as a whole.
  setsid timeout "$limit" podman system service --time=0 "unix://$SOCKET" \
    >"$SERVICE_LOG" 2>&1 </dev/null &
  echo $! >"$SERVICE_PID"
  for _ in $(seq 100); do
    answers && break
    alive "$SERVICE_PID" || compose_fail "podman system service exited: $(tail -n 5 "$SERVICE_LOG")"
    sleep 0.1
  done
  answers || compose_fail "podman system service does not answer on $SOCKET after 10 s: $(tail -n 5 "$SERVICE_LOG")"
  service="$(cat "$SERVICE_PID")"
  export -f health_runner
  setsid timeout "$limit" bash -c "health_runner $service" >>"$SERVICE_LOG" 2>&1 </dev/null &
  echo $! >"$HEALTH_PID"
  echo "service: started on $SOCKET (pid $service, log $SERVICE_LOG)"
  ;;
stop)
  stop_pid "$HEALTH_PID"
  stop_pid "$SERVICE_PID"
  rm -f "$SOCKET"
  echo "service: stopped"
  ;;
status)
  answers
  ;;
*)
  echo "usage: $0 start|stop|status" >&2
  exit 2
  ;;
esac
