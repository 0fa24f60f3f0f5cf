#!/usr/bin/env bash
# =============================================================================
# scripts/bench.sh: this project's producer ("ours") against two peers, librdkafka
# (through the rdkafka crate) and krafka (a pure-Rust client), side by side on a
# local Kafka broker. Run by `make bench`.
#
# Builds benches/vs-librdkafka (its own workspace; librdkafka is built from
# source with cmake there and never linked into the product), starts the broker
# if none answers (scripts/kafka.sh up), then for each scenario runs the sides in
# turn, A B C A B C ..., each run its own process on a fresh topic made with
# `scripts/kafka.sh create-topic`, measured by /usr/bin/time -f '%e %U %S %M'
# (wall s, user s, sys s, peak RSS KB). Prints per side the MEDIAN of each figure
# and the ratios ours/librdkafka and ours/krafka, as Markdown, and keeps every
# run's raw figures. Every side sends the same pre-generated events with the
# original producer's settings (zstd, linger 5 ms, 1 MB / 10,000-record batches,
# 5 s message timeout, 1 GiB buffer, acks=all, murmur2); see BENCHMARKS.md.
#
# Scenarios (BENCH_SCENARIOS, default "p3 p12 rate p100 p1000 p1000-long latency"):
#   p3          3 partitions, as fast as the producer goes
#   p12         12 partitions, as fast as the producer goes
#   rate        3 partitions at BENCH_RATE events/s: ack latency at equal load
#   p100        100 partitions, as fast as the producer goes
#   p1000       1,000 partitions, as fast as it goes, 5 s message timeout: the share
#               delivered (a run with timed-out events counts, it is the result)
#   p1000-long  the same with BENCH_LONG_TIMEOUT_MS, long enough for every side to
#               deliver everything: events/s
#   latency     3 partitions at BENCH_LATENCY_RATE events/s through a proxy that
#               delays each direction by BENCH_LATENCY_DELAY_MS (a 10 ms round
#               trip by default), on a broker of its own (instance bench-latency,
#               ports BENCH_LATENCY_PORT and the two above it) that advertises the
#               proxy's port, so every connection goes through the proxy. The
#               instance is wiped (stopped, data deleted) at the end.
#   delay-p3    3 partitions, as fast as the producer goes, over that delayed link
#   delay-p100  100 partitions, as fast as the producer goes, over that delayed link
#   delay-p1000 1,000 partitions, the same, 5 s message timeout: the share delivered
#               (these three are not in the default list:
#               BENCH_SCENARIOS="delay-p3 delay-p100 delay-p1000")
#   json-file   JSON lines, what users do most: one file of BENCH_JSON_EVENTS generator
#               events in the protobuf JSON mapping (eventId, userId, ...; written by
#               `vs-librdkafka gen-json`, json_lines::write_event_json, in BENCH_OUT),
#               3 partitions, full speed. ours = the release binary as a whole process,
#               `target/release/kafka-producer produce --input FILE --topic T --broker B
#               --summary json` (built here with `cargo build --release`, nice 19;
#               CARGO_TARGET_DIR is honoured); the peers = `vs-librdkafka
#               librdkafka-json|krafka-json --input FILE`: serde_json into a derived
#               struct, prost, keyed by user_id, their usual settings. Not in the
#               default list (run with BENCH_SCENARIOS="json-file json-stdin metrics").
#   json-stdin  the same file through a pipe: `cat FILE | <side> ... --input -`
#               (/usr/bin/time measures the producer, not cat)
#   metrics     ours only, `produce --input FILE` without and with `--metrics-addr
#               127.0.0.1:BENCH_METRICS_PORT`, alternating, while a loop GETs /metrics
#               every BENCH_SCRAPE_MS with curl during both (refused when not served,
#               so the machine carries the same scraper either way); the scrapes
#               answered are counted (scrapes_ok)
#   For these three the headline events/s is delivered events / the process's wall
#   time (/usr/bin/time %e), the same clock for every side; each side's own clock
#   (first line read to last report, after connecting) is a row of its own.
#
# Environment (all optional):
#   BENCH_EVENTS        events per run                       (default 2000000)
#   BENCH_RUNS          runs per side per scenario           (default 3)
#   BENCH_SIDES         which sides, in run order  (default "ours librdkafka krafka")
#   BENCH_RATE          events/s of the rate scenario        (default 50000)
#   BENCH_RATE_EVENTS   events per run of the rate scenario  (default: BENCH_EVENTS
#                       capped at 500000, i.e. 10 s per run at 50,000/s)
#   BENCH_LONG_TIMEOUT_MS  message timeout of p1000-long     (default 300000: krafka
#                       caps its buffer by bytes only, so it accepts all the events
#                       at once and its last ones wait for all the others)
#   BENCH_LATENCY_RATE  events/s of the latency scenario     (default 20000)
#   BENCH_LATENCY_EVENTS events per run of it                (default: BENCH_EVENTS
#                       capped at 200000, i.e. 10 s per run at 20,000/s)
#   BENCH_LATENCY_DELAY_MS  one-way delay of its proxy       (default 5)
#   BENCH_LATENCY_PORT  its broker's port; +1 controller, +2 proxy (default 19592)
#   BENCH_LATENCY_WARMUP_EVENTS  events of each side's unrecorded warm-up run on that
#                       fresh broker, at BENCH_LATENCY_RATE (default 200000: 10 s each)
#   BENCH_LIBRDKAFKA_IDEMPOTENCE  1: the librdkafka side runs with enable.idempotence
#                       (at most 5 requests in flight per broker, as ours); default 0,
#                       the original producer's setting. The tables' header says which.
#   BENCH_USERS         distinct user ids / keys             (default 100000)
#   BENCH_SEED          generator seed, same for all sides   (default 1)
#   BENCH_SCENARIOS     which scenarios, in order            (default above)
#   BENCH_JSON_EVENTS   lines of the JSON-lines file         (default 1000000)
#   BENCH_JSON_FILE     use this JSON-lines file (made by `vs-librdkafka gen-json`)
#                       instead of writing one; it must have BENCH_JSON_EVENTS lines,
#                       and it is kept
#   BENCH_METRICS_PORT  port of --metrics-addr in the metrics scenario (default 19464)
#   BENCH_SCRAPE_MS     the scraper's interval               (default 100)
#   BENCH_ALLOCATOR     mimalloc (the product binary's, default) or system: the
#                       global allocator of the benchmark process, all sides
#   BENCH_OUT           output directory      (default target/bench/<date-time>)
#   KAFKA_PORT          broker port, as scripts/kafka.sh     (default 9092)
#   KAFKA_ROOT          as scripts/kafka.sh (where the broker's pid and data are)
#
# Output, in BENCH_OUT:
#   runs.jsonl     one JSON object per run: the harness's line (events_per_s,
#                  delivered, failures, mb_per_s, ack_p50_ms, ack_p99_ms,
#                  send_cpu_s, max_sockets, ...) plus scenario, run, load average
#                  before the run, the partitions the broker held before it
#                  (broker_partitions_before), the /usr/bin/time figures
#                  (time_wall_s, time_user_s, time_sys_s, time_max_rss_kb), and
#                  broker_cpu_s: the broker's CPU seconds during the run (it shares
#                  the cores with the producer). Runs of json-file, json-stdin and
#                  metrics carry kind "cli", input (file|stdin), side (ours,
#                  ours-metrics, librdkafka, krafka), wall_events_per_s, scrapes_ok;
#                  ours's line is made from its --summary json (events_per_s: its own
#                  clock; ack_p50/p99_ms: its engine's histogram)
#   events.jsonl   the JSON-lines file of those scenarios (deleted at the end unless
#                  BENCH_KEEP_INPUT=1)
#   summary.md     the tables printed at the end
# Topics are named bench-<scenario>-<side>-<run>-<stamp>; those of 100 partitions
# or more are deleted right after their run (a broker holding thousands of
# partitions slows down), the rest at the end (BENCH_KEEP_TOPICS=1 keeps them all).
# =============================================================================
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"

