#!/usr/bin/env bash
# =============================================================================
# scripts/bench.sh: this project's producer ("ours") against librdkafka, side by
# side, on the local Kafka broker. Run by `make bench`.
#
# Builds benches/vs-librdkafka (its own workspace; librdkafka is built from
# source with cmake there and never linked into the product), starts the broker
# if none answers (scripts/kafka.sh up), then for each scenario runs the two
# sides alternately, A B A B A B, each run its own process on a fresh topic made
# with `scripts/kafka.sh create-topic`, measured by /usr/bin/time -f '%e %U %S %M'
# (wall s, user s, sys s, peak RSS KB). Prints per side the MEDIAN of each figure
# and the ratio ours/librdkafka, as Markdown, and keeps every run's raw figures.
#
# Scenarios (BENCH_SCENARIOS, default "p3 p12 rate"):
#   p3     3 partitions, as fast as the producer goes
#   p12    12 partitions, as fast as the producer goes
#   rate   3 partitions at BENCH_RATE events/s: ack latency at equal load
#
# Environment (all optional):
#   BENCH_EVENTS        events per run                       (default 2000000)
#   BENCH_RUNS          runs per side per scenario           (default 3)
#   BENCH_RATE          events/s of the rate scenario        (default 50000)
#   BENCH_RATE_EVENTS   events per run of the rate scenario  (default: BENCH_EVENTS
#                       capped at 500000, i.e. 10 s per run at 50,000/s)
#   BENCH_USERS         distinct user ids / keys             (default 100000)
#   BENCH_SEED          generator seed, same for both sides  (default 1)
#   BENCH_SCENARIOS     which scenarios, in order            (default "p3 p12 rate")
#   BENCH_ALLOCATOR     mimalloc (the product binary's, default) or system: the
#                       global allocator of the benchmark process, both sides
#   BENCH_OUT           output directory      (default target/bench/<date-time>)
#   KAFKA_PORT          broker port, as scripts/kafka.sh     (default 9092)
#
# Output, in BENCH_OUT:
#   runs.jsonl     one JSON object per run: the harness's line (events_per_s,
#                  mb_per_s, ack_p50_ms, ack_p99_ms, send_cpu_s, ...) plus
#                  scenario, run, load average before the run, and the
#                  /usr/bin/time figures (time_wall_s, time_user_s, time_sys_s,
#                  time_max_rss_kb), and broker_cpu_s: the local broker's CPU
#                  seconds during the run (it shares the cores with the producer)
#   summary.md     the tables printed at the end
# Topics are named bench-<scenario>-<side>-<run>-<stamp> and deleted at the end
# (BENCH_KEEP_TOPICS=1 keeps them).
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
SCENARIOS="${BENCH_SCENARIOS:-p3 p12 rate}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-target/bench/$STAMP}"
PORT="${KAFKA_PORT:-9092}"
BROKER="localhost:$PORT"
BIN="benches/vs-librdkafka/target/release/vs-librdkafka"
TIME=/usr/bin/time

die() { echo "bench.sh: $*" >&2; exit 1; }
log() { echo "bench.sh: $*" >&2; }

for n in "$EVENTS" "$RUNS" "$RATE_EVENTS" "$USERS" "$SEED"; do
  [[ "$n" =~ ^[0-9]+$ && "$n" -gt 0 ]] || die "counts must be positive integers (got '$n')"
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

log "building benches/vs-librdkafka (release; the first build compiles librdkafka with cmake)"
case "${BENCH_ALLOCATOR:-mimalloc}" in
  mimalloc) features=() ;;
  system) features=(--no-default-features) ;;
  *) die "BENCH_ALLOCATOR must be mimalloc or system (got '${BENCH_ALLOCATOR}')" ;;
esac
(cd benches/vs-librdkafka && cargo build --release --quiet "${features[@]}") || die "build failed (needs cmake, a C/C++ compiler, zlib; see BENCHMARKS.md)"
scripts/kafka.sh up >&2

# What "ours" is: the commit of the product crate, +dirty if src/ or the manifest differ.
REV="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml Cargo.lock vendor || echo +dirty)"

