#!/usr/bin/env bash
# Local infrastructure for tests, local runs and CI: PostgreSQL, then Kafka.
#
#   scripts/infra.sh up       start PostgreSQL (scripts/postgres.sh) then Kafka (scripts/kafka.sh)
#   scripts/infra.sh down     stop Kafka then PostgreSQL
#   scripts/infra.sh restart  down + up
#   scripts/infra.sh status   exit 0 when both answer
#
# Both scripts are idempotent: "up" on a running stack only checks it.
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

now_ms() { date +%s%3N; }
elapsed() {
    local d=$(( $(now_ms) - $1 ))
    printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100))
}

step() { # step LABEL COMMAND... -> runs it and prints how long it took
    local label=$1 t0 rc=0
    shift
    t0=$(now_ms)
    "$@" || rc=$?
    if ((rc == 0)); then
        echo "[infra] $label: ok ($(elapsed "$t0"))"
    else
        echo "[infra] $label: FAILED (exit $rc, $(elapsed "$t0"))" >&2
    fi
    return $rc
}

up() {
    local t0
    t0=$(now_ms)
    step "postgres start" "$SCRIPTS/postgres.sh" start
    step "kafka start" "$SCRIPTS/kafka.sh" start
    echo "[infra] up in $(elapsed "$t0")"
}

down() {
    local t0 rc=0
    t0=$(now_ms)
    step "kafka stop" "$SCRIPTS/kafka.sh" stop || rc=1
    step "postgres stop" "$SCRIPTS/postgres.sh" stop || rc=1
    echo "[infra] down in $(elapsed "$t0")"
    return $rc
}

status() {
    local rc=0
    "$SCRIPTS/postgres.sh" status || rc=1
    "$SCRIPTS/kafka.sh" status || rc=1
    return $rc
}

case "${1:-}" in
    up | start) up ;;
    down | stop) down ;;
    restart) down && up ;;
    status) status ;;
    *)
        echo "usage: $0 up|down|restart|status" >&2
        exit 2
        ;;
esac