EVENTS="${BENCH_EVENTS:-2000000}"
RUNS="${BENCH_RUNS:-3}"
RATE="${BENCH_RATE:-50000}"
RATE_EVENTS="${BENCH_RATE_EVENTS:-$(( EVENTS < 500000 ? EVENTS : 500000 ))}"
USERS="${BENCH_USERS:-100000}"
SEED="${BENCH_SEED:-1}"
SCENARIOS="${BENCH_SCENARIOS:-p3 p12 rate p100 p1000 p1000-long latency}"
JSON_EVENTS="${BENCH_JSON_EVENTS:-1000000}"
METRICS_PORT="${BENCH_METRICS_PORT:-19464}"
SCRAPE_MS="${BENCH_SCRAPE_MS:-100}"
SIDES="${BENCH_SIDES:-ours librdkafka krafka}"
LONG_TIMEOUT_MS="${BENCH_LONG_TIMEOUT_MS:-300000}"
LATENCY_RATE="${BENCH_LATENCY_RATE:-20000}"
LATENCY_EVENTS="${BENCH_LATENCY_EVENTS:-$(( EVENTS < 200000 ? EVENTS : 200000 ))}"
LATENCY_DELAY_MS="${BENCH_LATENCY_DELAY_MS:-5}"
LATENCY_PORT="${BENCH_LATENCY_PORT:-19592}"
LATENCY_WARMUP_EVENTS="${BENCH_LATENCY_WARMUP_EVENTS:-200000}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-target/bench/$STAMP}"
PORT="${KAFKA_PORT:-9092}"
BROKER="localhost:$PORT"
BIN="benches/vs-librdkafka/target/release/vs-librdkafka"
TIME=/usr/bin/time

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }

for n in "$EVENTS" "$RUNS" "$RATE_EVENTS" "$USERS" "$SEED" "$LONG_TIMEOUT_MS" "$LATENCY_RATE" \
         "$LATENCY_EVENTS" "$LATENCY_DELAY_MS" "$LATENCY_PORT" "$LATENCY_WARMUP_EVENTS" "$JSON_EVENTS" "$METRICS_PORT" "$SCRAPE_MS"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || die "counts must be positive integers (got '$n')"
