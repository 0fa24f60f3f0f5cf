#!/usr/bin/env bash
# =============================================================================
# scripts/kafka.sh: a real Apache Kafka 4.4.0 broker for local tests, without
# Docker. Needs a JDK 17+ (java) and Maven (mvn); the jars come from Maven
# Central via scripts/kafka/pom.xml.
#
# Usage: scripts/kafka.sh <command> [args]
#   up                      start the instance (idempotent); formats storage on
#                           first start, reuses the data dir afterwards
#   down                    SIGTERM the recorded pid, wait up to 20 s, then SIGKILL
#   status                  print pid/ports/data dir; exit 0 if running, 3 if not
#   kill9                   SIGKILL the recorded pid (crash simulation); waits only
#                           for the process to be gone; data dir is kept
#   restart                 kill9 followed by up (same data dir)
#   dump-log <topic> <part> [extra DumpLogSegments args]
#                           print DumpLogSegments batch-level output for every
#                           .log segment of that partition (see format below)
#   create-topic <topic> [partitions] [extra TopicCommand args...]
#                           create a topic (partitions default 3, RF 1)
#   run-class <class> [args...]
#                           run any class (e.g. org.apache.kafka.tools.TopicCommand)
#                           on the broker classpath with quiet WARN logging
#   env                     print shell assignments (KAFKA_BOOTSTRAP, dirs, ...)
#
# Environment:
#   KAFKA_ROOT             root of all files             (default <repo>/.kafka)
#   KAFKA_INSTANCE         instance name                 (default "default")
#   KAFKA_PORT             PLAINTEXT listener port       (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port         (default 9093)
#   KAFKA_HOST             advertised host name          (default localhost)
#   KAFKA_HEAP_OPTS        JVM heap flags                (default -Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         extra JVM flags, appended
#   KAFKA_UP_TIMEOUT       seconds to wait for readiness (default 90)
#
# Files (everything lives under $KAFKA_ROOT, which is git-ignored):
#   $KAFKA_ROOT/lib/                      jar cache (.complete marker = pom hash)
#   $KAFKA_ROOT/<instance>/data/          log.dirs (also holds KRaft metadata),
#       e.g. .kafka/default/data/user.events-0/00000000000000000000.log
#   $KAFKA_ROOT/<instance>/broker.log     broker stdout/stderr + log4j2 (INFO);
#                                         appended to across restarts
#   $KAFKA_ROOT/<instance>/kafka.pid      pid of the broker JVM
#   $KAFKA_ROOT/<instance>/server.properties, log4j2.xml, cluster.id
#
# Several instances can run side by side on their own ports and data dirs:
#   KAFKA_INSTANCE=crash1 KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 scripts/kafka.sh up
#
# Readiness: "answers" means a Kafka ApiVersions(v0) request sent over bash's
# /dev/tcp gets a well-formed response (no JVM needed). The broker only starts
# processing requests once it is unfenced, so that implies it is ready.
#
# dump-log output: org.apache.kafka.tools.DumpLogSegments --files <seg1,seg2,...>
# (4.4.0). NOTE: --deep-iteration is a presence flag, "--deep-iteration=false"
# would still turn deep iteration on, so it is NOT passed: the default is the
# shallow, batch-level listing. Extra args after <partition> are passed through
# (e.g. --deep-iteration or --print-data-log to see records as "| offset: ..." lines).
# Segments are passed in base-offset order; for each one the tool prints
#   Dumping /work/main/.kafka/default/data/t1-0/00000000000000000000.log
#   Log starting offset: 0
# then one line per record batch (real example, ProducerPerformance with zstd):
#   baseOffset: 0 lastOffset: 15 count: 16 baseSequence: 0 lastSequence: 15 producerId: 0 producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty position: 0 CreateTime: 1795748248707 size: 1189 magic: 2 compresscodec: zstd crc: 2059705090 isvalid: true
# i.e. space separated "key: value" pairs; "count" is the number of records in
# the batch, "compresscodec" is one of none|gzip|snappy|lz4|zstd, control
# batches (transaction markers) have isControl: true. Parse lines starting
# with "baseOffset:".
# =============================================================================
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
POM="$SCRIPT_DIR/kafka/pom.xml"