mkdir -p "$OUT"
RUNS_FILE="$OUT/runs.jsonl"
: > "$RUNS_FILE"
log "results in $OUT; events $EVENTS (rate scenario $RATE_EVENTS at $RATE/s), runs $RUNS per side"

# The local broker's JVM, to charge each run the broker CPU it caused (the broker shares
# the machine's cores with the producer under test). Empty if the broker is not ours.
BROKER_PID="$(cat "${KAFKA_ROOT:-$REPO_DIR/.kafka}/${KAFKA_INSTANCE:-default}/kafka.pid" 2>/dev/null || true)"
TICKS="$(getconf CLK_TCK)"
# broker_cpu: user+system CPU seconds of the broker so far, or 0 if unknown.
broker_cpu() {
  if [[ -n "$BROKER_PID" && -r "/proc/$BROKER_PID/stat" ]]; then
    awk -v t="$TICKS" '{ sub(/^.*\) /, ""); print ($12 + $13) / t }' "/proc/$BROKER_PID/stat"
  else
    echo 0
  fi
}

# run_one SCENARIO PARTITIONS SIDE RUN EVENTS [RATE]; $order is the scenario's position.
run_one() {
  local scenario="$1" partitions="$2" side="$3" run="$4" events="$5" rate="${6:-}"
  local topic="bench-$scenario-$side-$run-$STAMP"
  scripts/kafka.sh create-topic "$topic" "$partitions" >/dev/null
  local load
  load="$(cut -d' ' -f1-3 /proc/loadavg)"
  local args=("$side" --broker "$BROKER" --topic "$topic" --events "$events" --users "$USERS" --seed "$SEED")
  [[ -n "$rate" ]] && args+=(--rate "$rate")
  local rc=0 broker_before broker_after
  broker_before="$(broker_cpu)"
  "$TIME" -f '%e %U %S %M' -o "$OUT/$topic.time" "$BIN" "${args[@]}" > "$OUT/$topic.json" || rc=$?
  broker_after="$(broker_cpu)"
  [[ $rc -eq 0 ]] || { cat "$OUT/$topic.json" >&2; die "run $topic failed (exit $rc); see above"; }
  local wall user sys rss
  read -r wall user sys rss < <(tail -n 1 "$OUT/$topic.time")
  jq -c --arg scenario "$scenario" --argjson order "$order" --argjson run "$run" --arg load "$load" \
     --argjson broker_cpu "$(awk -v a="$broker_before" -v b="$broker_after" 'BEGIN { printf "%.2f", b - a }')" \
     --argjson wall "$wall" --argjson user "$user" --argjson sys "$sys" --argjson rss "$rss" \
     '. + {scenario: $scenario, order: $order, run: $run, load_before: $load,
           time_wall_s: $wall, time_user_s: $user, time_sys_s: $sys, time_max_rss_kb: $rss,
           broker_cpu_s: $broker_cpu}' \
     "$OUT/$topic.json" >> "$RUNS_FILE"
  jq -r '"  \(.scenario) run \(.run) \(.mode): \(.events_per_s|floor) events/s, \(.mb_per_s) MB/s, ack p50 \(.ack_p50_ms) ms p99 \(.ack_p99_ms) ms, CPU \((.time_user_s + .time_sys_s) * 100 | round / 100) s (broker \(.broker_cpu_s) s), RSS \(.time_max_rss_kb/1024|floor) MiB, load before \(.load_before)"' \
     <(tail -n 1 "$RUNS_FILE") >&2
}

order=0
for scenario in $SCENARIOS; do
  order=$((order + 1))
  case "$scenario" in
    p3) partitions=3; rate=""; events="$EVENTS" ;;
    p12) partitions=12; rate=""; events="$EVENTS" ;;
    rate) partitions=3; rate="$RATE"; events="$RATE_EVENTS" ;;
    *) die "unknown scenario '$scenario' (allowed: p3 p12 rate)" ;;
  esac
  log "scenario $scenario: $partitions partitions, $events events${rate:+ at $rate/s}; load $(cut -d' ' -f1-3 /proc/loadavg)"
  for run in $(seq 1 "$RUNS"); do
    run_one "$scenario" "$partitions" ours "$run" "$events" "$rate"
    run_one "$scenario" "$partitions" librdkafka "$run" "$events" "$rate"
  done
