#!/usr/bin/env bash
# =============================================================================
# scripts/bench/profile.sh: where ours spends its CPU. Run by
# `make bench-profile`.
#
# Samples `vs-librdkafka <side>` (default: ours) with perf's software clock
# (this VM has no hardware counters) and DWARF call graphs, on CLOCK_MONOTONIC,
# and reports only the timed phase (from the first send to the last delivery
# report, which the benchmark prints as phase_monotonic_s): the event
# generation before it is cut out with `perf report --time START,END`.
# (perf's -D/--control would cut it at record time, but then samples in libc
# lose their callers.)
#
# Output in BENCH_OUT (default target/bench/profile-<side>-<date-time>):
#   run.json        the benchmark's own line (events/s, latency, CPU)
#   perf.data       the samples
#   self.txt        self time by symbol (perf report --no-children)
#   children.txt    inclusive time by symbol (perf report --children)
#   categories.txt  self time grouped: allocation, memcpy, zstd, prost, rskafka,
#                   tokio sync (channels/oneshot/semaphore), tokio runtime,
#                   kernel (network and scheduling), ...
#   owners.txt      the same, split by the nearest caller in kafka_producer,
#                   rskafka, prost, zstd or the harness (scripts/bench/owners.py):
#                   who allocates, who copies
#
# Environment: BENCH_PROFILE_EVENTS (default 500000), BENCH_PROFILE_SIDE
# (ours|librdkafka, default ours), BENCH_PROFILE_PARTITIONS (default 3),
# BENCH_PROFILE_FREQ (Hz, default 999), BENCH_ALLOCATOR (mimalloc, the product
# binary's, by default; or system), KAFKA_PORT (default 9092).
# =============================================================================
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO_DIR"

EVENTS="${BENCH_PROFILE_EVENTS:-500000}"
SIDE="${BENCH_PROFILE_SIDE:-ours}"
PARTITIONS="${BENCH_PROFILE_PARTITIONS:-3}"
FREQ="${BENCH_PROFILE_FREQ:-999}"
STAMP="$(date +%Y%m%d-%H%M%S)"
OUT="${BENCH_OUT:-target/bench/profile-$SIDE-$STAMP}"
PORT="${KAFKA_PORT:-9092}"
BIN="benches/vs-librdkafka/target/release/vs-librdkafka"

die() { echo "profile.sh: $*" >&2; exit 1; }
command -v perf >/dev/null || die "perf is needed (apt-get install linux-perf)"
case "${BENCH_ALLOCATOR:-mimalloc}" in
  mimalloc) features=() ;;
  system) features=(--no-default-features) ;;
  *) die "BENCH_ALLOCATOR must be mimalloc or system" ;;
esac
(cd benches/vs-librdkafka && cargo build --release --quiet "${features[@]}") || die "cannot build benches/vs-librdkafka"
scripts/kafka.sh up >&2
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

topic="bench-profile-$SIDE-$STAMP"
scripts/kafka.sh create-topic "$topic" "$PARTITIONS" >/dev/null
echo "profile.sh: load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
perf record -q -k CLOCK_MONOTONIC -e cpu-clock -F "$FREQ" --call-graph dwarf,16384 \
  -o "$OUT/perf.data" -- \
  "$BIN" "$SIDE" --broker "localhost:$PORT" --topic "$topic" --events "$EVENTS" > "$OUT/run.json"
cat "$OUT/run.json"
phase="$(jq -r '.phase_monotonic_s | "\(.[0]),\(.[1])"' "$OUT/run.json")"
echo "profile.sh: timed phase (CLOCK_MONOTONIC s): $phase" >&2

perf report -i "$OUT/perf.data" --time "$phase" --no-children --sort symbol --stdio -g none \
  --percent-limit 0.3 2>/dev/null | grep -v '^$' > "$OUT/self.txt"
perf report -i "$OUT/perf.data" --time "$phase" --children --sort symbol --stdio -g none \
  --percent-limit 2 2>/dev/null | grep -v '^$' > "$OUT/children.txt"
perf script -i "$OUT/perf.data" --time "$phase" -F comm,tid,ip,sym,dso 2>/dev/null \
  | python3 scripts/bench/owners.py > "$OUT/owners.txt"

# Self time by category, from every symbol (no percent limit).
perf report -i "$OUT/perf.data" --time "$phase" --no-children --sort dso,symbol --stdio -g none \
  --field-separator=$'\t' 2>/dev/null | grep -v '^#' | grep -v '^$' | awk -F'\t' '
  {
    pct = $1; sub(/%/, "", pct); pct += 0
    dso = $2; sym = $3
    c = "other"
    if (sym ~ /\[k\]/) c = "kernel (syscalls, network, scheduling, page faults)"
    else if (sym ~ /malloc|free|realloc|calloc|_int_|arena|tcache|alloc::alloc|__rust_alloc|__rust_dealloc|RawVec|raw_vec|drop_in_place/) c = "allocation and drop"
    else if (sym ~ /memcpy|memmove|memset/) c = "memcpy / memmove / memset"
    else if (sym ~ /ZSTD|zstd|HUF_|FSE_|HIST_/) c = "zstd"
    else if (sym ~ /prost|encoded_len|encode_to_vec|encode_raw/) c = "prost encode"
    else if (sym ~ /crc32|crc32c|Crc/) c = "crc32c"
    else if (sym ~ /rskafka/) c = "rskafka (request building, framing, I/O)"
    else if (sym ~ /tokio::sync|oneshot|mpsc|semaphore|Semaphore|batch_semaphore|notify|Notify/) c = "tokio sync (mpsc, oneshot, semaphore)"
    else if (sym ~ /tokio|parking_lot|futex|mio/) c = "tokio runtime"
    else if (sym ~ /murmur2|partition/) c = "partitioner"
    else if (sym ~ /chrono/) c = "chrono timestamps"
    else if (sym ~ /kafka_producer|vs_librdkafka/) c = "kafka_producer / harness code"
    else if (sym ~ /rd_kafka|rdkafka|rd_/) c = "librdkafka"
    else if (dso ~ /libc/) c = "libc other"
    cat[c] += pct; total += pct
  }
  END {
    for (c in cat) printf "%6.1f%%  %s\n", cat[c], c
    printf "%6.1f%%  total sampled\n", total
  }' | sort -rn > "$OUT/categories.txt"

echo "== self time by category ==" >&2
cat "$OUT/categories.txt" >&2
echo "== top symbols by self time ==" >&2
grep -E '^\s+[0-9]' "$OUT/self.txt" | head -30 | cut -c1-150 >&2
echo "== self time by category and nearest owning caller ==" >&2
head -40 "$OUT/owners.txt" >&2
echo "profile.sh: files in $OUT; load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

scripts/kafka.sh run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$PORT" \
  --delete --topic "$topic" >/dev/null 2>&1 || true