done
for side in $SIDES; do
  [[ "$side" =~ ^(ours|librdkafka|krafka)$ ]] || die "unknown side '$side' in BENCH_SIDES (allowed: ours librdkafka krafka)"
done
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
if [[ ! -x "$TIME" ]]; then
  log "installing GNU time (apt-get install time)"
  apt-get install -y time >/dev/null || die "GNU time is needed at $TIME (apt-get install time)"
fi

# librdkafka 2.12.1 (rdkafka-sys 4.10) includes <curl/curl.h> even when built without
# curl, so its build needs the header; cmake and a C/C++ compiler build it.
need=()
command -v cmake >/dev/null || need+=(cmake)
command -v c++ >/dev/null || need+=(g++)
[[ -e /usr/include/curl/curl.h || -e /usr/include/x86_64-linux-gnu/curl/curl.h ]] || need+=(libcurl4-openssl-dev)
[[ -e /usr/include/zlib.h ]] || need+=(zlib1g-dev)
if (( ${#need[@]} > 0 )); then
  log "installing build dependencies of librdkafka: ${need[*]}"
  apt-get install -y "${need[@]}" >/dev/null || die "cannot install ${need[*]} (apt-get install ${need[*]})"
fi

log "building benches/vs-librdkafka (release, nice 19; the first build compiles librdkafka with cmake)"
case "${BENCH_ALLOCATOR:-mimalloc}" in
  mimalloc) features=() ;;
  system) features=(--no-default-features) ;;
  *) die "BENCH_ALLOCATOR must be mimalloc or system (got '${BENCH_ALLOCATOR}')" ;;
esac
(cd benches/vs-librdkafka && nice -n 19 cargo build --release --quiet "${features[@]}") || die "build failed (needs cmake, a C/C++ compiler, zlib; see BENCHMARKS.md)"
# The JSON-lines scenarios run the product's own release binary.
OURS_BIN="${CARGO_TARGET_DIR:-$REPO_DIR/target}/release/kafka-producer"
if [[ " $SCENARIOS " =~ \ (json-file|json-stdin|metrics)\  ]]; then
  command -v curl >/dev/null || die "curl is needed for the metrics scenario (apt-get install curl)"
  log "building kafka-producer (cargo build --release, nice 19)"
  nice -n 19 cargo build --release --quiet --bin kafka-producer || die "cargo build --release failed"
  [[ -x "$OURS_BIN" ]] || die "no $OURS_BIN after cargo build --release"
fi
scripts/kafka.sh up >&2

# What "ours" is: the commit of the product crate, +dirty if src/ or the manifest differ.
REV="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock vendor || echo +dirty)"

mkdir -p "$OUT"
RUNS_FILE="$OUT/runs.jsonl"
: > "$RUNS_FILE"
log "results in $OUT; events $EVENTS (rate scenario $RATE_EVENTS at $RATE/s), runs $RUNS per side: $SIDES"

KROOT="${KAFKA_ROOT:-$REPO_DIR/.kafka}"
MAIN_INSTANCE="${KAFKA_INSTANCE:-default}"
LATENCY_INSTANCE=bench-latency
# The broker of the current scenario: its instance (for scripts/kafka.sh), the address
# the producers bootstrap from, and its JVM's pid, to charge each run the broker CPU it
# caused (the broker shares the machine's cores with the producer under test; empty if
# the broker is not one of scripts/kafka.sh's).
INSTANCE="$MAIN_INSTANCE"
BROKER_PID="$(cat "$KROOT/$INSTANCE/kafka.pid" 2>/dev/null || true)"
TICKS="$(getconf CLK_TCK)"
PROXY_PID=""
SMALL_TOPICS=0  # 1 once a topic is left for the deletion at the end

# kafka: scripts/kafka.sh for the current scenario's broker.
kafka() {
  if [[ "$INSTANCE" == "$LATENCY_INSTANCE" ]]; then
    KAFKA_INSTANCE="$LATENCY_INSTANCE" KAFKA_PORT="$LATENCY_PORT" \
      KAFKA_CONTROLLER_PORT="$((LATENCY_PORT + 1))" KAFKA_ADVERTISED_PORT="$((LATENCY_PORT + 2))" \
      scripts/kafka.sh "$@"
  else
    KAFKA_INSTANCE="$MAIN_INSTANCE" scripts/kafka.sh "$@"
  fi
}

