#!/usr/bin/env bash
# Local single-node Apache Kafka 4.x (KRaft, broker+controller in one JVM) on
# 127.0.0.1, for tests, local runs and CI.
#
#   scripts/kafka.sh start     fetch jars if missing, format storage once, start, wait until ready
#   scripts/kafka.sh stop      SIGTERM, wait up to 30 s, then SIGKILL (no-op when stopped)
#   scripts/kafka.sh restart   stop + start
#   scripts/kafka.sh status    exit 0 when the broker is running and answers metadata requests
#   scripts/kafka.sh reset     stop and delete the data and logs (jars are kept)
#   scripts/kafka.sh fetch     only fetch the jars
#
# Everything lives under .run/kafka/ at the repository root:
#   libs/           broker jars (deploy/kafka/pom.xml, fetched with Maven once)
#   data/           KRaft metadata and topic data
#   logs/           server.log (broker log, log4j2) and kafka.out (JVM stdout/stderr)
#   cluster.id      cluster id, generated once
#   server.properties  rendered from deploy/kafka/server.properties
#   kafka.pid
#   maven.log       output of the last jar fetch
#
# Environment:
#   KAFKA_PORT (9092), KAFKA_CONTROLLER_PORT (9093), KAFKA_START_TIMEOUT (60),
#   KAFKA_STOP_TIMEOUT (30), KAFKA_HEAP_OPTS ("-Xms256m -Xmx512m"), KAFKA_OPTS (extra JVM flags).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEPLOY="$ROOT/deploy/kafka"
RUN="$ROOT/.run/kafka"
LIBS="$RUN/libs"
DATA="$RUN/data"
LOGS="$RUN/logs"
CONF="$RUN/server.properties"
PIDFILE="$RUN/kafka.pid"
CLUSTER_ID_FILE="$RUN/cluster.id"
LOCKFILE="$RUN/.lock"

KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"

log() { echo "[kafka] $*"; }
err() { echo "[kafka] ERROR: $*" >&2; }
now_ms() { date +%s%3N; }
elapsed() { # elapsed START_MS -> "12.3s"
    local d=$(( $(now_ms) - $1 ))
    printf '%d.%01ds' $((d / 1000)) $(((d % 1000) / 100))
}

# ---------------------------------------------------------------- prerequisites

apt_install() {
    log "installing Debian packages: $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq </dev/null
    apt-get install -y -qq --no-install-recommends "$@" </dev/null >/dev/null
}

ensure_tools() {
    local missing=()
    command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)
    command -v mvn >/dev/null 2>&1 || missing+=(maven)
    command -v flock >/dev/null 2>&1 || missing+=(util-linux)
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            err "missing tools (${missing[*]}); install them or run as root"
            exit 1
        fi
        apt_install "${missing[@]}"
    fi
}

with_lock() { # run "$@" holding the lock (serializes concurrent start/stop)
    mkdir -p "$RUN"
    exec 9>"$LOCKFILE"
    if ! flock -w 180 9; then
        err "could not take $LOCKFILE (another kafka.sh is still running?)"
        exit 1
    fi
    "$@"
}

# ---------------------------------------------------------------- jars

pom_stamp() { sha256sum "$DEPLOY/pom.xml" | cut -d' ' -f1; }

fetch_jars() {
    if [[ -f "$LIBS/.complete" && "$(cat "$LIBS/.complete")" == "$(pom_stamp)" ]]; then
        return 0
    fi
    ensure_tools
    local t0 tmp="$RUN/libs.tmp"
    t0=$(now_ms)
    log "fetching Kafka jars with Maven (deploy/kafka/pom.xml) into .run/kafka/libs ..."
    rm -rf "$tmp"
    mkdir -p "$tmp"
    if ! mvn -B -q -Dstyle.color=never -f "$DEPLOY/pom.xml" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" </dev/null >"$RUN/maven.log" 2>&1; then
        err "Maven could not fetch the Kafka jars (output in .run/kafka/maven.log):"
        tail -n 40 "$RUN/maven.log" >&2
        rm -rf "$tmp"
        exit 1
    fi
    rm -rf "$DEPLOY/target"
    if ! compgen -G "$tmp/kafka_2.13-*.jar" >/dev/null; then
        err "Maven finished but no kafka_2.13 jar is in $tmp"
        exit 1
    fi
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    pom_stamp >"$LIBS/.complete"
    log "jars fetched in $(elapsed "$t0") ($(find "$LIBS" -name '*.jar' | wc -l) jars, $(basename "$(ls "$LIBS"/kafka_2.13-*.jar)" .jar))"
}

kafka_java() { # run a Kafka tool class: kafka_java CLASS ARGS...
    java -Xmx256m -Dlog4j2.level=WARN -cp "$LIBS/*" "$@"
}

# ---------------------------------------------------------------- config + storage

