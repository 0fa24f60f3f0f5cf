#!/usr/bin/env bash
# =============================================================================
# scripts/test-image.sh: the container image built and run for real, with podman
# (no Docker engine needed), against the local broker.
#
# 1. dist/kafka-producer-x86_64-linux-musl: built with scripts/static.sh if missing or
#    TEST_IMAGE_REBUILD=1, reused otherwise (with a warning if older than the sources).
# 2. Installs what is missing, idempotently: podman and runc (apt), ca-certificates
#    (apt, for the CA bundle the image ships), podman-compose (PyPI, pinned, in a venv
#    under .tools/).
# 3. Writes podman's configuration and storage under .tools/podman/ (git-ignored):
#    runc as runtime, cgroupfs, no default ulimits (crun, the systemd cgroup manager and
#    the default nofile limit fail on this kind of machine), TEST_IMAGE_STORAGE_DRIVER.
# 4. podman build --target runtime-prebuilt (Dockerfile) from a context of the
#    binary and the host's CA bundle: FROM scratch, nothing pulled.
# 5. Checks, each container on the host's network (the broker advertises localhost):
#    - the image: user 65532:65532, its files exactly /kafka-producer and the CA bundle;
#    - `--version` in a container prints the version of the binary it was built from;
#    - the default command (`produce --create-topic --duration 0`) runs as uid/gid 65532,
#      answers /healthz, /readyz and /metrics (delivered counter > 0) on a loopback
#      port, fetched from the host; `podman stop` (SIGTERM) ends it with exit status 0;
#      its summary has every sent event delivered and none failed, and `verify` (run
#      from the image) reads exactly those events back, no duplicates;
#    - docker-compose.yml's producer service with deploy/compose/local-broker.yml
#      (podman-compose; only that service: no kafka or prometheus image is pulled):
#      it delivers, logs JSON lines, and `stop` + `down` deliver everything accepted.
# Every container is removed on exit, also on failure or Ctrl-C.
#
# Environment:
#   KAFKA_BROKER               broker (default localhost:9092; loopback only)
#   KAFKA_UP                   0 = do not run `make kafka-up` (broker managed elsewhere)
#   DIST_DIR                   where the static binary is (default <repo>/dist)
#   TEST_IMAGE_REBUILD         1 = rebuild the static binary first
#   TEST_IMAGE_STORAGE_DRIVER  vfs (default) or overlay
#   PRODUCE_SECONDS            how long each producer runs before SIGTERM (default 5)
#   PRODUCE_RATE               events/s of the plain run (default 5000); compose's
#                              command reads it too (its default: 1000)
# Exit status: 0 if every check passed, 1 otherwise (one-line reason on stderr).
# =============================================================================
set -euo pipefail

PODMAN_COMPOSE_VERSION=1.6.0

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST_DIR=${DIST_DIR:-$ROOT/dist}
BIN="$DIST_DIR/kafka-producer-x86_64-linux-musl"
BROKER=${KAFKA_BROKER:-localhost:9092}
DRIVER=${TEST_IMAGE_STORAGE_DRIVER:-vfs}
SECONDS_RUN=${PRODUCE_SECONDS:-5}
RATE=${PRODUCE_RATE:-5000}
WORK="$ROOT/.tools/test-image"
PODMAN_DIR="$ROOT/.tools/podman"
VENV="$ROOT/.tools/podman-compose-$PODMAN_COMPOSE_VERSION"
IMAGE=localhost/kafka-producer:prebuilt
RUN_NAME=kafka-producer-test-image
PROJECT=kafka-producer-test-image
COMPOSE_FILES=(-f "$ROOT/docker-compose.yml" -f "$ROOT/deploy/compose/local-broker.yml")
LOG="$WORK/podman.log"

log() { printf 'test-image: %s\n' "$*" >&2; }
die() {
    printf 'test-image: FAIL: %s\n' "$*" >&2
    if [ -s "$LOG" ]; then
        printf 'test-image: last lines of %s:\n' "$LOG" >&2
        tail -n 15 "$LOG" | sed 's/^/    /' >&2
    fi
    exit 1
}
# podman's own output goes to the log; shown when a step fails.
quiet() { "$@" >>"$LOG" 2>&1; }

