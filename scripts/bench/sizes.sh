#!/usr/bin/env bash
# =============================================================================
# scripts/bench/sizes.sh: the seed's size and codec claims, measured.
# Run by `make bench-sizes` (which first builds target/release/kafka-producer
# and starts the local broker).
#
# 1. Bytes per event as JSON lines (json_lines::event_to_json) and as protobuf,
#    and JSON compressed by zstd-3 / gzip-6 in 10,000-line blocks, on one core:
#    `vs-librdkafka sizes` (no broker).
# 2. For each codec (zstd gzip lz4 snappy none): the project's CLI produces the
#    same seeded events to a fresh 3-partition topic,
#      /usr/bin/time -f '%e %U %S %M' target/release/kafka-producer produce \
#        --count N --seed 1 --create-topic --partitions 3 --topic T \
#        --summary json --compression CODEC
#    and the bytes the broker stored are the sum of the record batches' `size:`
#    in `scripts/kafka.sh dump-log T P` over the partitions, divided by the
#    records (`count:`). Batch size includes the 61-byte v2 batch header.
# 3. The same for librdkafka (zstd, the original settings) with the benchmark
#    binary, so both producers' stored bytes can be compared.
#
# Each codec (and librdkafka) runs BENCH_SIZE_RUNS times, codecs alternating; the
# tables show medians (CPU is noisy on a shared 2-core machine; bytes barely vary).
#
# Environment: BENCH_SIZE_EVENTS (default 1000000), BENCH_SIZE_CODECS (default
# "zstd gzip lz4 snappy none"), BENCH_SIZE_RUNS (default 3),
# BENCH_OUT (default target/bench/sizes-<date-time>),
# KAFKA_PORT (default 9092), BENCH_KEEP_TOPICS=1 keeps the topics.
# Output: BENCH_OUT/sizes.jsonl (one object per run) and BENCH_OUT/sizes.md.
# =============================================================================
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_DIR"

EVENTS="${BENCH_SIZE_EVENTS:-1000000}"
CODECS="${BENCH_SIZE_CODECS:-zstd gzip lz4 snappy none}"
RUNS="${BENCH_SIZE_RUNS:-3}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-target/bench/sizes-$STAMP}"
PORT="${KAFKA_PORT:-9092}"
CLI="target/release/kafka-producer"
BIN="benches/vs-librdkafka/target/release/vs-librdkafka"
PARTITIONS=3

die() { echo "sizes.sh: $*" >&2; exit 1; }
log() { echo "sizes.sh: $*" >&2; }

[[ -x "$CLI" ]] || die "$CLI is missing: run make build"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
[[ -x /usr/bin/time ]] || apt-get install -y time >/dev/null || die "GNU time is needed at /usr/bin/time"
(cd benches/vs-librdkafka && cargo build --release --quiet) || die "cannot build benches/vs-librdkafka"
mkdir -p "$OUT"
RESULTS="$OUT/sizes.jsonl"
: > "$RESULTS"

# stored TOPIC: prints "<bytes> <records> <batches>" summed over the partitions.
stored() {
  local topic="$1" p
  for (( p = 0; p < PARTITIONS; p++ )); do
    scripts/kafka.sh dump-log "$topic" "$p" 2>/dev/null
  done | awk '/^baseOffset:/ {
      for (i = 1; i < NF; i++) { if ($i == "size:") s += $(i + 1); if ($i == "count:") c += $(i + 1) }
      b++ }
    END { printf "%d %d %d\n", s, c, b }'
}

log "JSON vs protobuf sizes, $EVENTS events"
"$BIN" sizes --events "$EVENTS" --seed 1 | jq -c '. + {kind: "sizes"}' >> "$RESULTS"

# record KIND CODEC RUN TOPIC TIMEFILE SUMMARY_JSON: appends one result line.
record() {
  local kind="$1" codec="$2" run="$3" topic="$4" timefile="$5" summary="$6"
  local wall user sys rss bytes records batches
  read -r wall user sys rss < <(tail -n 1 "$timefile")
  read -r bytes records batches < <(stored "$topic")
  jq -c --arg kind "$kind" --arg codec "$codec" --argjson run "$run" --arg topic "$topic" \
     --argjson wall "$wall" --argjson user "$user" --argjson sys "$sys" --argjson rss "$rss" \
     --argjson bytes "$bytes" --argjson records "$records" --argjson batches "$batches" \
     --arg load "$(cut -d' ' -f1-3 /proc/loadavg)" \
     '{kind: $kind, codec: $codec, run: $run, topic: $topic, stored_bytes: $bytes, stored_records: $records,
       stored_batches: $batches, stored_bytes_per_event: ($bytes / $records),
       time_wall_s: $wall, cpu_s: ($user + $sys), time_max_rss_kb: $rss, load_after: $load,
       summary: .}' <<< "$summary" >> "$RESULTS"
  jq -r '"  run \(.run) \(.kind) \(.codec): \(.stored_bytes_per_event * 10 | round / 10) B/event stored in \(.stored_batches) batches, CPU \(.cpu_s * 100 | round / 100) s"' \
     <(tail -n 1 "$RESULTS") >&2
}