KAFKA_ROOT="${KAFKA_ROOT:-$REPO_DIR/.kafka}"
KAFKA_INSTANCE="${KAFKA_INSTANCE:-default}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOST="${KAFKA_HOST:-localhost}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_UP_TIMEOUT="${KAFKA_UP_TIMEOUT:-90}"

LIB_DIR="$KAFKA_ROOT/lib"
LIB_MARKER="$LIB_DIR/.complete"
INST_DIR="$KAFKA_ROOT/$KAFKA_INSTANCE"
DATA_DIR="$INST_DIR/data"
PID_FILE="$INST_DIR/kafka.pid"
LOG_FILE="$INST_DIR/broker.log"
PROPS_FILE="$INST_DIR/server.properties"
LOG4J_FILE="$INST_DIR/log4j2.xml"
TOOLS_LOG4J_FILE="$KAFKA_ROOT/tools-log4j2.xml"
CLUSTER_ID_FILE="$INST_DIR/cluster.id"

log() { echo "kafka.sh[$KAFKA_INSTANCE]: $*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# kafka_answers HOST PORT: 0 if a Kafka broker answers ApiVersions v0 there.
kafka_answers() {
  local host="$1" port="$2"
  timeout 3 bash -c '
    exec 3<>"/dev/tcp/$0/$1" || exit 1
    # size=15, api_key=18 (ApiVersions), api_version=0, correlation_id=7,
    # client_id="probe"
    printf "\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x07\x00\x05probe" >&3
    resp="$(head -c 10 <&3 | od -An -tx1 | tr -d " \n")"
    exec 3<&-
    # bytes 4..7 = correlation id 7, bytes 8..9 = error code 0
    [[ "${resp:8:12}" == "000000070000" ]]
  ' "$host" "$port" 2>/dev/null
}

port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

recorded_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  echo "$pid"
}

pid_alive() {
  local pid="$1"
  kill -0 "$pid" 2>/dev/null || return 1
  # a zombie is not alive
  local state
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || echo "")"
  [[ "$state" != "Z" ]]
}

# running_pid: prints the recorded pid if that process is alive (and is a java
# process, to be safe against pid reuse).
running_pid() {
  local pid
  pid="$(recorded_pid)" || return 1
  pid_alive "$pid" || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "kafka.Kafka" || return 1
  fi
  echo "$pid"
}

have_toolchain() {
  command -v java >/dev/null 2>&1 || return 1
  if [[ -f "$LIB_MARKER" ]]; then return 0; fi
  command -v mvn >/dev/null 2>&1
}