cd "$ROOT"
mkdir -p "$WORK"
: >"$LOG"
start_all=$SECONDS

case "$BROKER" in
    localhost:* | 127.0.0.1:*) ;;
    *) die "KAFKA_BROKER=$BROKER: this test only talks to a broker on loopback" ;;
esac
[ "$(id -u)" = 0 ] || die "needs root (rootful podman, and apt-get to install it)"

# --- 1. the static binary ------------------------------------------------------------
stale() {
    [ -n "$(find Cargo.toml Cargo.lock build.rs src proto vendor -newer "$BIN" -type f -print -quit 2>/dev/null)" ]
}
if [ "${TEST_IMAGE_REBUILD:-0}" = 1 ] || [ ! -x "$BIN" ]; then
    log "building $BIN (scripts/static.sh x86_64-unknown-linux-musl)"
    scripts/static.sh x86_64-unknown-linux-musl || die "scripts/static.sh failed"
fi
[ -x "$BIN" ] || die "$BIN missing after scripts/static.sh"
stale && log "warning: $BIN is older than the sources; TEST_IMAGE_REBUILD=1 rebuilds it"
bin_version=$("$BIN" --version) || die "$BIN --version failed"
log "binary: $BIN ($bin_version)"

# --- 2. tools --------------------------------------------------------------------------
apt_install() { # <package...>
    command -v apt-get >/dev/null || die "$* missing and no apt-get to install it"
    log "installing $* (apt-get)"
    local t=$SECONDS
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "$@" >>"$LOG" 2>&1 ||
        { apt-get update -q >>"$LOG" 2>&1 || true; apt-get install -y -q --no-install-recommends "$@" >>"$LOG" 2>&1; } ||
        die "apt-get install $* failed"
    log "installed $* in $((SECONDS - t)) s"
}
RUNC=""
for r in /usr/sbin/runc /usr/bin/runc; do [ -x "$r" ] && RUNC=$r && break; done
if ! command -v podman >/dev/null || [ -z "$RUNC" ]; then
    apt_install podman runc
    for r in /usr/sbin/runc /usr/bin/runc; do [ -x "$r" ] && RUNC=$r && break; done
fi
command -v podman >/dev/null || die "podman not found after apt-get install podman"
[ -n "$RUNC" ] || die "runc not found after apt-get install runc"
[ -r /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
[ -r /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing"
log "podman: $(podman --version), runtime $RUNC"

if [ "$("$VENV/bin/podman-compose" --version 2>/dev/null | head -n 1)" != "podman-compose version $PODMAN_COMPOSE_VERSION" ]; then
    log "installing podman-compose==$PODMAN_COMPOSE_VERSION into $VENV (PyPI)"
    command -v python3 >/dev/null || apt_install python3
    python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
    rm -rf "$VENV"
    python3 -m venv "$VENV" >>"$LOG" 2>&1 || die "'python3 -m venv' failed"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "podman-compose==$PODMAN_COMPOSE_VERSION" >>"$LOG" 2>&1 ||
        die "pip install podman-compose==$PODMAN_COMPOSE_VERSION failed"
fi
COMPOSE=("$VENV/bin/podman-compose" -p "$PROJECT" "${COMPOSE_FILES[@]}")

# --- 3. podman configuration, all under .tools/podman -----------------------------------
case "$DRIVER" in vfs | overlay) ;; *) die "TEST_IMAGE_STORAGE_DRIVER=$DRIVER: use vfs or overlay" ;; esac
mkdir -p "$PODMAN_DIR/tmp"
cat >"$PODMAN_DIR/containers.conf" <<EOF
# Written by scripts/test-image.sh.
[containers]
# podman's default nofile limit is above the host's hard limit: setrlimit fails (EPERM).
default_ulimits = []

