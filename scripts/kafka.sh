#!/usr/bin/env bash
# =============================================================================
# scripts/kafka.sh: a real Apache Kafka 4.4.0 broker for local tests, without
# Docker. Needs a JDK 17+ (java) and Maven (mvn); the jars come from Maven
# Central via scripts/kafka/pom.xml.
#
# Usage: scripts/kafka.sh <command> [args]
#   up                      start the instance (idempotent); formats storage on
#                           first start, reuses the data dir afterwards. If the
#                           recorded pid is alive and answers: no-op. If some other
#                           Kafka (e.g. docker compose) answers on the port: no-op,
#                           or with KAFKA_OWN_BROKER=1 (as `make test` sets) an error
#                           saying what to stop. If it runs with a different config:
#                           error (down first).
#   down                    SIGTERM the recorded pid, wait up to 20 s, then SIGKILL
#   status                  print pid/ports/data dir; exit 0 if running, 3 if not
#   kill9                   SIGKILL the recorded pid (crash simulation); waits only
#                           for the process to be gone; data dir is kept
#   restart                 kill9 followed by up (same data dir)
#   freeze / thaw           SIGSTOP / SIGCONT the recorded pid: a hung broker
#                           (connections stay open, nothing is answered)
#   wipe                    down, then delete the instance dir (data, certs, logs)
#   dump-log <topic> <part> [extra DumpLogSegments args]
#                           print DumpLogSegments batch-level output for every
#                           .log segment of that partition (see format below)
#   create-topic <topic> [partitions] [extra TopicCommand args...]
#                           create a topic (partitions default 3, RF 1)
#   run-class <class> [args...]
#                           run any class (e.g. org.apache.kafka.tools.TopicCommand)
#                           on the broker classpath with quiet WARN logging
#   check-security          (KAFKA_SECURITY=1 instances) check every secured
#                           listener with Kafka's Java client, incl. negative cases
#   env                     print shell assignments (KAFKA_BOOTSTRAP, dirs, ...)
#   cluster <sub> [node]    a 3-node KRaft cluster on loopback (see "Cluster" below):
#                           up [N] | down | wipe | status | kill9 N | freeze N |
#                           thaw N | bootstrap | leader <topic> <partition>
#
# Environment:
#   KAFKA_ROOT             root of all files             (default <repo>/.kafka)
#   KAFKA_INSTANCE         instance name                 (default "default")
#   KAFKA_PORT             PLAINTEXT listener port       (default 9092)
#   KAFKA_CONTROLLER_PORT  KRaft controller port         (default 9093)
#   KAFKA_HOST             advertised host name          (default localhost)
#   KAFKA_ADVERTISED_PORT  port advertised for PLAINTEXT (default KAFKA_PORT);
#                          set it to a TCP proxy's port so that every client
#                          connection (after bootstrap) goes through the proxy
#   KAFKA_NODE_ID          KRaft node.id                 (default 1)
#   KAFKA_QUORUM_VOTERS    controller.quorum.voters  (default
#                          <node id>@127.0.0.1:<KAFKA_CONTROLLER_PORT>)
#   KAFKA_REPLICATION      replication factor of new and internal topics (default 1)
#   KAFKA_MIN_ISR          broker default min.insync.replicas (default 1)
#   KAFKA_CLUSTER_ID       cluster id used when formatting (default: random)
#   KAFKA_UP_NOWAIT        1 = `up` starts the JVM and returns without waiting
#                          (used by `cluster up`: a node cannot be ready alone)
#   KAFKA_SECURITY         1 = also open the secured listeners below (default 0)
#   KAFKA_AUTHORIZER       1 = with KAFKA_SECURITY=1, Kafka's StandardAuthorizer:
#                          only ACLs grant (allow.everyone.if.no.acl.found=false);
#                          super users ANONYMOUS (the PLAINTEXT, SSL and controller
#                          listeners) and alice; bob has no ACL until one is added
#                          (default 0)
#   KAFKA_AUTO_CREATE_TOPICS  auto.create.topics.enable (default false: tests create
#                          their topics; true as many production brokers run)
#   KAFKA_SASL_PLAINTEXT_PORT / KAFKA_SSL_PORT / KAFKA_SASL_SSL_PORT
#                          (default KAFKA_PORT+2 / +3 / +4; +1 is left free since
#                          the default controller port 9093 = 9092+1)
#   KAFKA_HEAP_OPTS        JVM heap flags                (default -Xms256m -Xmx512m)
#   KAFKA_JVM_OPTS         extra JVM flags, appended
#   KAFKA_UP_TIMEOUT       seconds to wait for readiness (default 90)
#   KAFKA_OWN_BROKER       1 = `up` refuses a broker it did not start on the port
#                          (tests that read this instance's log segments need their own)
# The port/host/security/node settings are sticky per instance: `up` stores them in
# <instance>/instance.env and later commands for that KAFKA_INSTANCE reuse them
# unless the variable is set in the environment.
#
# Listeners (all bound to 127.0.0.1, advertised as $KAFKA_HOST):
#   PLAINTEXT        $KAFKA_PORT           always          (9092 for "default")
#   CONTROLLER       $KAFKA_CONTROLLER_PORT KRaft only     (9093)
#   SASL_PLAINTEXT   $KAFKA_PORT+2         KAFKA_SECURITY=1 (9094)
#   SSL              $KAFKA_PORT+3         KAFKA_SECURITY=1 (9095)
#   SASL_SSL         $KAFKA_PORT+4         KAFKA_SECURITY=1 (9096)
# SASL mechanisms PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, one user: alice /
# alice-secret (PLAIN via listener.name.<l>.plain.sasl.jaas.config; both SCRAM
# credentials created at format time with StorageTool --add-scram, for every
# instance). A second PLAIN user, bob / bob-secret, for the authorizer's tests.
# TLS: no client auth; throw-away certificates made with openssl, once per
# instance, in <instance>/tls/:
#   ca.pem, ca.key           test CA (PEM) that clients must trust
#   server.pem, server.key   server cert, SAN DNS:localhost,IP:127.0.0.1,
#                            EKU serverAuth, signed by ca.pem
#   server-chain.pem         server.pem + ca.pem
#   server.p12               broker keystore (PKCS12, password "changeit")
#   other-ca.pem, other-ca.key  an unrelated CA, for negative tests
# Java client configs for each listener are written to <instance>/clients/
# (sasl_plaintext-plain, sasl_plaintext-scram, sasl_plaintext-scram256, ssl,
# sasl_ssl-plain, sasl_ssl-scram .properties; "scram" is SCRAM-SHA-512), e.g.
#   scripts/kafka.sh run-class org.apache.kafka.tools.BrokerApiVersionsCommand \
#     --bootstrap-server localhost:9096 --command-config .kafka/default/clients/sasl_ssl-scram.properties
#
# Files (everything lives under $KAFKA_ROOT, which is git-ignored):
#   $KAFKA_ROOT/lib/                      jar cache (.complete marker = pom hash)
#   $KAFKA_ROOT/<instance>/data/          log.dirs (also holds KRaft metadata),
#       e.g. .kafka/default/data/user.events-0/00000000000000000000.log
#   $KAFKA_ROOT/<instance>/broker.log     broker stdout/stderr + log4j2 (INFO);
#                                         appended to across restarts
#   $KAFKA_ROOT/<instance>/kafka.pid      pid of the broker JVM
#   $KAFKA_ROOT/<instance>/server.properties, log4j2.xml, cluster.id, instance.env
#   $KAFKA_ROOT/<instance>/tls/, clients/ (KAFKA_SECURITY=1)
#
# Several instances can run side by side on their own ports and data dirs:
#   KAFKA_INSTANCE=crash1 KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093 scripts/kafka.sh up
#   KAFKA_INSTANCE=crash1 scripts/kafka.sh kill9     # ports remembered
#   KAFKA_INSTANCE=crash1 scripts/kafka.sh up        # same data dir, ~4-6 s
#   KAFKA_INSTANCE=crash1 scripts/kafka.sh wipe
#
# Cluster (fault tests, `make test-cluster`): three instances $KAFKA_CLUSTER-1..3
# (KAFKA_CLUSTER default "cluster"), each broker + controller (node.id 1..3, all
# three are voters), PLAINTEXT on KAFKA_CLUSTER_PORT + 2*(N-1) and controller
# on that + 1 (default base 28192: nodes on 28192/28193, 28194/28195,
# 28196/28197), default replication factor 3, min.insync.replicas 2, heap
# -Xms128m -Xmx384m each (KAFKA_HEAP_OPTS overrides).
#   scripts/kafka.sh cluster up          # start all (formats on first start), wait
#   scripts/kafka.sh cluster bootstrap   # localhost:28192,localhost:28194,...
#   scripts/kafka.sh cluster leader t 0  # node id leading partition 0 of t
#   scripts/kafka.sh cluster kill9 2     # SIGKILL node 2, data kept
#   scripts/kafka.sh cluster up 2        # start node 2 again and wait
#   scripts/kafka.sh cluster freeze 2    # SIGSTOP node 2 (hung broker); thaw 2 resumes
#   scripts/kafka.sh cluster wipe        # kill -9 all, delete their dirs
#
# Each broker JVM uses -Xms256m -Xmx512m, SerialGC, C1 only (fast start), and
# an AppCDS archive in lib/cds/ once one broker has been stopped with `down`.
# Measured on the 2-core box while cargo was building: `up` of a new instance
# (format + start, jars cached) 3.9-4.6 s; `up` of a formatted instance 2.3-2.7 s
# with the CDS archive (4-7 s without); `restart` (kill -9 + up) ~5.3 s, most of
# it the controller waiting out broker.session.timeout.ms=3000 for the old
# registration; first-ever `up` incl. the Maven download of ~45 jars ~7 s.
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
[[ "$KAFKA_INSTANCE" =~ ^[A-Za-z0-9._-]+$ ]] || { echo "kafka.sh: bad KAFKA_INSTANCE '$KAFKA_INSTANCE'" >&2; exit 2; }
INST_DIR="$KAFKA_ROOT/$KAFKA_INSTANCE"
INSTANCE_ENV_FILE="$INST_DIR/instance.env"
STICKY_VARS=(KAFKA_PORT KAFKA_CONTROLLER_PORT KAFKA_HOST KAFKA_SECURITY
             KAFKA_AUTHORIZER KAFKA_AUTO_CREATE_TOPICS
             KAFKA_SASL_PLAINTEXT_PORT KAFKA_SSL_PORT KAFKA_SASL_SSL_PORT
             KAFKA_ADVERTISED_PORT KAFKA_NODE_ID KAFKA_QUORUM_VOTERS
             KAFKA_REPLICATION KAFKA_MIN_ISR)