done

# Medians per scenario and side, and ours/librdkafka ratios, as Markdown.
jq -s -r --arg cmd "make bench BENCH_EVENTS=$EVENTS BENCH_RUNS=$RUNS${BENCH_ALLOCATOR:+ BENCH_ALLOCATOR=$BENCH_ALLOCATOR}" --arg rev "$REV" \
  --arg machine "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" '
  def median: sort | if length == 0 then null
    elif length % 2 == 1 then .[length / 2 | floor]
    else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def r(n): if . == null then "-" else (. * pow(10; n) | round) / pow(10; n) | tostring end;
  def figures: {
    events_per_s: (map(.events_per_s) | median),
    mb_per_s: (map(.mb_per_s) | median),
    cpu_s_per_m: (map((.time_user_s + .time_sys_s) / .events * 1e6) | median),
    send_cpu_s_per_m: (map(.send_cpu_s_per_m) | median),
    broker_cpu_s_per_m: (map(.broker_cpu_s / .events * 1e6) | median),
    rss_mb: (map(.time_max_rss_kb / 1024) | median),
    rss_above_events_mb: (map(.peak_rss_above_events_mb) | median),
    p50: (map(.ack_p50_ms) | median),
    p99: (map(.ack_p99_ms) | median),
    failures: (map(.failures) | add),
    runs: length };
  group_by(.scenario) | sort_by(.[0].order) | map(
    (.[0]) as $first
    | (map(select(.mode == "ours")) | figures) as $o
    | (map(select(.mode == "librdkafka")) | figures) as $l
    | def row(name; key; n): "| \(name) | \($o[key] | r(n)) | \($l[key] | r(n)) | \(if $o[key] != null and $l[key] != null and $l[key] != 0 then ($o[key] / $l[key] | r(2)) else "-" end) |";
    "### \($first.scenario): \($first.partitions) partitions, \($first.events) events\(if $first.rate then ", rate cap \($first.rate) events/s" else ", full speed" end)\n",
    "medians of \($o.runs) + \($l.runs) alternating runs, `\($cmd)`; ours = kafka-producer \($rev), allocator \($first.allocator // "system"), librdkafka \(map(select(.mode == "librdkafka")) | first | .librdkafka_version // "-"); \($machine); load average before the runs \(map(.load_before | split(" ")[0] | tonumber) | min)-\(map(.load_before | split(" ")[0] | tonumber) | max); failures: ours \($o.failures), librdkafka \($l.failures)\n",
    "| median | ours | librdkafka | ours/librdkafka |",
    "|---|---|---|---|",
    row("events/s"; "events_per_s"; 0),
    row("MB/s (values+keys)"; "mb_per_s"; 1),
    row("CPU s per million events, whole process (time: user+sys)"; "cpu_s_per_m"; 3),
    row("CPU s per million events, send phase only (getrusage)"; "send_cpu_s_per_m"; 3),
    row("broker CPU s per million events, during the run (its /proc stat)"; "broker_cpu_s_per_m"; 3),
    row("peak RSS MiB, whole process (time %M)"; "rss_mb"; 0),
    row("peak RSS MB above the pre-generated events"; "rss_above_events_mb"; 0),
    row("ack latency p50 ms"; "p50"; 2),
    row("ack latency p99 ms"; "p99"; 2),
    "")
  | .[]' "$RUNS_FILE" | tee "$OUT/summary.md"

log "load at the end: $(cut -d' ' -f1-3 /proc/loadavg); raw runs in $RUNS_FILE"

if [[ "${BENCH_KEEP_TOPICS:-0}" != 1 ]]; then
  scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --delete --topic "bench-.*-$STAMP" >/dev/null 2>&1 || log "could not delete the bench topics (bench-*-$STAMP)"
fi