# The latency scenario's broker and proxy: started before it, wiped after it (and on
# any exit while they run). Only ever this script's own instance.
latency_up() {
  INSTANCE="$LATENCY_INSTANCE"
  log "latency broker: instance $LATENCY_INSTANCE on port $LATENCY_PORT, advertising the proxy's port $((LATENCY_PORT + 2)) (${LATENCY_DELAY_MS} ms each way)"
  "$BIN" proxy --listen "$((LATENCY_PORT + 2))" --upstream "127.0.0.1:$LATENCY_PORT" \
    --delay-ms "$LATENCY_DELAY_MS" 2>"$OUT/proxy.log" &
  PROXY_PID=$!
  trap latency_down EXIT
  kafka wipe >/dev/null 2>&1 || true
  kafka up >&2
  BROKER_PID="$(cat "$KROOT/$LATENCY_INSTANCE/kafka.pid" 2>/dev/null || true)"
  BROKER="localhost:$((LATENCY_PORT + 2))"
  # A freshly started JVM compiles its hot paths during its first minute of work: one
  # unrecorded run per side keeps that cost out of the measured runs (with 2 s each,
  # every side's p99 still fell 2-4x from its first measured run to its third).
  kafka create-topic "bench-warmup-$STAMP" 3 >/dev/null
  local side
  for side in $SIDES; do
    "$BIN" "$side" --broker "$BROKER" --topic "bench-warmup-$STAMP" --events "$LATENCY_WARMUP_EVENTS" \
      --rate "$LATENCY_RATE" >/dev/null 2>&1 || log "warm-up run of $side failed (ignored)"
  done
}
latency_down() {
  if [[ "$INSTANCE" == "$LATENCY_INSTANCE" ]]; then
    kafka wipe >/dev/null 2>&1 || log "could not wipe the $LATENCY_INSTANCE broker"
  fi
  if [[ -n "$PROXY_PID" ]]; then
    kill "$PROXY_PID" 2>/dev/null || true
    wait "$PROXY_PID" 2>/dev/null || true
  fi
  PROXY_PID=""
  INSTANCE="$MAIN_INSTANCE"
  BROKER_PID="$(cat "$KROOT/$INSTANCE/kafka.pid" 2>/dev/null || true)"
  BROKER="localhost:$PORT"
  trap - EXIT
}

# broker_dirs REGEX: how many of the current broker's data directories match REGEX.
broker_dirs() {
  # The broker deletes directories while this looks: a vanished one is not an error.
  { ls "$KROOT/$INSTANCE/data" 2>/dev/null || true; } | grep -cE -- "$1" || true
}
# broker_partitions: how many partitions the current broker holds, as a fact about the
# conditions of a run.
broker_partitions() { broker_dirs '-[0-9]+$'; }
# broker_deleting: how many deleted partitions' directories the broker has not removed
# yet (renamed *-delete; scripts/kafka.sh has it remove them 1 s after the deletion).
broker_deleting() { broker_dirs '-delete$'; }
# broker_cpu: user+system CPU seconds of the broker so far, or 0 if unknown.
broker_cpu() {
  if [[ -n "$BROKER_PID" && -r "/proc/$BROKER_PID/stat" ]]; then
    awk -v t="$TICKS" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$BROKER_PID/stat"
  else
    echo 0
  fi
}

# run_one SCENARIO PARTITIONS SIDE RUN EVENTS TIMEOUT_MS [RATE]; $order is the
# scenario's position.
run_one() {
  local scenario="$1" partitions="$2" side="$3" run="$4" events="$5" timeout_ms="$6" rate="${7:-}"
  local topic="bench-$scenario-$side-$run-$STAMP"
  local held
  held="$(broker_partitions)"
  kafka create-topic "$topic" "$partitions" >/dev/null
  # Every side starts on a topic whose partitions all accept writes: a broker refuses
  # them for the seconds it takes to create a new topic's partition logs.
  "$BIN" wait-topic --topic "$topic" --broker "$BROKER" >/dev/null || die "topic $topic is not served"
  local load
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  local args=("$side" --broker "$BROKER" --topic "$topic" --events "$events" --users "$USERS" --seed "$SEED"
              --message-timeout-ms "$timeout_ms")
  [[ -n "$rate" ]] && args+=(--rate "$rate")
  local rc=0 broker_before broker_after
  broker_before="$(broker_cpu)"
  "$TIME" -f '%e %U %S %M' -o "$OUT/$topic.time" "$BIN" "${args[@]}" > "$OUT/$topic.json" 2> "$OUT/$topic.stderr" || rc=$?
  broker_after="$(broker_cpu)"
  # Exit 1 with its JSON line: some events failed (timed out); that is a result, kept.
  if [[ $rc -ne 0 ]] && ! [[ $rc -eq 1 && -s "$OUT/$topic.json" ]]; then
    cat "$OUT/$topic.json" "$OUT/$topic.stderr" >&2
    die "run $topic failed (exit $rc); see above"
  fi
  if [[ "$partitions" -lt 100 && "$INSTANCE" == "$MAIN_INSTANCE" ]]; then
    SMALL_TOPICS=1
  elif [[ "$partitions" -ge 100 && "${BENCH_KEEP_TOPICS:-0}" != 1 ]]; then
    kafka run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$(broker_port)" \
      --delete --topic "$topic" >/dev/null 2>&1 || log "could not delete topic $topic"
    # Let the broker take the topic's partitions out of service and delete their files
    # (it renames their directories at once and deletes them a second later) before the
    # next run, which would otherwise share the broker with that work.
    local waited=0 max_waits=120  # half seconds: 60 s
    while (( ($(broker_partitions) > held + 10 || $(broker_deleting) > 0) && waited < max_waits )); do
      sleep 0.5; waited=$((waited + 1))
    done
    (( waited < max_waits )) || log "the broker still deletes topic $topic's partitions after 60 s; going on"
  fi
  local wall user sys rss
  read -r wall user sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$OUT/$topic.time" | tail -n 1)
  jq -c --arg scenario "$scenario" --argjson order "$order" --argjson run "$run" --arg load "$load" \
     --argjson held "$held" --argjson exit_code "$rc" \
     --argjson broker_cpu "$(awk -v a="$broker_before" -v b="$broker_after" 'BEGIN { printf "%.2f", b - a }')" \
     --argjson wall "$wall" --argjson user "$user" --argjson sys "$sys" --argjson rss "$rss" \
     '. + {scenario: $scenario, order: $order, run: $run, load_before: $load,
           time_wall_s: $wall, time_user_s: $user, time_sys_s: $sys, time_max_rss_kb: $rss,
           broker_cpu_s: $broker_cpu, broker_partitions_before: $held, exit_code: $exit_code}' \
     "$OUT/$topic.json" >> "$RUNS_FILE"
  jq -r '"  \(.scenario) run \(.run) \(.mode): \(.events_per_s|floor) events/s, delivered \(.delivered)/\(.events), ack p50 \(.ack_p50_ms) ms p99 \(.ack_p99_ms) ms, CPU \((.time_user_s + .time_sys_s) * 100 | round / 100) s (broker \(.broker_cpu_s) s), RSS \(.time_max_rss_kb/1024|floor) MiB, sockets \(.max_sockets), load before \(.load_before), broker held \(.broker_partitions_before) partitions"' \
     <(tail -n 1 "$RUNS_FILE") >&2
}