# Sticky settings: `up` records the instance's ports/security in instance.env;
# later commands for the same KAFKA_INSTANCE reuse them unless overridden in
# the environment (so `KAFKA_INSTANCE=crash1 scripts/kafka.sh up` after a kill9
# comes back on the same ports with the same listeners).
if [[ -f "$INSTANCE_ENV_FILE" ]]; then
  while IFS='=' read -r _k _v; do
    for _s in "${STICKY_VARS[@]}"; do
      if [[ "$_k" == "$_s" && -z "${!_k:-}" && "$_v" =~ ^[A-Za-z0-9._:@,-]+$ ]]; then
        printf -v "$_k" '%s' "$_v"
      fi
    done
  done <"$INSTANCE_ENV_FILE"
  unset _k _v _s
fi
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HOST="${KAFKA_HOST:-localhost}"
# KAFKA_ADVERTISED_PORT and KAFKA_QUORUM_VOTERS stay empty (and are stored
# empty) unless set, so that they follow KAFKA_PORT / KAFKA_CONTROLLER_PORT.
KAFKA_ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-}"
KAFKA_NODE_ID="${KAFKA_NODE_ID:-1}"
KAFKA_QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-}"
ADVERTISED_PORT="${KAFKA_ADVERTISED_PORT:-$KAFKA_PORT}"
QUORUM_VOTERS="${KAFKA_QUORUM_VOTERS:-$KAFKA_NODE_ID@127.0.0.1:$KAFKA_CONTROLLER_PORT}"
KAFKA_REPLICATION="${KAFKA_REPLICATION:-1}"
KAFKA_MIN_ISR="${KAFKA_MIN_ISR:-1}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
KAFKA_UP_TIMEOUT="${KAFKA_UP_TIMEOUT:-90}"
KAFKA_OWN_BROKER="${KAFKA_OWN_BROKER:-0}"
KAFKA_SECURITY="${KAFKA_SECURITY:-0}"
KAFKA_AUTHORIZER="${KAFKA_AUTHORIZER:-0}"
KAFKA_AUTO_CREATE_TOPICS="${KAFKA_AUTO_CREATE_TOPICS:-false}"
KAFKA_SASL_PLAINTEXT_PORT="${KAFKA_SASL_PLAINTEXT_PORT:-$((KAFKA_PORT + 2))}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-$((KAFKA_PORT + 3))}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 4))}"