explain_missing_toolchain() {
  cat >&2 <<EOF
kafka.sh: cannot start a Kafka broker: no broker answers on $KAFKA_HOST:$KAFKA_PORT and this machine lacks what scripts/kafka.sh needs to start one (a JDK 17 or newer providing \`java\`, plus Apache Maven providing \`mvn\`, used once to download the Kafka 4.4.0 jars from Maven Central). Install both (e.g. \`apt-get install openjdk-17-jdk-headless maven\`, or \`brew install openjdk@17 maven\`) and rerun, or start the containerised broker instead with \`docker compose up -d kafka\` (it listens on localhost:9092).
EOF
}

pom_hash() { sha256sum "$POM" | awk '{print $1}'; }

ensure_jars() {
  if [[ -f "$LIB_MARKER" && "$(cat "$LIB_MARKER")" == "$(pom_hash)" ]]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { explain_missing_toolchain; exit 1; }
  log "fetching Kafka jars with Maven into $LIB_DIR (one time)"
  rm -rf "$LIB_DIR.tmp"
  mkdir -p "$LIB_DIR.tmp"
  if ! mvn -q -B -f "$POM" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$LIB_DIR.tmp" >"$KAFKA_ROOT/mvn.log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$KAFKA_ROOT/mvn.log" | tail -n 40 >&2
    die "mvn dependency:copy-dependencies failed (full output: $KAFKA_ROOT/mvn.log)"
  fi
  ls "$LIB_DIR.tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || die "kafka jar missing after mvn"
  rm -rf "$LIB_DIR"
  mv "$LIB_DIR.tmp" "$LIB_DIR"
  pom_hash >"$LIB_MARKER"
}

write_tools_log4j() {
  mkdir -p "$KAFKA_ROOT"
  [[ -f "$TOOLS_LOG4J_FILE" ]] && return 0
  cat >"$TOOLS_LOG4J_FILE" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<Configuration status="WARN">
  <Appenders>
    <Console name="STDERR" target="SYSTEM_ERR">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="WARN"><AppenderRef ref="STDERR"/></Root>
  </Loggers>
</Configuration>
EOF
}

# java_tool CLASS ARGS...: run a Kafka class on the jar classpath, quiet logging.
java_tool() {
  ensure_jars
  write_tools_log4j
  java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J_FILE" \
    -cp "$LIB_DIR/*" "$@"
}

write_log4j() {
  cat >"$LOG4J_FILE" <<'EOF'
<?xml version="1.0" encoding="UTF-8"?>
<!-- Broker logging: everything goes to stdout, which kafka.sh redirects to
     broker.log. INFO for kafka.*, WARN for the chatty parts. -->
<Configuration status="WARN">
  <Appenders>
    <Console name="STDOUT" target="SYSTEM_OUT">
      <PatternLayout pattern="[%d] %p %m (%c)%n"/>
    </Console>
  </Appenders>
  <Loggers>
    <Root level="INFO"><AppenderRef ref="STDOUT"/></Root>
    <Logger name="kafka.request.logger" level="WARN"/>
    <Logger name="kafka.network.RequestChannel$" level="WARN"/>
    <Logger name="org.apache.kafka.controller" level="INFO"/>
    <Logger name="kafka.log.LogCleaner" level="WARN"/>
    <Logger name="state.change.logger" level="WARN"/>
    <Logger name="kafka.authorizer.logger" level="WARN"/>
    <Logger name="org.apache.kafka.common.utils.AppInfoParser" level="WARN"/>
    <Logger name="org.apache.kafka.clients" level="WARN"/>
  </Loggers>
</Configuration>
EOF
}

write_server_properties() {
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://$KAFKA_HOST:$KAFKA_PORT"
  local protomap="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  cat >"$PROPS_FILE" <<EOF
# Generated by scripts/kafka.sh for instance '$KAFKA_INSTANCE'; rewritten on every up.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protomap
log.dirs=$DATA_DIR

num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a kill -9, the controller (same JVM) keeps the old broker registration
# until the session expires and rejects the new one until then (default 9 s).
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=168
log.retention.check.interval.ms=300000
EOF
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

cmd_up() {
  local pid
  if pid="$(running_pid)"; then
    if kafka_answers 127.0.0.1 "$KAFKA_PORT"; then
      log "already running (pid $pid, $KAFKA_HOST:$KAFKA_PORT)"
      return 0
    fi
    log "pid $pid is alive but the broker does not answer yet; waiting"
    wait_ready "$pid"
    return 0
  fi
  if kafka_answers 127.0.0.1 "$KAFKA_PORT"; then
    log "a Kafka broker not started by this script already answers on port $KAFKA_PORT (docker compose?); using it, not starting another"
    return 0
  fi
  if ! have_toolchain; then
    explain_missing_toolchain
    exit 1
  fi
  if port_open 127.0.0.1 "$KAFKA_PORT"; then
    die "port $KAFKA_PORT is in use by something that does not speak Kafka"
  fi
  if port_open 127.0.0.1 "$KAFKA_CONTROLLER_PORT"; then
    die "controller port $KAFKA_CONTROLLER_PORT is already in use"
  fi

  ensure_jars
  mkdir -p "$INST_DIR"
  write_log4j
  write_server_properties

  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    local cid
    cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    echo "$cid" >"$CLUSTER_ID_FILE"
    mkdir -p "$DATA_DIR"
    log "formatting $DATA_DIR (cluster id $cid)"
    java_tool kafka.tools.StorageTool format --ignore-formatted \
      -t "$cid" -c "$PROPS_FILE" "${FORMAT_EXTRA_ARGS[@]}" >>"$LOG_FILE" 2>&1 \
      || { tail -n 30 "$LOG_FILE" >&2; die "storage format failed"; }
  fi

  echo "===== kafka.sh up $(date -u +%Y-%m-%dT%H:%M:%SZ) =====" >>"$LOG_FILE"
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS \
    -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_FILE" \
    -Dkafka.logs.dir="$INST_DIR" \
    $KAFKA_JVM_OPTS \
    -cp "$LIB_DIR/*" kafka.Kafka "$PROPS_FILE" \
    >>"$LOG_FILE" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  log "started pid $pid, waiting for $KAFKA_HOST:$KAFKA_PORT (log: $LOG_FILE)"
  wait_ready "$pid"
}

wait_ready() {
  local pid="$1" start now
  start=$(date +%s)
  while true; do
    if ! pid_alive "$pid"; then
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "broker process $pid exited during startup (log: $LOG_FILE)"
    fi
    if kafka_answers 127.0.0.1 "$KAFKA_PORT"; then
      now=$(date +%s)
      log "ready on $KAFKA_HOST:$KAFKA_PORT after $((now - start)) s (pid $pid, data $DATA_DIR)"
      return 0
    fi
    now=$(date +%s)
    if (( now - start >= KAFKA_UP_TIMEOUT )); then
      tail -n 40 "$LOG_FILE" >&2 || true
      die "broker did not answer within ${KAFKA_UP_TIMEOUT}s (pid $pid still running, log: $LOG_FILE)"
    fi
    sleep 0.25
  done
}

wait_gone() {
  local pid="$1" deadline_tenths="$2" i=0
  while pid_alive "$pid"; do
    (( i >= deadline_tenths )) && return 1
    sleep 0.1
    i=$((i + 1))
  done
  return 0
}

cmd_down() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "stopping pid $pid (SIGTERM)"
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 200; then
    log "pid $pid still alive after 20 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 || die "pid $pid survived SIGKILL"
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

cmd_kill9() {
  local pid
  if ! pid="$(running_pid)"; then
    log "not running"
    rm -f "$PID_FILE"
    return 0
  fi
  log "SIGKILL pid $pid"
  kill -KILL "$pid" 2>/dev/null || true
  wait_gone "$pid" 100 || die "pid $pid survived SIGKILL"
  rm -f "$PID_FILE"
}

cmd_restart() {
  cmd_kill9
  cmd_up
}

cmd_status() {
  local pid answers="no"
  kafka_answers 127.0.0.1 "$KAFKA_PORT" && answers="yes"
  if pid="$(running_pid)"; then
    echo "instance:   $KAFKA_INSTANCE"
    echo "state:      running (pid $pid)"
    echo "bootstrap:  $KAFKA_HOST:$KAFKA_PORT (answers: $answers)"
    echo "controller: 127.0.0.1:$KAFKA_CONTROLLER_PORT"
    echo "data dir:   $DATA_DIR"
    echo "log:        $LOG_FILE"
    return 0
  fi
  echo "instance:   $KAFKA_INSTANCE"
  echo "state:      not running"
  echo "bootstrap:  $KAFKA_HOST:$KAFKA_PORT (answers: $answers$([[ $answers == yes ]] && echo ', but not a broker of this instance'))"
  echo "data dir:   $DATA_DIR"
  return 3
}

cmd_dump_log() {
  [[ $# -ge 2 ]] || die "usage: kafka.sh dump-log <topic> <partition> [DumpLogSegments args...]"
  local dir="$DATA_DIR/$1-$2"
  shift 2
  [[ -d "$dir" ]] || die "no partition directory $dir"
  local files=()
  local f
  for f in "$dir"/*.log; do
    [[ -e "$f" ]] && files+=("$f")
  done
  (( ${#files[@]} > 0 )) || die "no .log segments in $dir"
  local joined
  joined="$(IFS=,; echo "${files[*]}")"
  java_tool org.apache.kafka.tools.DumpLogSegments --files "$joined" "$@"
}

cmd_create_topic() {
  [[ $# -ge 1 ]] || die "usage: kafka.sh create-topic <topic> [partitions] [TopicCommand args...]"
  local topic="$1" parts="${2:-3}"
  shift; [[ $# -gt 0 ]] && shift
  java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
    --create --if-not-exists --topic "$topic" --partitions "$parts" --replication-factor 1 "$@"
}

cmd_env() {
  echo "KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT"
  echo "KAFKA_INSTANCE=$KAFKA_INSTANCE"
  echo "KAFKA_INSTANCE_DIR=$INST_DIR"
  echo "KAFKA_DATA_DIR=$DATA_DIR"
}

usage() {
  sed -n '2,/^# ====/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

FORMAT_EXTRA_ARGS=()

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kill9) cmd_kill9 ;;
    restart) cmd_restart ;;
    dump-log) cmd_dump_log "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    run-class) [[ $# -ge 1 ]] || die "usage: kafka.sh run-class <class> [args...]"; java_tool "$@" ;;
    env) cmd_env ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
