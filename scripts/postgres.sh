#!/usr/bin/env bash
# Local PostgreSQL (Debian packages, the "main" cluster) on 127.0.0.1:5432 for
# tests, local runs and CI.
#
#   scripts/postgres.sh start    install if missing, configure, start, wait, create role + databases
#   scripts/postgres.sh stop     stop the cluster (no-op when stopped)
#   scripts/postgres.sh restart  stop + start
#   scripts/postgres.sh status   exit 0 when the server answers on 127.0.0.1:5432
#
# Application access (TCP, password auth):
#   role benefits / password benefits (LOGIN, CREATEDB)
#   databases intake, payout, reporting (owner benefits, UTF8)
#   e.g. PGPASSWORD=benefits psql -h 127.0.0.1 -U benefits intake
#
# start/stop must run as root (CI does): admin commands run as the postgres user
# through runuser; status works for any user.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
CLUSTER=main
APP_ROLE=benefits
APP_PASSWORD=benefits
APP_DATABASES=(intake payout reporting)
START_TIMEOUT="${POSTGRES_START_TIMEOUT:-60}"
CONF_NAME=90-benefits.conf

log() { echo "[postgres] $*"; }
err() { echo "[postgres] ERROR: $*" >&2; }
now_ms() { date +%s%3N; }
elapsed() {
    local d=$(( $(now_ms) - $1 ))
    printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100))
}

# Settings for a test/bench box. Durability stays as in production
# (fsync, synchronous_commit, full_page_writes on): crash tests rely on it.
server_settings() {
    cat <<EOF
# Managed by scripts/postgres.sh (vn-benefits local/test/CI database).
listen_addresses = '$PG_HOST'
# Loopback only: TLS would protect nothing and cost every service CPU on each round trip.
ssl = off
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
}

# ---------------------------------------------------------------- install