for run in $(seq 1 "$RUNS"); do
  for codec in $CODECS; do
    topic="bench-size-$codec-$run-$STAMP"
    log "run $run, ours, $codec: $CLI produce --count $EVENTS --seed 1 --create-topic --partitions $PARTITIONS --topic $topic --summary json --compression $codec"
    /usr/bin/time -f '%e %U %S %M' -o "$OUT/$topic.time" \
      "$CLI" produce --count "$EVENTS" --seed 1 --create-topic --partitions "$PARTITIONS" \
        --topic "$topic" --summary json --compression "$codec" > "$OUT/$topic.json"
    record ours "$codec" "$run" "$topic" "$OUT/$topic.time" "$(cat "$OUT/$topic.json")"
  done

  topic="bench-size-librdkafka-zstd-$run-$STAMP"
  log "run $run, librdkafka, zstd: $BIN librdkafka --topic $topic --events $EVENTS --seed 1"
  scripts/kafka.sh create-topic "$topic" "$PARTITIONS" >/dev/null
  /usr/bin/time -f '%e %U %S %M' -o "$OUT/$topic.time" \
    "$BIN" librdkafka --broker "localhost:$PORT" --topic "$topic" --events "$EVENTS" --seed 1 > "$OUT/$topic.json"
  record librdkafka zstd "$run" "$topic" "$OUT/$topic.time" "$(cat "$OUT/$topic.json")"
done

jq -s -r --arg events "$EVENTS" --arg runs "$RUNS" '
  def r(n): (. * pow(10; n) | round) / pow(10; n) | tostring;
  def median: sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
  def med(f): map(f) | median;
  (map(select(.kind == "sizes")) | first) as $s
  | [map(select(.kind != "sizes")) | group_by(.kind + " " + .codec)[]
     | { kind: .[0].kind, codec: .[0].codec, n: length,
         bytes: med(.stored_bytes_per_event), batches: med(.stored_batches),
         cpu: med(.cpu_s), eps: med(.summary.events_per_s),
         rpb: med(.summary.mean_records_per_batch // (.summary.events / .stored_batches)),
         p50: med(.summary.ack_latency_p50_ms // .summary.ack_p50_ms),
         p99: med(.summary.ack_latency_p99_ms // .summary.ack_p99_ms) }] as $g
  | ($g | map(select(.kind == "ours" and .codec == "none")) | first) as $none
  | ["zstd", "gzip", "lz4", "snappy", "none"] as $order
  | "### Bytes per event (\($events) events, seed 1, 100,000 users)\n",
    "| form | bytes per event | vs JSON | how measured |",
    "|---|---|---|---|",
    "| JSON line (`event_to_json`) | \($s.json_bytes_per_event | r(1)) | - | `vs-librdkafka sizes --events \($events) --seed 1` |",
    "| JSON, zstd-3 in 10,000-line blocks | \($s.json_zstd3_bytes_per_event | r(1)) | -\($s.json_zstd3_reduction_pct | r(1)) % | same, \($s.zstd3_mb_per_s) MB/s on one core |",
    "| JSON, gzip-6 in 10,000-line blocks | \($s.json_gzip6_bytes_per_event | r(1)) | -\($s.json_gzip6_reduction_pct | r(1)) % | same, \($s.gzip6_mb_per_s) MB/s on one core |",
    "| protobuf value | \($s.protobuf_value_bytes_per_event | r(1)) | -\((1 - $s.protobuf_value_bytes_per_event / $s.json_bytes_per_event) * 100 | r(1)) % | same |",
    ($g[] | select(.codec == "zstd")
      | "| stored by the broker, \(.kind), zstd (key, header, framing, batch headers included) | \(.bytes | r(1)) | -\((1 - .bytes / $s.json_bytes_per_event) * 100 | r(1)) % | dump-log, median of \(.n) runs, \(.batches) batches |"),
    "",
    "### Codecs on the same events, as stored by the broker\n",
    "ours: `kafka-producer produce --count \($events) --seed 1 --create-topic --partitions 3 --compression X`; librdkafka: `vs-librdkafka librdkafka --events \($events) --seed 1`; medians of \($runs) runs each, codecs alternating\n",
    "| producer, codec | stored bytes per event | vs none | process CPU s (user+sys) | CPU s over `none`, per million events | events/s | records per batch | ack p50 / p99 ms |",
    "|---|---|---|---|---|---|---|---|",
    ($g | sort_by([(.kind != "ours"), (.codec as $c | $order | index($c))])[]
      | "| \(.kind), \(.codec) | \(.bytes | r(1)) | \(if $none then "\((.bytes / $none.bytes - 1) * 100 | r(1)) %" else "-" end) | \(.cpu | r(2)) | \(if $none and .kind == "ours" then ((.cpu - $none.cpu) / ($events | tonumber) * 1e6 | r(2)) else "-" end) | \(.eps | floor) | \(.rpb | r(0)) | \(.p50 | r(1)) / \(.p99 | r(1)) |"),
    ""' "$RESULTS" | tee "$OUT/sizes.md"

if [[ "${BENCH_KEEP_TOPICS:-0}" != 1 ]]; then
  scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
    --delete --topic "bench-size-.*-$STAMP" >/dev/null 2>&1 || log "could not delete the bench-size-*-$STAMP topics"
fi