# The JSON-lines file of json-file, json-stdin and metrics: made once per invocation.
JSON_FILE=""
OWN_JSON_FILE=0
json_file() {
  if [[ -z "$JSON_FILE" && -n "${BENCH_JSON_FILE:-}" ]]; then
    JSON_FILE="$BENCH_JSON_FILE"
    [[ -r "$JSON_FILE" ]] || die "BENCH_JSON_FILE $JSON_FILE is not readable"
    local lines
    lines="$(wc -l < "$JSON_FILE")"
    [[ "$lines" -eq "$JSON_EVENTS" ]] || die "BENCH_JSON_FILE has $lines lines, BENCH_JSON_EVENTS is $JSON_EVENTS"
    log "JSON lines from $JSON_FILE ($lines lines)"
  fi
  if [[ -z "$JSON_FILE" ]]; then
    OWN_JSON_FILE=1
    JSON_FILE="$OUT/events.jsonl"
    log "writing $JSON_EVENTS JSON lines to $JSON_FILE"
    "$BIN" gen-json --out "$JSON_FILE" --events "$JSON_EVENTS" --users "$USERS" --seed "$SEED" \
      > "$OUT/gen-json.json" || die "gen-json failed"
  fi
}

# run_cli SCENARIO SIDE RUN INPUT(file|stdin): one run of a JSON-lines scenario.
run_cli() {
  local scenario="$1" side="$2" run="$3" input="$4"
  local topic="bench-$scenario-$side-$run-$STAMP"
  local held load
  held="$(broker_partitions)"
  kafka create-topic "$topic" 3 >/dev/null
  # The whole process is measured: it should not include waiting for the new topic to
  # be served (a loaded broker has taken over 15 s).
  "$BIN" wait-topic --topic "$topic" --broker "$BROKER" >/dev/null || die "topic $topic is not served"
  local src="$JSON_FILE"
  [[ "$input" == stdin ]] && src=-
  local cmd
  case "$side" in
    ours) cmd=("$OURS_BIN" produce --input "$src" --topic "$topic" --broker "$BROKER" --summary json) ;;
    ours-metrics) cmd=("$OURS_BIN" produce --input "$src" --topic "$topic" --broker "$BROKER" --summary json
                       --metrics-addr "127.0.0.1:$METRICS_PORT") ;;
    librdkafka|krafka) cmd=("$BIN" "$side-json" --input "$src" --topic "$topic" --broker "$BROKER"
                            --events "$JSON_EVENTS" --message-timeout-ms 5000) ;;
    *) die "unknown side $side" ;;
  esac
  # The metrics scenario scrapes during every run, served or not.
  local scraper="" scrapes="$OUT/$topic.scrapes"
  : > "$scrapes"
  if [[ "$scenario" == metrics ]]; then
    local interval
    interval="$(awk -v ms="$SCRAPE_MS" 'BEGIN { printf "%.3f", ms / 1000 }')"
    ( while :; do
        curl -s -o /dev/null -m 1 -w '%{http_code}\n' "http://127.0.0.1:$METRICS_PORT/metrics" >> "$scrapes" || true
        sleep "$interval"
      done ) &
    scraper=$!
  fi
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  local rc=0 broker_before broker_after
  broker_before="$(broker_cpu)"
  if [[ "$input" == stdin ]]; then
    cat "$JSON_FILE" | "$TIME" -f '%e %U %S %M' -o "$OUT/$topic.time" "${cmd[@]}" > "$OUT/$topic.json" 2> "$OUT/$topic.stderr" || rc=$?
  else
    "$TIME" -f '%e %U %S %M' -o "$OUT/$topic.time" "${cmd[@]}" > "$OUT/$topic.json" 2> "$OUT/$topic.stderr" || rc=$?
  fi
  broker_after="$(broker_cpu)"
  if [[ -n "$scraper" ]]; then
    kill "$scraper" 2>/dev/null || true
    wait "$scraper" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 ]] && ! [[ $rc -eq 1 && -s "$OUT/$topic.json" ]]; then
    cat "$OUT/$topic.json" "$OUT/$topic.stderr" >&2
    die "run $topic failed (exit $rc); see above"
  fi
  SMALL_TOPICS=1
  local wall user sys rss line
  read -r wall user sys rss < <(grep -E '^[0-9.]+ [0-9.]+ [0-9.]+ [0-9]+$' "$OUT/$topic.time" | tail -n 1)
  if [[ "$side" == ours* ]]; then
    # The binary's --summary json, in the harness's names.
    line="$(jq -c --arg topic "$topic" '{mode: "ours", topic: $topic, events: .sent, delivered, failures: .failed,
              invalid_lines, events_per_s, mb_per_s, wall_s: .elapsed_s, ack_p50_ms: .ack_latency_p50_ms,
              ack_p99_ms: .ack_latency_p99_ms, batches, records_per_batch: .mean_records_per_batch,
              partitions: 3, message_timeout_ms: 5000, allocator: "mimalloc"}' "$OUT/$topic.json")"
  else
    line="$(tail -n 1 "$OUT/$topic.json")"
  fi
  jq -c --arg scenario "$scenario" --argjson order "$order" --argjson run "$run" --arg load "$load" \
     --arg side "$side" --arg input "$input" --argjson held "$held" --argjson exit_code "$rc" \
     --argjson scrapes_ok "$(grep -c '^200$' "$scrapes" || true)" \
     --argjson scrapes "$(wc -l < "$scrapes")" \
     --argjson broker_cpu "$(awk -v a="$broker_before" -v b="$broker_after" 'BEGIN { printf "%.2f", b - a }')" \
     --argjson wall "$wall" --argjson user "$user" --argjson sys "$sys" --argjson rss "$rss" \
     '. + {kind: "cli", scenario: $scenario, side: $side, input: $input, order: $order, run: $run,
           load_before: $load, time_wall_s: $wall, time_user_s: $user, time_sys_s: $sys,
           time_max_rss_kb: $rss, wall_events_per_s: (.delivered / $wall), scrapes: $scrapes,
           scrapes_ok: $scrapes_ok, broker_cpu_s: $broker_cpu, broker_partitions_before: $held,
           exit_code: $exit_code}' <<< "$line" >> "$RUNS_FILE"
  rm -f "$scrapes"
  jq -r '"  \(.scenario) run \(.run) \(.side): \(.wall_events_per_s|floor) events/s (whole process; own clock \(.events_per_s|floor)), delivered \(.delivered)/\(.events), CPU \((.time_user_s + .time_sys_s) * 100 | round / 100) s (broker \(.broker_cpu_s) s), RSS \(.time_max_rss_kb/1024|floor) MiB, scrapes answered \(.scrapes_ok)/\(.scrapes), load before \(.load_before)"' \
     <(tail -n 1 "$RUNS_FILE") >&2
}