pg_version() { # highest installed server version, empty when none
    local d v best=""
    for d in /usr/lib/postgresql/*/bin/postgres; do
        [[ -x "$d" ]] || continue
        v=${d#/usr/lib/postgresql/}
        v=${v%%/*}
        if [[ -z "$best" ]] || [[ "$(printf '%s\n%s\n' "$best" "$v" | sort -V | tail -n1)" == "$v" ]]; then
            best=$v
        fi
    done
    echo "$best"
}

ensure_root() {
    if [[ $(id -u) -ne 0 ]]; then
        err "must run as root (it installs packages and runs admin commands as postgres)"
        exit 1
    fi
}

ensure_installed() {
    VER=$(pg_version)
    if [[ -n "$VER" ]] && command -v pg_lsclusters >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null 2>&1; then
        BIN=/usr/lib/postgresql/$VER/bin
        return 0
    fi
    ensure_root
    local t0
    t0=$(now_ms)
    log "PostgreSQL server not installed; installing Debian's postgresql package ..."
    # A UTF-8 locale for the cluster the package creates.
    export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8
    apt-get update -qq </dev/null
    apt-get install -y -qq postgresql postgresql-common </dev/null >/dev/null
    VER=$(pg_version)
    if [[ -z "$VER" ]]; then
        err "postgresql installed but no server found under /usr/lib/postgresql"
        exit 1
    fi
    BIN=/usr/lib/postgresql/$VER/bin
    log "installed PostgreSQL $VER in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- cluster

cluster_field() { # cluster_field N -> column N of pg_lsclusters for VER/main (1 ver, 2 name, 3 port, 4 status)
    pg_lsclusters -h 2>/dev/null | awk -v v="$VER" -v c="$CLUSTER" -v f="$1" '$1 == v && $2 == c { print $f }'
}

cluster_online() { [[ "$(cluster_field 4)" == online* ]]; }

conf_dir() { echo "/etc/postgresql/$VER/$CLUSTER"; }

ensure_cluster() {
    if [[ -z "$(cluster_field 1)" ]]; then
        log "creating cluster $VER/$CLUSTER (UTF-8, port $PG_PORT) ..."
        LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --port "$PG_PORT" --locale C.UTF-8 --encoding UTF8 \
            "$VER" "$CLUSTER" >/dev/null
    fi
    if [[ ! -f "$(conf_dir)/postgresql.conf" ]]; then
        err "cluster $VER/$CLUSTER has no $(conf_dir)/postgresql.conf"
        exit 1
    fi
}

# Writes the settings; prints "changed" when something that needs a restart changed.
configure_cluster() {
    local dir conf changed=""
    dir=$(conf_dir)
    conf="$dir/postgresql.conf"
    if [[ "$(cluster_field 3)" != "$PG_PORT" ]]; then
        pg_conftool "$VER" "$CLUSTER" set port "$PG_PORT"
        changed=1
    fi
    if ! grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'conf\.d'" "$conf"; then
        echo "include_dir = 'conf.d'" >>"$conf"
        changed=1
    fi
    mkdir -p "$dir/conf.d"
    if [[ "$(cat "$dir/conf.d/$CONF_NAME" 2>/dev/null)" != "$(server_settings)" ]]; then
        server_settings >"$dir/conf.d/$CONF_NAME"
        chown postgres:postgres "$dir/conf.d/$CONF_NAME" 2>/dev/null || true
        changed=1
    fi
    # Password (scram) access over 127.0.0.1 is Debian's default; add it if a
    # customised pg_hba.conf lacks it.
    if ! grep -Eq '^[[:space:]]*host[[:space:]]+all[[:space:]]+(all|benefits)[[:space:]]+127\.0\.0\.1/32[[:space:]]+(scram-sha-256|md5)' "$dir/pg_hba.conf"; then
        echo "host    all             $APP_ROLE        127.0.0.1/32            scram-sha-256" >>"$dir/pg_hba.conf"
        changed=1
    fi
    [[ -z "$changed" ]] || echo changed
}

ensure_socket_dir() {
    install -d -o postgres -g postgres -m 2775 /var/run/postgresql
}

show_log_tail() {
    local f="/var/log/postgresql/postgresql-$VER-$CLUSTER.log"
    if [[ -s "$f" ]]; then
        echo "----- last lines of $f -----" >&2
        tail -n 30 "$f" >&2
    fi
}

is_ready() { "$BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2; }

wait_ready() {
    local deadline=$(( $(now_ms) + START_TIMEOUT * 1000 ))
    while (( $(now_ms) < deadline )); do
        is_ready && return 0
        sleep 0.2
    done
    err "PostgreSQL did not answer on $PG_HOST:$PG_PORT within ${START_TIMEOUT}s"
    show_log_tail
    return 1
}

psql_admin() { # SQL on stdin, run as the postgres superuser over the local socket
    (cd / && runuser -u postgres -- "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres "$@")
}

provision() {
    local dbs
    dbs=$(printf "'%s'," "${APP_DATABASES[@]}")
    dbs="ARRAY[${dbs%,}]"
    psql_admin -f - >/dev/null <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_ROLE') THEN
        CREATE ROLE $APP_ROLE LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
    ELSE
        ALTER ROLE $APP_ROLE LOGIN CREATEDB PASSWORD '$APP_PASSWORD';
    END IF;
END
\$\$;
SELECT format('CREATE DATABASE %I OWNER $APP_ROLE ENCODING ''UTF8'' LC_COLLATE ''C.UTF-8'' LC_CTYPE ''C.UTF-8'' TEMPLATE template0', d)
  FROM unnest($dbs) AS d
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = d)
\gexec
SELECT format('ALTER DATABASE %I OWNER TO $APP_ROLE', d)
  FROM unnest($dbs) AS d
  JOIN pg_database ON datname = d
 WHERE pg_get_userbyid(datdba) <> '$APP_ROLE'
\gexec
SQL
}

start_cluster() {
    # Right after a crash (kill -9 of the postmaster) the dead process can linger
    # as a zombie for a moment and hold the socket lock file: retry a few times.
    local attempt out
    for attempt in 1 2 3 4 5 6 7 8 9 10; do
        if out=$(pg_ctlcluster "$VER" "$CLUSTER" start 2>&1); then
            return 0
        fi
        cluster_online && return 0
        (( attempt < 10 )) || break
        sleep 1
    done
    err "pg_ctlcluster $VER $CLUSTER start failed:"
    echo "$out" >&2
    show_log_tail
    exit 1
}

# ---------------------------------------------------------------- commands

do_start() {
    local t0 changed
    t0=$(now_ms)
    ensure_installed
    ensure_root
    ensure_cluster
    changed=$(configure_cluster)
    ensure_socket_dir
    if cluster_online; then
        if [[ -n "$changed" ]]; then
            log "settings changed; restarting cluster $VER/$CLUSTER ..."
            pg_ctlcluster "$VER" "$CLUSTER" restart -m fast || { show_log_tail; exit 1; }
        fi
    else
        log "starting cluster $VER/$CLUSTER on $PG_HOST:$PG_PORT ..."
        start_cluster
    fi
    wait_ready
    provision
    log "ready on $PG_HOST:$PG_PORT (PostgreSQL $VER, role $APP_ROLE, databases ${APP_DATABASES[*]}) in $(elapsed "$t0")"
}

do_stop() {
    local t0
    t0=$(now_ms)
    VER=$(pg_version)
    if [[ -z "$VER" ]] || ! command -v pg_lsclusters >/dev/null 2>&1; then
        log "not installed"
        return 0
    fi
    if ! cluster_online; then
        log "not running"
        return 0
    fi
    ensure_root
    log "stopping cluster $VER/$CLUSTER ..."
    pg_ctlcluster "$VER" "$CLUSTER" stop -m fast
    log "stopped in $(elapsed "$t0")"
}

do_status() {
    VER=$(pg_version)
    if [[ -z "$VER" ]]; then
        log "not installed"
        return 1
    fi
    BIN=/usr/lib/postgresql/$VER/bin
    if is_ready; then
        log "running (PostgreSQL $VER, cluster $CLUSTER) on $PG_HOST:$PG_PORT"
        return 0
    fi
    log "not answering on $PG_HOST:$PG_PORT"
    return 1
}

case "${1:-}" in
    start) do_start ;;
    stop) do_stop ;;
    restart) do_stop && do_start ;;
    status) do_status ;;
    *)
        echo "usage: $0 start|stop|restart|status" >&2
        exit 2
        ;;
esac