render_config() {
    mkdir -p "$DATA" "$LOGS"
    local tmp="$CONF.tmp"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$CONTROLLER_PORT|g" \
        -e "s|@DATA_DIR@|$DATA|g" \
        "$DEPLOY/server.properties" >"$tmp"
    mv "$tmp" "$CONF"
}

cluster_id() {
    if [[ -s "$CLUSTER_ID_FILE" ]]; then
        cat "$CLUSTER_ID_FILE"
        return
    fi
    local cid=""
    if [[ -f "$DATA/meta.properties" ]]; then
        cid=$(sed -n 's/^cluster\.id=//p' "$DATA/meta.properties")
    fi
    if [[ -z "$cid" ]]; then
        cid=$(kafka_java kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1 | tr -d '[:space:]')
    fi
    if [[ -z "$cid" ]]; then
        err "could not generate a cluster id (kafka.tools.StorageTool random-uuid)"
        exit 1
    fi
    echo "$cid" >"$CLUSTER_ID_FILE"
    echo "$cid"
}

format_storage() {
    if [[ -f "$DATA/meta.properties" ]]; then
        return 0
    fi
    local t0 cid out
    t0=$(now_ms)
    cid=$(cluster_id)
    # No meta.properties: nothing usable in there (never formatted, or an
    # interrupted format); start from an empty directory.
    rm -rf "$DATA"
    mkdir -p "$DATA"
    log "formatting storage (cluster id $cid) ..."
    if ! out=$(kafka_java kafka.tools.StorageTool format --standalone -t "$cid" -c "$CONF" 2>&1); then
        err "storage format failed:"
        echo "$out" >&2
        exit 1
    fi
    log "storage formatted in $(elapsed "$t0")"
}

# ---------------------------------------------------------------- process