LIB_DIR="$KAFKA_ROOT/lib"
LIB_MARKER="$LIB_DIR/.complete"
DATA_DIR="$INST_DIR/data"
PID_FILE="$INST_DIR/kafka.pid"
LOG_FILE="$INST_DIR/broker.log"
PROPS_FILE="$INST_DIR/server.properties"
LOG4J_FILE="$INST_DIR/log4j2.xml"
TOOLS_LOG4J_FILE="$KAFKA_ROOT/tools-log4j2.xml"
CLUSTER_ID_FILE="$INST_DIR/cluster.id"
TLS_DIR="$INST_DIR/tls"
CLIENTS_DIR="$INST_DIR/clients"
# One marker per SCRAM mechanism whose credential the data dir holds
# (scram-users.ok: SCRAM-SHA-512, from before SCRAM-SHA-256 was added).
SCRAM_MECHANISMS=(SCRAM-SHA-256 SCRAM-SHA-512)
scram_marker() { [[ "$1" == SCRAM-SHA-512 ]] && echo "$INST_DIR/scram-users.ok" || echo "$INST_DIR/scram-$1.ok"; }
# test users (see header)
SASL_USER="alice"
SASL_PASSWORD="alice-secret"
UNPRIVILEGED_USER="bob"
UNPRIVILEGED_PASSWORD="bob-secret"
KEYSTORE_PASSWORD="changeit"

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

# port_owner PORT: which process listens there, as far as `ss` can tell.
port_owner() {
  local pid props
  pid="$(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2 || true)"
  if [[ -z "$pid" ]]; then
    echo "its process is not visible here"
    return 0
  fi
  props="$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -m1 'server.properties$' || true)"
  echo "pid $pid${props:+, config $props}"
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
  local spec
  spec="$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  if [[ "$spec" =~ ^[0-9]+$ ]] && (( spec < 17 )); then
    log "java is version $spec; Kafka 4.4 needs 17 or newer"
    return 1
  fi
  if [[ -f "$LIB_MARKER" ]]; then return 0; fi
  command -v mvn >/dev/null 2>&1
}