broker_port() {
  if [[ "$INSTANCE" == "$LATENCY_INSTANCE" ]]; then echo "$LATENCY_PORT"; else echo "$PORT"; fi
}

order=0
for scenario in $SCENARIOS; do
  order=$((order + 1))
  timeout_ms=5000
  case "$scenario" in
    p3) partitions=3; rate=""; events="$EVENTS" ;;
    p12) partitions=12; rate=""; events="$EVENTS" ;;
    rate) partitions=3; rate="$RATE"; events="$RATE_EVENTS" ;;
    p100) partitions=100; rate=""; events="$EVENTS" ;;
    p1000) partitions=1000; rate=""; events="$EVENTS" ;;
    p1000-long) partitions=1000; rate=""; events="$EVENTS"; timeout_ms="$LONG_TIMEOUT_MS" ;;
    latency) partitions=3; rate="$LATENCY_RATE"; events="$LATENCY_EVENTS" ;;
    delay-p3) partitions=3; rate=""; events="$EVENTS" ;;
    delay-p100) partitions=100; rate=""; events="$EVENTS" ;;
    delay-p1000) partitions=1000; rate=""; events="$EVENTS" ;;
    json-file|json-stdin|metrics)
      json_file
      if [[ "$scenario" == metrics ]]; then cli_sides="ours ours-metrics"; else cli_sides="$SIDES"; fi
      input=file; [[ "$scenario" == json-stdin ]] && input=stdin
      log "scenario $scenario: 3 partitions, $JSON_EVENTS JSON lines from $input, sides $cli_sides, broker $BROKER; load $(cut -d' ' -f1-3 /proc/loadavg)"
      for run in $(seq 1 "$RUNS"); do
        for side in $cli_sides; do
          run_cli "$scenario" "$side" "$run" "$input"
        done
      done
      continue ;;
    *) die "unknown scenario '$scenario' (allowed: p3 p12 rate p100 p1000 p1000-long latency delay-p3 delay-p100 delay-p1000 json-file json-stdin metrics)" ;;
  esac
  delayed=0
  [[ "$scenario" == latency || "$scenario" == delay-* ]] && delayed=1
  if (( delayed )); then latency_up; fi
  log "scenario $scenario: $partitions partitions, $events events${rate:+ at $rate/s}, message timeout $timeout_ms ms, broker $BROKER; load $(cut -d' ' -f1-3 /proc/loadavg)"
  for run in $(seq 1 "$RUNS"); do
    for side in $SIDES; do
      run_one "$scenario" "$partitions" "$side" "$run" "$events" "$timeout_ms" "$rate"
    done
  done
  if (( delayed )); then latency_down; fi