[engine]
# No systemd to manage cgroups; crun refuses the hybrid cgroup v1/v2 layout, runc works.
cgroup_manager = "cgroupfs"
runtime = "$RUNC"
events_logger = "file"
tmp_dir = "$PODMAN_DIR/tmp"
EOF
# One store per driver: podman refuses a store made by another driver.
cat >"$PODMAN_DIR/storage.conf" <<EOF
# Written by scripts/test-image.sh.
[storage]
driver = "$DRIVER"
graphroot = "$PODMAN_DIR/storage-$DRIVER"
runroot = "$PODMAN_DIR/run-$DRIVER"
EOF
export CONTAINERS_CONF="$PODMAN_DIR/containers.conf"
export CONTAINERS_STORAGE_CONF="$PODMAN_DIR/storage.conf"

compose_up=0
mounted=0
cleanup() {
    local rc=$?
    set +e
    [ "$mounted" = 1 ] && podman image unmount "$IMAGE" >>"$LOG" 2>&1
    podman rm -f -t 0 "$RUN_NAME" >>"$LOG" 2>&1
    [ "$compose_up" = 1 ] && KAFKA_PRODUCER_IMAGE=$IMAGE "${COMPOSE[@]}" down -t 0 >>"$LOG" 2>&1
    # The compose file's name for the producer container.
    podman rm -f -t 0 kafka-producer-producer >>"$LOG" 2>&1
    exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted: removing the containers"; exit 130' INT TERM
# Left over from an interrupted run.
podman rm -f -t 0 "$RUN_NAME" kafka-producer-producer >>"$LOG" 2>&1 || true
podman info >>"$LOG" 2>&1 || die "podman info failed (configuration in $PODMAN_DIR)"

if [ "${KAFKA_UP:-1}" != 0 ]; then
    make kafka-up >>"$LOG" 2>&1 || die "make kafka-up failed"
fi

# --- 4. build ------------------------------------------------------------------------------
ctx="$WORK/context"
rm -rf "$ctx"
mkdir -p "$ctx"
install -m 0755 "$BIN" "$ctx/kafka-producer"
install -m 0644 /etc/ssl/certs/ca-certificates.crt "$ctx/ca-certificates.crt"
t=$SECONDS
quiet podman build --target runtime-prebuilt -f "$ROOT/Dockerfile" -t "$IMAGE" "$ctx" ||
    die "podman build --target runtime-prebuilt failed"
log "built $IMAGE in $((SECONDS - t)) s ($(podman image inspect --format '{{.Size}}' "$IMAGE") bytes)"

# --- 5. checks -----------------------------------------------------------------------------
# A free loopback port for the metrics endpoint (the host's network is shared).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# http <url>: prints "<status> <body>"; status 000 if nothing answers.
http() {
    python3 - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except OSError:
    print("000")
EOF
}

# wait_ready <port> <container>: until /readyz answers 200 (or the container exits).
wait_ready() {
    local port=$1 name=$2 i
    for i in $(seq 1 60); do
        [ "$(http "http://127.0.0.1:$port/readyz" | cut -d' ' -f1)" = 200 ] && return 0
        [ "$(podman inspect --format '{{.State.Running}}' "$name" 2>/dev/null)" = true ] ||
            die "$name exited before it was ready: $(podman logs "$name" 2>&1 | tail -n 3 | tr '\n' ' ')"
        sleep 0.5
    done
    die "$name: /readyz on 127.0.0.1:$port did not answer 200 within 30 s"
}

# delivered_metric <port>: kafka_producer_events_delivered_total from /metrics.
delivered_metric() {
    http "http://127.0.0.1:$1/metrics" | sed -n 's/^\(200 \)\{0,1\}kafka_producer_events_delivered_total \([0-9.e+]*\)$/\2/p' | head -n 1
}

# check_metrics <port> <container>: probes and a delivered counter above zero.
check_metrics() {
    local port=$1 name=$2 code n i
    for probe in healthz readyz; do
        code=$(http "http://127.0.0.1:$port/$probe" | cut -d' ' -f1)
        [ "$code" = 200 ] || die "$name: /$probe answered $code, expected 200"
    done
    for i in $(seq 1 20); do
        n=$(delivered_metric "$port")
        [ -n "$n" ] || die "$name: /metrics has no kafka_producer_events_delivered_total"
        python3 -c "import sys; sys.exit(0 if float('$n') > 0 else 1)" && break
        sleep 0.5
    done
    python3 -c "import sys; sys.exit(0 if float('$n') > 0 else 1)" ||
        die "$name: kafka_producer_events_delivered_total is still $n after 10 s"
    log "$name: /healthz 200, /readyz 200, /metrics kafka_producer_events_delivered_total $n (127.0.0.1:$port from the host)"
}

# check_delivered <name> <topic> <summary text>: the summary says every sent event was
# delivered and none failed, and verify (from the image) reads exactly those back.
check_delivered() {
    local name=$1 topic=$2 summary=$3 line sent delivered failed report
    line=$(grep -E "^topic $topic: [0-9]+ events sent, [0-9]+ delivered, [0-9]+ failed" <<<"$summary" | head -n 1) ||
        die "$name: no summary line for $topic in its output: $(tr '\n' ' ' <<<"$summary")"
    read -r sent delivered failed < <(sed -E 's/^topic [^:]+: ([0-9]+) events sent, ([0-9]+) delivered, ([0-9]+) failed.*/\1 \2 \3/' <<<"$line")
    [ "$failed" = 0 ] || die "$name: $failed events failed: $line"
    [ "$delivered" = "$sent" ] || die "$name: $sent sent but $delivered delivered: $line"
    [ "$delivered" -gt 0 ] || die "$name: nothing delivered: $line"
    report=$(timeout 120 podman run --rm --network host -e KAFKA_BROKER="$BROKER" "$IMAGE" \
        --topic "$topic" verify --json 2>>"$LOG") || die "$name: verify of $topic failed: $report"
    REPORT="$report" WANT="$delivered" python3 - <<'EOF' || die "$name: what verify read back from $topic differs from the summary"
import json, os, sys
r = json.loads(os.environ["REPORT"].strip().splitlines()[-1])
want = int(os.environ["WANT"])
bad = []
if r.get("records") != want:
    bad.append(f"{r.get('records')} records, expected {want}")
if r.get("distinct_event_ids") != want:
    bad.append(f"{r.get('distinct_event_ids')} distinct event ids, expected {want}")
if r.get("duplicates") != 0:
    bad.append(f"{r.get('duplicates')} duplicates")
if r.get("undecodable"):
    bad.append(f"undecodable records: {r.get('undecodable')}")
for b in bad:
    print(f"test-image: verify: {b}", file=sys.stderr)
sys.exit(1 if bad else 0)
EOF
    log "$name: $line; verify read back $delivered records, $delivered distinct, 0 duplicates"
}

# check_exit <name>: exit status 0 after podman stop (SIGTERM).
check_exit() {
    local name=$1 code
    code=$(podman inspect --format '{{.State.ExitCode}}' "$name") || die "$name: cannot inspect"
    [ "$code" = 0 ] || die "$name: exit status $code after SIGTERM (137 = killed after the grace period)"
}

# 5a. the image itself
user=$(podman image inspect --format '{{.Config.User}}' "$IMAGE")
[ "$user" = 65532:65532 ] || die "image user is '$user', expected 65532:65532"
mnt=$(podman image mount "$IMAGE" 2>>"$LOG") || die "podman image mount $IMAGE failed"
mounted=1
files=$(cd "$mnt" && find . ! -type d | sort | tr '\n' ' ')
podman image unmount "$IMAGE" >>"$LOG" 2>&1 && mounted=0
[ "$files" = "./etc/ssl/certs/ca-certificates.crt ./kafka-producer " ] ||
    die "image files are: $files(expected only ./etc/ssl/certs/ca-certificates.crt ./kafka-producer)"
log "image: user $user, files: $files(scratch: no shell, no libc)"

# 5b. --version
out=$(timeout 60 podman run --rm --network host "$IMAGE" --version 2>>"$LOG") ||
    die "podman run $IMAGE --version failed: $out"
[ "$out" = "$bin_version" ] || die "--version in the container printed '$out', expected '$bin_version'"
log "--version: $out"

# 5c. the default command until SIGTERM
topic="image-test-$(date +%s)-$RANDOM"
port=$(free_port)
quiet podman run -d --name "$RUN_NAME" --network host \
    -e KAFKA_BROKER="$BROKER" -e KAFKA_TOPIC="$topic" -e PRODUCE_RATE="$RATE" \
    -e KAFKA_PRODUCER_METRICS_ADDR="127.0.0.1:$port" "$IMAGE" ||
    die "podman run -d $IMAGE (default command) failed"
log "$RUN_NAME: default command $(podman inspect --format '{{.Config.Cmd}}' "$RUN_NAME"), topic $topic, $RATE events/s"
wait_ready "$port" "$RUN_NAME"
pid=$(podman inspect --format '{{.State.Pid}}' "$RUN_NAME")
ids=$(awk '/^Uid:|^Gid:/ {print $1, $2, $3, $4, $5}' "/proc/$pid/status" | tr '\n' ' ')
[ "$ids" = "Uid: 65532 65532 65532 65532 Gid: 65532 65532 65532 65532 " ] ||
    die "$RUN_NAME: the process runs as $ids, expected uid and gid 65532"
log "$RUN_NAME: pid $pid on the host runs as uid/gid 65532 (real, effective, saved, fs)"
check_metrics "$port" "$RUN_NAME"
sleep "$SECONDS_RUN"
t=$SECONDS
quiet podman stop -t 30 "$RUN_NAME" || die "podman stop $RUN_NAME failed"
log "$RUN_NAME: podman stop (SIGTERM) took $((SECONDS - t)) s"
check_exit "$RUN_NAME"
check_delivered "$RUN_NAME" "$topic" "$(podman logs "$RUN_NAME" 2>/dev/null)"
quiet podman rm "$RUN_NAME"

# 5d. compose's producer service against the local broker
topic="compose-test-$(date +%s)-$RANDOM"
port=$(free_port)
export KAFKA_PRODUCER_IMAGE=$IMAGE KAFKA_BROKER=$BROKER KAFKA_TOPIC=$topic
export KAFKA_PRODUCER_METRICS_ADDR="127.0.0.1:$port"
compose_up=1
quiet "${COMPOSE[@]}" up -d --no-deps --no-build producer ||
    die "podman-compose up producer failed"
name=kafka-producer-producer
log "compose: $name up (docker-compose.yml + deploy/compose/local-broker.yml), topic $topic"
wait_ready "$port" "$name"
check_metrics "$port" "$name"
sleep "$SECONDS_RUN"
t=$SECONDS
quiet "${COMPOSE[@]}" stop producer || die "podman-compose stop producer failed"
log "compose: stop (SIGTERM) took $((SECONDS - t)) s"
check_exit "$name"
# RUST_LOG=info in the compose file: log lines on stderr, JSON objects.
json_lines=$(podman logs "$name" 2>&1 >/dev/null | python3 -c '
import json, sys
n = 0
for line in sys.stdin:
    if line.startswith("{"):
        o = json.loads(line)
        assert "level" in o and "message" in o, line
        n += 1
print(n)') || die "compose: a log line that starts with { is not a JSON log record"
[ "$json_lines" -gt 0 ] || die "compose: no JSON log lines on stderr"
log "compose: $json_lines JSON log lines"
check_delivered "compose" "$topic" "$(podman logs "$name" 2>/dev/null)"
quiet "${COMPOSE[@]}" down -t 0 || die "podman-compose down failed"
compose_up=0
[ -z "$(podman ps -a -q)" ] || die "containers left after podman-compose down: $(podman ps -a --format '{{.Names}}' | tr '\n' ' ')"

log "all image checks passed in $((SECONDS - start_all)) s"