explain_missing_toolchain() {
  cat >&2 <<EOF
kafka.sh: cannot start a Kafka broker: no broker answers on $KAFKA_HOST:$KAFKA_PORT and this machine lacks what scripts/kafka.sh needs to start one (a JDK 17 or newer providing \`java\`, plus Apache Maven providing \`mvn\`, used once to download the Kafka 4.4.0 jars from Maven Central). Install both (e.g. \`apt-get install openjdk-17-jdk-headless maven\`, or \`brew install openjdk@17 maven\`) and rerun, or start the containerised broker instead with \`docker compose up -d kafka\` (it listens on localhost:9092).
EOF
}

pom_hash() { sha256sum "$POM" | awk '{print $1}'; }

jars_ok() { [[ -f "$LIB_MARKER" && "$(cat "$LIB_MARKER")" == "$(pom_hash)" ]]; }

ensure_jars() {
  jars_ok && return 0
  command -v mvn >/dev/null 2>&1 || { explain_missing_toolchain; exit 1; }
  # one Maven download at a time, whatever the instance
  mkdir -p "$KAFKA_ROOT/.locks"
  exec 8>"$KAFKA_ROOT/.locks/lib.lock"
  flock -w 600 8 || die "timed out waiting for another jar download"
  if jars_ok; then exec 8>&-; return 0; fi
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
  exec 8>&-
}

# lock_instance: serialise up/down/kill9/restart/wipe of one instance (parallel
# tests may all call `up`). The broker JVM is started with fds 8/9 closed so it
# does not keep the lock.
lock_instance() {
  mkdir -p "$KAFKA_ROOT/.locks"
  exec 9>"$KAFKA_ROOT/.locks/$KAFKA_INSTANCE.lock"
  flock -w 180 9 || die "timed out waiting for another kafka.sh on instance $KAFKA_INSTANCE"
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
# Application class-data sharing (AppCDS): the first JVM of a kind (broker /
# tool) records the classes it loaded into a dynamic archive when it exits
# normally (-XX:ArchiveClassesAtExit); later JVMs map it (-XX:SharedArchiveFile),
# which cuts broker start-up by ~40% on a busy 2-core machine. Archives live in
# $KAFKA_ROOT/lib/cds/ (deleted with the jar cache) and are keyed by the java
# binary, so a JDK change makes a new one. A stale/invalid archive is only a
# JVM warning (to the broker log / stderr), never a failure (-Xshare:auto).
cds_path() {
  local kind="$1" jbin key
  jbin="$(readlink -f "$(command -v java)")"
  key="$(stat -c '%n %s %Y' "$jbin" | cksum | awk '{print $1}')"
  echo "$LIB_DIR/cds/$kind-$key.jsa"
}

# java_tool CLASS ARGS...: run a Kafka class on the jar classpath, quiet logging.
# JVM warnings go to stderr so that stdout is exactly the tool's output.
java_tool() {
  ensure_jars
  write_tools_log4j
  local jsa pending="" cds rc=0
  jsa="$(cds_path tools)"
  if [[ -s "$jsa" ]]; then
    cds=(-XX:SharedArchiveFile="$jsa")
  else
    mkdir -p "$LIB_DIR/cds"
    pending="$jsa.$$.pending"
    cds=(-XX:ArchiveClassesAtExit="$pending")
  fi
  java -Xms64m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto \
    -Xlog:disable -Xlog:all=warning:stderr -Xlog:cds=off,cds+dynamic=off:stderr \
    "${cds[@]}" \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$TOOLS_LOG4J_FILE" \
    -cp "$LIB_DIR/*" "$@" || rc=$?
  if [[ -n "$pending" ]]; then
    if [[ -s "$pending" ]]; then mv -f "$pending" "$jsa"; else rm -f "$pending"; fi
  fi
  return "$rc"
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

security_enabled() { [[ "$KAFKA_SECURITY" == "1" || "$KAFKA_SECURITY" == "true" ]]; }
authorizer_enabled() { [[ "$KAFKA_AUTHORIZER" == "1" || "$KAFKA_AUTHORIZER" == "true" ]]; }

# render_server_properties: prints the broker config for this instance.
render_server_properties() {
  local listeners="PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  local advertised="PLAINTEXT://$KAFKA_HOST:$ADVERTISED_PORT"
  local protomap="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
  if security_enabled; then
    listeners+=",SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PLAINTEXT_PORT"
    listeners+=",SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT"
    advertised+=",SASL_PLAINTEXT://$KAFKA_HOST:$KAFKA_SASL_PLAINTEXT_PORT"
    advertised+=",SSL://$KAFKA_HOST:$KAFKA_SSL_PORT,SASL_SSL://$KAFKA_HOST:$KAFKA_SASL_SSL_PORT"
    protomap+=",SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL"
  fi
  cat <<EOF
# Generated by scripts/kafka.sh for instance '$KAFKA_INSTANCE'; rewritten on every up.
process.roles=broker,controller
node.id=$KAFKA_NODE_ID
controller.quorum.voters=$QUORUM_VOTERS
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=$protomap
log.dirs=$DATA_DIR

num.partitions=3
default.replication.factor=$KAFKA_REPLICATION
min.insync.replicas=$KAFKA_MIN_ISR
auto.create.topics.enable=$KAFKA_AUTO_CREATE_TOPICS
offsets.topic.replication.factor=$KAFKA_REPLICATION
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=$KAFKA_REPLICATION
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=3
share.coordinator.state.topic.replication.factor=$KAFKA_REPLICATION
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# After a kill -9, the controller (same JVM) keeps the old broker registration
# until the session expires and rejects the new one until then (default 9 s).
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500

num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
# Records are kept whatever their timestamp: the tests stamp events at fixed past times
# (2023, and 0 for the JSON mapping's defaults), and Kafka's 7-day default would delete
# those at its next 5-minute check, in the middle of a test that then reads them back.
log.retention.ms=-1
log.retention.check.interval.ms=300000
# Each segment's offset and time indexes are sparse files mmapped at this size. On
# this project's VMs the first write into one costs the kernel ~8 ms at Kafka's
# 10 MiB default (~0.4 ms at 1 MiB), paid on the request handler thread: a fresh
# 1,000-partition topic would cost 16 s of broker time that no client can avoid.
log.index.size.max.bytes=1048576
# A deleted topic's files go 1 s after its deletion instead of 60 s: scripts/bench.sh
# waits for them between runs, so no run shares the broker with the deletion of the
# one before (1,000 partitions' files).
log.segment.delete.delay.ms=1000
EOF
  if security_enabled; then
    local plain_jaas="org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\" user_$SASL_USER=\"$SASL_PASSWORD\" user_$UNPRIVILEGED_USER=\"$UNPRIVILEGED_PASSWORD\";"
    local scram_jaas="org.apache.kafka.common.security.scram.ScramLoginModule required;"
    cat <<EOF

# ---- KAFKA_SECURITY=1: SASL_PLAINTEXT :$KAFKA_SASL_PLAINTEXT_PORT, SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=$plain_jaas
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=$scram_jaas
listener.name.sasl_ssl.plain.sasl.jaas.config=$plain_jaas
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=$scram_jaas
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$scram_jaas
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/server.p12
ssl.keystore.password=$KEYSTORE_PASSWORD
ssl.key.password=$KEYSTORE_PASSWORD
ssl.client.auth=none
EOF
  fi
  if authorizer_enabled; then
    cat <<EOF

# ---- KAFKA_AUTHORIZER=1: only ACLs grant; ANONYMOUS is the PLAINTEXT, SSL and controller listeners' principal
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS;User:$SASL_USER
allow.everyone.if.no.acl.found=false
EOF
  fi
}

# ensure_tls: throw-away CA + server certificate (SAN DNS:localhost,IP:127.0.0.1)
# and an unrelated second CA, generated once per instance with openssl.
ensure_tls() {
  [[ -f "$TLS_DIR/server.p12" && -f "$TLS_DIR/ca.pem" && -f "$TLS_DIR/other-ca.pem" ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "KAFKA_SECURITY=1 needs the openssl CLI to generate test certificates"
  log "generating test CA and server certificate in $TLS_DIR"
  rm -rf "$TLS_DIR"
  mkdir -p "$TLS_DIR"
  (
    set -e
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout ca.key -out ca.pem -subj "/CN=kafka-producer test CA ($KAFKA_INSTANCE)" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout other-ca.key -out other-ca.pem -subj "/CN=kafka-producer unrelated test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes -sha256 \
      -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null
    printf '%s\n' \
      "basicConstraints=critical,CA:FALSE" \
      "keyUsage=critical,digitalSignature,keyEncipherment" \
      "extendedKeyUsage=serverAuth" \
      "subjectAltName=DNS:localhost,IP:127.0.0.1" \
      "subjectKeyIdentifier=hash" \
      "authorityKeyIdentifier=keyid,issuer" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -sha256 -days 3650 -extfile server.ext -out server.pem 2>/dev/null
    cat server.pem ca.pem >server-chain.pem
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem \
      -name kafka -out server.p12 -passout "pass:$KEYSTORE_PASSWORD"
    rm -f server.csr server.ext ca.srl
  ) || die "certificate generation failed"
}

# write_client_configs: Java client property files for each secured listener,
# used by check-security and handy for manual tests with Kafka's tools.
write_client_configs() {
  mkdir -p "$CLIENTS_DIR"
  local ssl="ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem"
  local plain="sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";"
  local scram="sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$SASL_USER\" password=\"$SASL_PASSWORD\";"
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=PLAIN" "$plain" >"$CLIENTS_DIR/sasl_plaintext-plain.properties"
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=SCRAM-SHA-512" "$scram" >"$CLIENTS_DIR/sasl_plaintext-scram.properties"
  printf '%s\n' "security.protocol=SASL_PLAINTEXT" "sasl.mechanism=SCRAM-SHA-256" "$scram" >"$CLIENTS_DIR/sasl_plaintext-scram256.properties"
  printf '%s\n' "security.protocol=SSL" "$ssl" >"$CLIENTS_DIR/ssl.properties"
  printf '%s\n' "security.protocol=SASL_SSL" "sasl.mechanism=PLAIN" "$plain" "$ssl" >"$CLIENTS_DIR/sasl_ssl-plain.properties"
  printf '%s\n' "security.protocol=SASL_SSL" "sasl.mechanism=SCRAM-SHA-512" "$scram" "$ssl" >"$CLIENTS_DIR/sasl_ssl-scram.properties"
}

# ---------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------

cmd_up() {
  local pid v
  if authorizer_enabled && ! security_enabled; then
    die "KAFKA_AUTHORIZER=1 needs KAFKA_SECURITY=1 (its users log in over SASL)"
  fi
  [[ "$KAFKA_AUTO_CREATE_TOPICS" =~ ^(true|false)$ ]] || die "KAFKA_AUTO_CREATE_TOPICS must be true or false (got '$KAFKA_AUTO_CREATE_TOPICS')"
  if pid="$(running_pid)"; then
    if [[ -f "$PROPS_FILE" ]] && ! diff -q <(render_server_properties) "$PROPS_FILE" >/dev/null; then
      die "already running (pid $pid) with a different configuration (KAFKA_SECURITY or ports changed?); run 'scripts/kafka.sh down' first"
    fi
    if [[ ! -f "$INSTANCE_ENV_FILE" ]]; then
      for v in "${STICKY_VARS[@]}"; do echo "$v=${!v}"; done >"$INSTANCE_ENV_FILE"
    fi
    if kafka_answers 127.0.0.1 "$KAFKA_PORT"; then
      log "already running (pid $pid, $KAFKA_HOST:$KAFKA_PORT$(security_enabled && echo ", SASL_PLAINTEXT :$KAFKA_SASL_PLAINTEXT_PORT, SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT"))"
      return 0
    fi
    log "pid $pid is alive but the broker does not answer yet; waiting"
    wait_ready "$pid"
    return 0
  fi
  if kafka_answers 127.0.0.1 "$KAFKA_PORT"; then
    if [[ "$KAFKA_OWN_BROKER" == "1" ]]; then
      die "a Kafka broker this checkout did not start answers on port $KAFKA_PORT ($(port_owner "$KAFKA_PORT")), and the tests read the log segments of this checkout's own broker ($INST_DIR): stop that broker (\`scripts/kafka.sh down\` in its checkout, or \`docker compose stop kafka\`), or give this checkout ports of its own: make test KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093"
    fi
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
  local p
  for p in "$KAFKA_CONTROLLER_PORT" $(security_enabled && echo "$KAFKA_SASL_PLAINTEXT_PORT $KAFKA_SSL_PORT $KAFKA_SASL_SSL_PORT"); do
    if port_open 127.0.0.1 "$p"; then
      die "port $p (controller or security listener) is already in use"
    fi
  done

  ensure_jars
  mkdir -p "$INST_DIR"
  write_log4j
  if security_enabled; then
    ensure_tls
    write_client_configs
  fi
  render_server_properties >"$PROPS_FILE"
  for v in "${STICKY_VARS[@]}"; do echo "$v=${!v}"; done >"$INSTANCE_ENV_FILE"

  if [[ ! -f "$DATA_DIR/meta.properties" ]]; then
    local cid
    # Kafka cluster id: 16 random bytes, URL-safe base64 without padding. Avoid
    # a leading '-' (argparse would take it for an option).
    cid="${KAFKA_CLUSTER_ID:--}"
    while [[ "$cid" == -* ]]; do
      cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
    done
    echo "$cid" >"$CLUSTER_ID_FILE"
    mkdir -p "$DATA_DIR"
    log "formatting $DATA_DIR (cluster id $cid)"
    # The SCRAM users are always created, so that KAFKA_SECURITY=1 can be turned
    # on later for the same data dir.
    local scram_args=() mech
    for mech in "${SCRAM_MECHANISMS[@]}"; do
      scram_args+=(--add-scram "$mech=[name=$SASL_USER,password=$SASL_PASSWORD]")
    done
    java_tool kafka.tools.StorageTool format --ignore-formatted \
      -t "$cid" -c "$PROPS_FILE" "${scram_args[@]}" \
      >>"$LOG_FILE" 2>&1 \
      || { tail -n 30 "$LOG_FILE" >&2; die "storage format failed"; }
    for mech in "${SCRAM_MECHANISMS[@]}"; do touch "$(scram_marker "$mech")"; done
  fi

  echo "===== kafka.sh up $(date -u +%Y-%m-%dT%H:%M:%SZ) =====" >>"$LOG_FILE"
  local jsa cds
  jsa="$(cds_path broker)"
  rm -f "$INST_DIR/broker.jsa.pending"
  if [[ -s "$jsa" ]]; then
    cds="-XX:SharedArchiveFile=$jsa"
  else
    # written when this broker exits on SIGTERM; `down` moves it to $jsa
    cds="-XX:ArchiveClassesAtExit=$INST_DIR/broker.jsa.pending"
  fi
  # shellcheck disable=SC2086
  setsid nohup java $KAFKA_HEAP_OPTS \
    -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto "$cds" \
    -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$LOG4J_FILE" \
    -Dkafka.logs.dir="$INST_DIR" \
    $KAFKA_JVM_OPTS \
    -cp "$LIB_DIR/*" kafka.Kafka "$PROPS_FILE" \
    >>"$LOG_FILE" 2>&1 </dev/null 8>&- 9>&- &
  pid=$!
  echo "$pid" >"$PID_FILE"
  if [[ "${KAFKA_UP_NOWAIT:-0}" == "1" ]]; then
    log "started pid $pid, not waiting (KAFKA_UP_NOWAIT=1; log: $LOG_FILE)"
    return 0
  fi
  log "started pid $pid, waiting for $KAFKA_HOST:$KAFKA_PORT (log: $LOG_FILE)"
  wait_ready "$pid"
  if security_enabled; then
    local mech
    for mech in "${SCRAM_MECHANISMS[@]}"; do
      [[ -f "$(scram_marker "$mech")" ]] && continue
      # data dir formatted by an older kafka.sh without this credential
      log "creating $mech user $SASL_USER"
      java_tool org.apache.kafka.tools.ConfigCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
        --alter --entity-type users --entity-name "$SASL_USER" \
        --add-config "$mech=[iterations=4096,password=$SASL_PASSWORD]" >&2
      touch "$(scram_marker "$mech")"
    done
    log "security listeners: SASL_PLAINTEXT $KAFKA_HOST:$KAFKA_SASL_PLAINTEXT_PORT, SSL $KAFKA_HOST:$KAFKA_SSL_PORT, SASL_SSL $KAFKA_HOST:$KAFKA_SASL_SSL_PORT (CA: $TLS_DIR/ca.pem)"
  fi
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
  kill -CONT "$pid" 2>/dev/null || true # a frozen broker could not act on SIGTERM
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_gone "$pid" 200; then
    log "pid $pid still alive after 20 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 100 || die "pid $pid survived SIGKILL"
    rm -f "$INST_DIR/broker.jsa.pending"
  fi
  rm -f "$PID_FILE"
  if [[ -s "$INST_DIR/broker.jsa.pending" ]]; then
    mkdir -p "$LIB_DIR/cds"
    mv -f "$INST_DIR/broker.jsa.pending" "$(cds_path broker)"
  fi
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

cmd_signal() {
  local sig="$1" pid
  pid="$(running_pid)" || die "not running"
  log "SIG$sig pid $pid"
  kill -"$sig" "$pid"
}

cmd_restart() {
  cmd_kill9
  cmd_up
}

cmd_wipe() {
  cmd_down
  [[ -d "$INST_DIR" ]] || return 0
  case "$INST_DIR" in
    "$KAFKA_ROOT"/?*) rm -rf -- "$INST_DIR"; log "removed $INST_DIR" ;;
    *) die "refusing to remove $INST_DIR" ;;
  esac
}

cmd_status() {
  local pid answers="no"
  kafka_answers 127.0.0.1 "$KAFKA_PORT" && answers="yes"
  if pid="$(running_pid)"; then
    echo "instance:   $KAFKA_INSTANCE"
    echo "state:      running (pid $pid)"
    echo "bootstrap:  $KAFKA_HOST:$KAFKA_PORT (answers: $answers)"
    [[ "$ADVERTISED_PORT" != "$KAFKA_PORT" ]] && echo "advertised: $KAFKA_HOST:$ADVERTISED_PORT"
    echo "controller: 127.0.0.1:$KAFKA_CONTROLLER_PORT (node $KAFKA_NODE_ID, voters $QUORUM_VOTERS)"
    if grep -q '^sasl.enabled.mechanisms=' "$PROPS_FILE" 2>/dev/null; then
      echo "security:   SASL_PLAINTEXT :$KAFKA_SASL_PLAINTEXT_PORT, SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT (CA $TLS_DIR/ca.pem, user $SASL_USER/$SASL_PASSWORD)"
    else
      echo "security:   off (PLAINTEXT only)"
    fi
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

# check_one NAME EXPECT(ok|fail) PORT CLIENT_PROPS: BrokerApiVersionsCommand.
check_one() {
  local name="$1" expect="$2" port="$3" props="$4" out rc=0
  out="$(timeout 60 bash -c '"$0" run-class org.apache.kafka.tools.BrokerApiVersionsCommand \
      --bootstrap-server "$1" --command-config "$2" 2>&1' \
      "${BASH_SOURCE[0]}" "$KAFKA_HOST:$port" "$props")" || rc=$?
  local got="fail"
  if [[ $rc -eq 0 && "$out" == *"Produce(0)"* ]]; then got="ok"; fi
  if [[ "$got" == "$expect" ]]; then
    echo "  OK    $name (expected $expect)"
    return 0
  fi
  echo "  FAIL  $name: expected $expect, got $got (rc $rc)"
  echo "$out" | grep -E "Exception|ERROR" | head -n 3 | sed 's/^/        /'
  return 1
}

# check-security: verifies every listener with Kafka's own Java client,
# including two negative cases (wrong SCRAM password, server cert checked
# against the unrelated CA).
cmd_check_security() {
  security_enabled || die "set KAFKA_SECURITY=1 (same as for up)"
  running_pid >/dev/null || die "instance is not running; run KAFKA_SECURITY=1 scripts/kafka.sh up"
  grep -q '^sasl.enabled.mechanisms=' "$PROPS_FILE" || die "instance runs without security listeners; down + KAFKA_SECURITY=1 up"
  local bad="$CLIENTS_DIR/negative"
  mkdir -p "$bad"
  sed 's/password="[^"]*"/password="wrong-password"/' "$CLIENTS_DIR/sasl_plaintext-scram.properties" >"$bad/bad-scram-password.properties"
  sed 's/password="[^"]*"/password="wrong-password"/' "$CLIENTS_DIR/sasl_ssl-plain.properties" >"$bad/bad-plain-password.properties"
  sed "s#$TLS_DIR/ca.pem#$TLS_DIR/other-ca.pem#" "$CLIENTS_DIR/ssl.properties" >"$bad/other-ca.properties"
  local failed=0 n=0
  echo "check-security [$KAFKA_INSTANCE]:"
  check_one "SASL_PLAINTEXT PLAIN        :$KAFKA_SASL_PLAINTEXT_PORT" ok "$KAFKA_SASL_PLAINTEXT_PORT" "$CLIENTS_DIR/sasl_plaintext-plain.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "SASL_PLAINTEXT SCRAM-SHA-256 :$KAFKA_SASL_PLAINTEXT_PORT" ok "$KAFKA_SASL_PLAINTEXT_PORT" "$CLIENTS_DIR/sasl_plaintext-scram256.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "SASL_PLAINTEXT SCRAM-SHA-512 :$KAFKA_SASL_PLAINTEXT_PORT" ok "$KAFKA_SASL_PLAINTEXT_PORT" "$CLIENTS_DIR/sasl_plaintext-scram.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "SSL                          :$KAFKA_SSL_PORT" ok "$KAFKA_SSL_PORT" "$CLIENTS_DIR/ssl.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "SASL_SSL PLAIN               :$KAFKA_SASL_SSL_PORT" ok "$KAFKA_SASL_SSL_PORT" "$CLIENTS_DIR/sasl_ssl-plain.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "SASL_SSL SCRAM-SHA-512       :$KAFKA_SASL_SSL_PORT" ok "$KAFKA_SASL_SSL_PORT" "$CLIENTS_DIR/sasl_ssl-scram.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "wrong SCRAM password         :$KAFKA_SASL_PLAINTEXT_PORT" fail "$KAFKA_SASL_PLAINTEXT_PORT" "$bad/bad-scram-password.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "wrong PLAIN password (SSL)   :$KAFKA_SASL_SSL_PORT" fail "$KAFKA_SASL_SSL_PORT" "$bad/bad-plain-password.properties" || failed=$((failed + 1)); n=$((n + 1))
  check_one "TLS against other-ca.pem     :$KAFKA_SSL_PORT" fail "$KAFKA_SSL_PORT" "$bad/other-ca.properties" || failed=$((failed + 1)); n=$((n + 1))
  if (( failed > 0 )); then
    echo "check-security: $failed of $n checks FAILED"
    return 1
  fi
  echo "check-security: all $n checks OK"
}

cmd_env() {
  echo "KAFKA_BOOTSTRAP=$KAFKA_HOST:$KAFKA_PORT"
  echo "KAFKA_INSTANCE=$KAFKA_INSTANCE"
  echo "KAFKA_INSTANCE_DIR=$INST_DIR"
  echo "KAFKA_DATA_DIR=$DATA_DIR"
}

# ---------------------------------------------------------------------------
# cluster: three instances of this script, one per KRaft node (see header).
# Each node command re-runs this script with the node's environment, so the
# per-instance locks, sticky settings and pid files work as for one broker.
# ---------------------------------------------------------------------------
CLUSTER_NAME="${KAFKA_CLUSTER:-cluster}"
# Below Linux's ephemeral range (32768-60999): a listen port inside it can be taken by
# any outgoing connection's local port, and the broker then fails to bind.
CLUSTER_BASE_PORT="${KAFKA_CLUSTER_PORT:-28192}"
CLUSTER_NODES=3

cluster_port() { echo $((CLUSTER_BASE_PORT + 2 * ($1 - 1))); }

cluster_voters() {
  local i voters=""
  for ((i = 1; i <= CLUSTER_NODES; i++)); do
    voters+="${voters:+,}$i@127.0.0.1:$(( $(cluster_port "$i") + 1 ))"
  done
  echo "$voters"
}

# cluster_node N COMMAND [ARGS...]: this script for node N.
cluster_node() {
  local n="$1"
  shift
  [[ "$n" =~ ^[1-3]$ ]] || die "cluster node must be 1, 2 or 3, not '$n'"
  local port
  port="$(cluster_port "$n")"
  local cid_file="$KAFKA_ROOT/$CLUSTER_NAME.cluster.id"
  [[ -f "$cid_file" ]] || die "no cluster id in $cid_file (run cluster up)"
  env -u KAFKA_ADVERTISED_PORT -u KAFKA_SECURITY \
    KAFKA_INSTANCE="$CLUSTER_NAME-$n" KAFKA_PORT="$port" KAFKA_CONTROLLER_PORT=$((port + 1)) \
    KAFKA_NODE_ID="$n" KAFKA_QUORUM_VOTERS="$(cluster_voters)" \
    KAFKA_REPLICATION=3 KAFKA_MIN_ISR=2 KAFKA_CLUSTER_ID="$(cat "$cid_file")" \
    KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx384m}" \
    "${BASH_SOURCE[0]}" "$@"
}

cluster_bootstrap() {
  local i out=""
  for ((i = 1; i <= CLUSTER_NODES; i++)); do
    out+="${out:+,}$KAFKA_HOST:$(cluster_port "$i")"
  done
  echo "$out"
}

cmd_cluster() {
  local sub="${1:-}" i
  [[ $# -gt 0 ]] && shift
  mkdir -p "$KAFKA_ROOT"
  local cid_file="$KAFKA_ROOT/$CLUSTER_NAME.cluster.id"
  case "$sub" in
    up)
      if [[ $# -ge 1 ]]; then
        cluster_node "$1" up
        return
      fi
      if [[ ! -f "$cid_file" ]]; then
        local cid="-"
        while [[ "$cid" == -* ]]; do
          cid="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        done
        echo "$cid" >"$cid_file"
      fi
      # No node can be ready before a majority of controllers runs: start all,
      # then wait for each.
      for ((i = 1; i <= CLUSTER_NODES; i++)); do
        KAFKA_UP_NOWAIT=1 cluster_node "$i" up
      done
      for ((i = 1; i <= CLUSTER_NODES; i++)); do
        cluster_node "$i" up
      done
      log "cluster $CLUSTER_NAME ready: $(cluster_bootstrap)"
      ;;
    down | wipe)
      # wipe deletes the data anyway: SIGKILL is quicker than a controlled
      # shutdown of a cluster that loses its quorum on the way down.
      for ((i = 1; i <= CLUSTER_NODES; i++)); do
        if [[ -f "$cid_file" ]]; then
          [[ "$sub" == wipe ]] && cluster_node "$i" kill9
          cluster_node "$i" "$sub"
        fi
      done
      [[ "$sub" == wipe ]] && rm -f "$cid_file"
      return 0
      ;;
    kill9 | freeze | thaw)
      [[ $# -ge 1 ]] || die "usage: kafka.sh cluster $sub <node 1-3>"
      cluster_node "$1" "$sub"
      ;;
    status)
      local rc=0
      for ((i = 1; i <= CLUSTER_NODES; i++)); do
        cluster_node "$i" status || rc=3
        echo
      done
      return "$rc"
      ;;
    bootstrap) cluster_bootstrap ;;
    leader)
      [[ $# -ge 2 ]] || die "usage: kafka.sh cluster leader <topic> <partition>"
      local topic="$1" part="$2" out
      # TopicCommand --describe prints one line per partition:
      #   Topic: t  Partition: 0  Leader: 2  Replicas: 2,3,1  Isr: 2,3,1 ...
      out="$(java_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$(cluster_bootstrap)" \
        --describe --topic "$topic")" || die "TopicCommand --describe failed"
      echo "$out" | awk -v p="$part" '
        { part = ""; lead = ""; for (i = 1; i < NF; i++) { if ($i == "Partition:") part = $(i + 1); if ($i == "Leader:") lead = $(i + 1) } }
        part == p && lead != "" { print lead; found = 1; exit }
        END { if (!found) exit 1 }' || die "no leader line for partition $part of $topic in: $out"
      ;;
    *) die "usage: kafka.sh cluster up [N] | down | wipe | status | kill9 N | freeze N | thaw N | bootstrap | leader <topic> <partition>" ;;
  esac
}

usage() {
  sed -n '2,/^# ====/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    up) lock_instance; cmd_up ;;
    down) lock_instance; cmd_down ;;
    status) cmd_status ;;
    kill9) lock_instance; cmd_kill9 ;;
    restart) lock_instance; cmd_restart ;;
    freeze) lock_instance; cmd_signal STOP ;;
    thaw) lock_instance; cmd_signal CONT ;;
    wipe) lock_instance; cmd_wipe ;;
    dump-log) cmd_dump_log "$@" ;;
    create-topic) cmd_create_topic "$@" ;;
    run-class) [[ $# -ge 1 ]] || die "usage: kafka.sh run-class <class> [args...]"; java_tool "$@" ;;
    check-security) cmd_check_security ;;
    env) cmd_env ;;
    cluster) cmd_cluster "$@" ;;
    -h|--help|help) usage ;;
    *) usage; exit 2 ;;
  esac
}

main "$@"