done

# Medians per scenario and side, and the ratios ours/librdkafka and ours/krafka, as
# Markdown.
cmd="scripts/bench.sh"
for v in BENCH_EVENTS BENCH_RUNS BENCH_SCENARIOS BENCH_SIDES BENCH_RATE BENCH_RATE_EVENTS \
         BENCH_LONG_TIMEOUT_MS BENCH_LATENCY_RATE BENCH_LATENCY_EVENTS BENCH_LATENCY_DELAY_MS \
         BENCH_LATENCY_WARMUP_EVENTS BENCH_LIBRDKAFKA_IDEMPOTENCE BENCH_ALLOCATOR \
         BENCH_JSON_EVENTS BENCH_JSON_FILE BENCH_SCRAPE_MS; do
  if [[ -n "${!v:-}" ]]; then cmd="$v=\"${!v}\" $cmd"; fi
done
jq -s -r --arg cmd "$cmd" --arg rev "$REV" \
  --arg machine "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r(n): if . == null then "-" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
  def figures: {
    events_per_s: (map(.events_per_s) | median),
    delivered_pct: (map(.delivered / .events * 100) | median),
    mb_per_s: (map(.mb_per_s) | median),
    cpu_s: (map(.time_user_s + .time_sys_s) | median),
    cpu_s_per_m: (map((.time_user_s + .time_sys_s) / .events * 1e6) | median),
    send_cpu_s_per_m: (map(.send_cpu_s_per_m) | median),
    broker_cpu_s_per_m: (map(.broker_cpu_s / .events * 1e6) | median),
    rss_mb: (map(.time_max_rss_kb / 1024) | median),
    rss_above_events_mb: (map(.peak_rss_above_events_mb) | median),
    p50: (map(.ack_p50_ms) | median),
    p99: (map(.ack_p99_ms) | median),
    sockets: (map(.max_sockets) | median),
    records_per_batch: (map(.records_per_batch) | if all(. != null) then median else null end),
    failures: (map(.failures) | add),
    runs: length };
  def ratio($a; $b): if $a != null and $b != null and $b != 0 then ($a / $b | r(2)) else "-" end;
  map(select(.kind != "cli")) | group_by(.scenario) | sort_by(.[0].order) | map(
    (.[0]) as $first
    | (map(select(.mode == "ours")) | figures) as $o
    | (map(select(.mode == "librdkafka")) | figures) as $l
    | (map(select(.mode == "krafka")) | figures) as $k
    | (map(select(.mode == "librdkafka")) | first) as $lrun
    | def row(name; key; n): "| \(name) | \($o[key] | r(n)) | \($l[key] | r(n)) | \($k[key] | r(n)) | \(ratio($o[key]; $l[key])) | \(ratio($o[key]; $k[key])) |";
    "### \($first.scenario): \($first.partitions) partitions, \($first.events) events\(if $first.rate then ", offered \($first.rate) events/s" else ", full speed" end), message timeout \($first.message_timeout_ms) ms\n",
    "medians of \($o.runs) + \($l.runs) + \($k.runs) alternating runs, `\($cmd)`; ours = kafka-producer \($rev), allocator \($first.allocator // "system"), librdkafka \($lrun.librdkafka_version // "-")\(if $lrun.librdkafka_idempotence == true then " (idempotent)" else "" end), krafka \(map(select(.mode == "krafka")) | first | .krafka_version // "-"); \($machine); load average before the runs \(map(.load_before | split(" ")[0] | tonumber) | min)-\(map(.load_before | split(" ")[0] | tonumber) | max); partitions on the broker before the runs \(map(.broker_partitions_before) | min)-\(map(.broker_partitions_before) | max); failed (timed-out) events: ours \($o.failures), librdkafka \($l.failures), krafka \($k.failures)\n",
    "| median | ours | librdkafka | krafka | ours/librdkafka | ours/krafka |",
    "|---|---|---|---|---|---|",
    row("events/s (delivered)"; "events_per_s"; 0),
    row("events delivered, %"; "delivered_pct"; 2),
    row("MB/s (values+keys)"; "mb_per_s"; 1),
    row("CPU s, whole process (time: user+sys)"; "cpu_s"; 2),
    row("CPU s per million events, whole process"; "cpu_s_per_m"; 3),
    row("CPU s per million events, send phase only (getrusage)"; "send_cpu_s_per_m"; 3),
    row("broker CPU s per million events, during the run (its /proc stat)"; "broker_cpu_s_per_m"; 3),
    row("peak RSS MiB, whole process (time %M)"; "rss_mb"; 0),
    row("peak RSS MB above the pre-generated events"; "rss_above_events_mb"; 0),
    row("ack latency p50 ms"; "p50"; 2),
    row("ack latency p99 ms"; "p99"; 2),
    row("TCP sockets held, most at once (sampled every 50 ms)"; "sockets"; 0),
    row("records per batch (ours, krafka: their counters)"; "records_per_batch"; 0),
    "")
  | .[]' "$RUNS_FILE" | tee "$OUT/summary.md"