is_our_broker() { # PID -> 0 when it is a live kafka.Kafka process using our config
    local pid=$1 cmd
    [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
    cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmd" == *kafka.Kafka* && "$cmd" == *"$CONF"* ]]
}

broker_pid() { # prints the broker pid, from the pid file or by looking for it
    local pid="" p
    [[ -f "$PIDFILE" ]] && pid=$(tr -d '[:space:]' <"$PIDFILE")
    if is_our_broker "$pid"; then
        echo "$pid"
        return 0
    fi
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        if is_our_broker "$p"; then
            echo "$p" >"$PIDFILE"
            echo "$p"
            return 0
        fi
    done
    rm -f "$PIDFILE"
    return 1
}

# Ready = the broker answers a Kafka Metadata request and lists itself (it is
# registered with the controller and unfenced). Stdlib-only Python, so it does
# not depend on the project's virtualenv.
PROBE_PY='
import socket, struct, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
def recv(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf
try:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        client = b"kafka-sh-probe"
        # Metadata v4: header (api_key 3, version 4, correlation id, client id),
        # topics = null (all), allow_auto_topic_creation = false.
        body = struct.pack(">hhih", 3, 4, 4242, len(client)) + client + struct.pack(">ib", -1, 0)
        sock.sendall(struct.pack(">i", len(body)) + body)
        (size,) = struct.unpack(">i", recv(sock, 4))
        data = recv(sock, size)
except Exception as exc:
    print("no answer on %s:%s (%s)" % (host, port, exc))
    sys.exit(1)
pos = 0
def take(fmt):
    global pos
    (v,) = struct.unpack_from(fmt, data, pos)
    pos += struct.calcsize(fmt)
    return v
def string():
    global pos
    n = take(">h")
    if n < 0:
        return None
    v = data[pos:pos + n].decode()
    pos += n
    return v
try:
    corr = take(">i"); take(">i")
    brokers = []
    for _ in range(take(">i")):
        node = take(">i"); h = string(); p = take(">i"); string()
        brokers.append("%d@%s:%d" % (node, h, p))
    cluster = string()
    take(">i")  # controller id
    topics = take(">i")
except Exception as exc:
    print("unexpected metadata response (%s)" % exc)
    sys.exit(1)
if corr != 4242 or not brokers:
    print("metadata lists no broker yet")
    sys.exit(1)
print("cluster %s, brokers %s, %d topics" % (cluster, ",".join(brokers), topics))
'

probe() { # probe [quiet] -> 0 when ready
    local out rc=0
    if command -v python3 >/dev/null 2>&1; then
        out=$(python3 -c "$PROBE_PY" "$KAFKA_HOST" "$KAFKA_PORT" 2 2>&1) || rc=$?
    else
        # Fallback without Python: the port must be open, then Kafka's own client.
        if ! (exec 3<>"/dev/tcp/$KAFKA_HOST/$KAFKA_PORT") 2>/dev/null; then
            out="no answer on $KAFKA_HOST:$KAFKA_PORT"
            rc=1
        else
            mkdir -p "$RUN"
            printf 'request.timeout.ms=3000\ndefault.api.timeout.ms=5000\n' >"$RUN/probe-admin.properties"
            out=$(kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" \
                --command-config "$RUN/probe-admin.properties" --list 2>&1) || rc=$?
            ((rc != 0)) || out="topics: $(echo "$out" | grep -v StatusLogger | tr '\n' ' ')"
        fi
    fi
    [[ "${1:-}" == quiet ]] || echo "$out"
    return $rc
}

port_open() { (exec 3<>"/dev/tcp/$KAFKA_HOST/$1") 2>/dev/null; }

show_log_tail() {
    local f
    for f in "$LOGS/kafka.out" "$LOGS/server.log"; do
        if [[ -s "$f" ]]; then
            echo "----- last lines of ${f#"$ROOT"/} -----" >&2
            tail -n 30 "$f" >&2
        fi
    done
}

wait_ready() { # wait_ready PID START_MS
    local pid=$1 t0=$2 deadline=$(( $(now_ms) + START_TIMEOUT * 1000 ))
    while (( $(now_ms) < deadline )); do
        if ! kill -0 "$pid" 2>/dev/null; then
            err "the broker (pid $pid) exited during startup"
            show_log_tail
            return 1
        fi
        if probe quiet; then
            return 0
        fi
        sleep 0.25
    done
    err "the broker did not become ready within ${START_TIMEOUT}s"
    show_log_tail
    return 1
}

do_start() {
    local pid t0
    t0=$(now_ms)
    if pid=$(broker_pid); then
        if probe quiet; then
            log "already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
            return 0
        fi
        if ! grep -q "^listeners=PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT," "$CONF" 2>/dev/null; then
            err "broker $pid runs with another port than $KAFKA_PORT; use: scripts/kafka.sh restart"
            return 1
        fi
        log "broker process $pid exists but is not ready yet; waiting ..."
        if wait_ready "$pid" "$t0"; then
            log "ready on $KAFKA_HOST:$KAFKA_PORT after $(elapsed "$t0") (pid $pid)"
            return 0
        fi
        err "broker $pid is not healthy; try: scripts/kafka.sh restart"
        return 1
    fi
    if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT"; then
        if probe quiet; then
            log "a Kafka broker not started by this script already answers on $KAFKA_HOST:$KAFKA_PORT; using it"
            return 0
        fi
        err "port $KAFKA_PORT or $CONTROLLER_PORT on $KAFKA_HOST is taken by another process"
        return 1
    fi

    ensure_tools
    fetch_jars
    render_config
    format_storage

    local t1
    t1=$(now_ms)
    log "starting broker on $KAFKA_HOST:$KAFKA_PORT (controller $KAFKA_HOST:$CONTROLLER_PORT) ..."
    echo "===== $(date -Is) start =====" >>"$LOGS/kafka.out"
    # shellcheck disable=SC2086  # HEAP_OPTS / KAFKA_OPTS are word lists
    (
        cd "$RUN"
        exec setsid nohup java $HEAP_OPTS \
            -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
            -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
            -Djava.awt.headless=true \
            -Dlog4j2.configurationFile="$DEPLOY/log4j2.yaml" \
            -Dlog4j2.shutdownHookEnabled=false \
            -Dkafka.logs.dir="$LOGS" \
            ${KAFKA_OPTS:-} \
            -cp "$LIBS/*" kafka.Kafka "$CONF"
    ) >>"$LOGS/kafka.out" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PIDFILE"
    if ! wait_ready "$pid" "$t1"; then
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$PIDFILE"
        return 1
    fi
    log "ready on $KAFKA_HOST:$KAFKA_PORT in $(elapsed "$t1") (pid $pid; total $(elapsed "$t0"))"
}

do_stop() {
    local pid t0 deadline
    if ! pid=$(broker_pid); then
        log "not running"
        return 0
    fi
    t0=$(now_ms)
    log "stopping broker (pid $pid) ..."
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$(( $(now_ms) + STOP_TIMEOUT * 1000 ))
    while kill -0 "$pid" 2>/dev/null && (( $(now_ms) < deadline )); do
        sleep 0.2
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "still running after ${STOP_TIMEOUT}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$PIDFILE"
    log "stopped in $(elapsed "$t0")"
}

do_status() {
    local pid out
    if pid=$(broker_pid); then
        if out=$(probe); then
            log "running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT: $out"
            return 0
        fi
        log "process $pid is up but not answering: $out"
        return 1
    fi
    if out=$(probe); then
        log "not started by this script, but a broker answers on $KAFKA_HOST:$KAFKA_PORT: $out"
        return 0
    fi
    log "not running"
    return 1
}

do_reset() {
    do_stop
    rm -rf "$DATA" "$LOGS" "$CONF"
    log "data and logs deleted (jars kept in .run/kafka/libs)"
}

usage() {
    echo "usage: $0 start|stop|restart|status|reset|fetch" >&2
    exit 2
}

case "${1:-}" in
    start) with_lock do_start ;;
    stop) with_lock do_stop ;;
    restart) with_lock do_stop && with_lock do_start ;;
    status) do_status ;;
    reset) with_lock do_reset ;;
    fetch) with_lock fetch_jars ;;
    *) usage ;;
esac