# The JSON-lines scenarios: one column per side, ratios of ours to each peer (metrics:
# with the server to without).
jq -s -r --arg cmd "$cmd" --arg rev "$REV" \
  --arg machine "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r(n): if . == null then "-" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
  def med(f): map(f) | if length > 0 and all(. != null) then median else null end;
  def ratio($a; $b): if $a != null and $b != null and $b != 0 then ($a / $b | r(2)) else "-" end;
  def rows: [
    ["events/s, delivered / process wall time (headline)", "wall_events_per_s", 0],
    ["events/s, own clock (first line read to last report)", "events_per_s", 0],
    ["wall s, whole process", "time_wall_s", 2],
    ["CPU s per million events, whole process (time: user+sys)", "cpu_s_per_m", 3],
    ["CPU s, whole process", "cpu_s", 2],
    ["broker CPU s per million events", "broker_cpu_s_per_m", 3],
    ["peak RSS MiB, whole process (time %M)", "rss_mib", 0],
    ["ack latency p50 ms (ours: engine histogram; peers: harness)", "ack_p50_ms", 2],
    ["ack latency p99 ms (ours: engine histogram; peers: harness)", "ack_p99_ms", 2],
    ["records per batch (ours, krafka: their counters)", "records_per_batch", 0],
    ["/metrics scrapes answered per run", "scrapes_ok", 0]];
  map(select(.kind == "cli") | . + {
        cpu_s: (.time_user_s + .time_sys_s),
        cpu_s_per_m: ((.time_user_s + .time_sys_s) / .events * 1e6),
        broker_cpu_s_per_m: (.broker_cpu_s / .events * 1e6),
        rss_mib: (.time_max_rss_kb / 1024)})
  | group_by(.scenario) | sort_by(.[0].order) | map(
    (.[0]) as $first
    | (map(.side) | unique | sort_by(if . == "ours" then 0 elif . == "ours-metrics" then 1 elif . == "librdkafka" then 2 else 3 end)) as $sides
    | (if $first.scenario == "metrics" then [["ours-metrics", "ours"]] else [$sides[1:][] | ["ours", .]] end) as $pairs
    | . as $runs
    | ($sides | map(. as $s | {key: $s, value: ($runs | map(select(.side == $s)))}) | from_entries) as $by
    | "### \($first.scenario): 3 partitions, \($first.events) JSON lines from \(if $first.input == "stdin" then "a pipe (`cat FILE |`)" else "a file" end), full speed, message timeout 5000 ms\n",
      "medians of \($sides | map($by[.] | length | tostring) | join(" + ")) alternating runs (\($sides | join(", "))), `\($cmd)`; ours = kafka-producer \($rev) release binary; \($machine); load average before the runs \(map(.load_before | split(" ")[0] | tonumber) | min)-\(map(.load_before | split(" ")[0] | tonumber) | max); failed events: \($sides | map("\(.) \($by[.] | map(.failures) | add)") | join(", "))\n",
      "| median | \($sides | join(" | ")) | \($pairs | map("\(.[0])/\(.[1])") | join(" | ")) |",
      "|---|\($sides | map("---|") | join(""))\($pairs | map("---|") | join(""))",
      (rows[] as [$name, $k, $n]
        | ($sides | map(. as $s | {key: $s, value: ($by[$s] | med(.[$k]))}) | from_entries) as $m
        | "| \($name) | \($sides | map($m[.] | r($n)) | join(" | ")) | \($pairs | map(ratio($m[.[0]]; $m[.[1]])) | join(" | ")) |"),
      "")
  | .[]' "$RUNS_FILE" | tee -a "$OUT/summary.md"

log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw runs in $RUNS_FILE"

if [[ "${BENCH_KEEP_TOPICS:-0}" != 1 && "$SMALL_TOPICS" == 1 ]]; then
  KAFKA_INSTANCE="$MAIN_INSTANCE" scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --delete --topic "bench-.*-$STAMP" >/dev/null 2>&1 || log "could not delete the bench topics (bench-*-$STAMP)"
fi
if [[ "$OWN_JSON_FILE" == 1 && "${BENCH_KEEP_INPUT:-0}" != 1 ]]; then
  rm -f "$JSON_FILE"
fi
