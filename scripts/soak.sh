#!/usr/bin/env bash
# =============================================================================
# scripts/soak.sh: runs the release producer at a steady rate for a long while
# against the local broker and watches the process for leaks: resident memory
# (VmRSS) and open file descriptors, sampled every few seconds.
#
# Usage: scripts/soak.sh            (make soak builds the binary and starts the
#                                    local broker first)
# Environment:
#   SOAK_DURATION   how long to produce, as --duration takes it (default 5m)
#   SOAK_RATE       events per second (default 20000)
#   SOAK_INTERVAL   seconds between samples (default 5)
#   SOAK_DIR        where the results go (default target/soak/<UTC time>)
#   SOAK_KEEP_TOPIC 1 = keep the soak topic afterwards (default: deleted)
#   KAFKA_BROKER    broker to produce to (default localhost:9092)
#
# Writes to $SOAK_DIR:
#   samples.csv     elapsed_s,rss_kb,fds,threads   one line per sample
#   summary.json    the producer's own summary (--summary json)
#   producer.log    its stderr
#   report.txt      first-minute vs last-minute RSS, max fds, the verdict
# Verdict: "growing" when the last minute's mean RSS is above the first
# minute's by more than 10 % and 8 MiB, or the last minute's most fds exceed
# the first minute's by more than 4; "flat" otherwise. Runs shorter than 2
# minutes compare overlapping minutes and say so.
# Exit code: 0 flat and every event delivered; 1 growing or the producer
# failed; 2 setup problem (no binary, no broker).
# =============================================================================
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_DIR="$(cd "$SCRIPT_DIR/.." && pwd)"
BIN="$REPO_DIR/target/release/kafka-producer"

SOAK_DURATION="${SOAK_DURATION:-5m}"
SOAK_RATE="${SOAK_RATE:-20000}"
SOAK_INTERVAL="${SOAK_INTERVAL:-5}"
SOAK_DIR="${SOAK_DIR:-$REPO_DIR/target/soak/$(date -u +%Y%m%dT%H%M%SZ)}"
KAFKA_BROKER="${KAFKA_BROKER:-localhost:9092}"
TOPIC="soak-$(date -u +%Y%m%d%H%M%S)-$$"

log() { echo "soak.sh: $*" >&2; }

[[ -x "$BIN" ]] || { log "no $BIN; run 'make build' (or 'make soak', which builds it)"; exit 2; }
mkdir -p "$SOAK_DIR"
log "producing to $KAFKA_BROKER topic $TOPIC for $SOAK_DURATION at $SOAK_RATE events/s; results in $SOAK_DIR"

KAFKA_BROKER="$KAFKA_BROKER" "$BIN" produce --topic "$TOPIC" --create-topic --partitions 3 \
  --duration "$SOAK_DURATION" --rate "$SOAK_RATE" --summary json \
  >"$SOAK_DIR/summary.json" 2>"$SOAK_DIR/producer.log" &
PID=$!
cleanup() { kill -TERM "$PID" 2>/dev/null || true; }
trap cleanup INT TERM

echo "elapsed_s,rss_kb,fds,threads" >"$SOAK_DIR/samples.csv"
START=$EPOCHREALTIME
while kill -0 "$PID" 2>/dev/null; do
  sleep "$SOAK_INTERVAL"
  status="$(cat "/proc/$PID/status" 2>/dev/null || true)"
  rss="$(awk '/^VmRSS:/ {print $2}' <<<"$status")"
  threads="$(awk '/^Threads:/ {print $2}' <<<"$status")"
  fds="$({ ls "/proc/$PID/fd" 2>/dev/null || true; } | wc -l)"
  [[ -n "$rss" ]] || break # exited between the check and the read
  elapsed="$(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')"
  echo "$elapsed,$rss,$fds,$threads" >>"$SOAK_DIR/samples.csv"
done
rc=0
wait "$PID" || rc=$?
trap - INT TERM

if [[ "${SOAK_KEEP_TOPIC:-0}" != "1" && "$KAFKA_BROKER" == localhost:9092 ]]; then
  "$SCRIPT_DIR/kafka.sh" run-class org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKER" \
    --delete --topic "$TOPIC" >/dev/null 2>&1 || log "could not delete topic $TOPIC"
fi

# The report: awk over the samples.
awk -F, -v rc="$rc" -v duration="$SOAK_DURATION" -v rate="$SOAK_RATE" '
  BEGIN { n = 0 }
  NR == 1 { next }
  { t[n] = $1; rss[n] = $2; fds[n] = $3; thr[n] = $4; n++ }
  END {
    if (n < 2) { print "too few samples (" n "); producer exit code " rc; exit 1 }
    last = t[n - 1]
    for (i = 0; i < n; i++) {
      if (t[i] < 60)         { fsum += rss[i]; fcount++; if (fds[i] > ffd) ffd = fds[i] }
      if (t[i] >= last - 60) { lsum += rss[i]; lcount++; if (fds[i] > lfd) lfd = fds[i] }
      if (fds[i] > maxfd) maxfd = fds[i]
      if (rss[i] > maxrss) maxrss = rss[i]
      if (thr[i] > maxthr) maxthr = thr[i]
    }
    first = fsum / fcount; lastm = lsum / lcount; growth = lastm - first
    rss_growing = growth > 8192 && growth > first * 0.10
    fd_growing = lfd > ffd + 4
    printf "soak: %s at %s events/s, %d samples over %.0f s, producer exit code %d\n", duration, rate, n, last, rc
    printf "RSS first minute mean %.1f MiB, last minute mean %.1f MiB (%+.1f MiB, %+.1f %%), max %.1f MiB\n", first / 1024, lastm / 1024, growth / 1024, 100 * growth / first, maxrss / 1024
    printf "open fds: first minute max %d, last minute max %d, max %d; threads max %d\n", ffd, lfd, maxfd, maxthr
    if (last < 120) print "note: shorter than 2 minutes, so the first and last minutes overlap"
    verdict = (rss_growing || fd_growing) ? "growing" : "flat"
    printf "verdict: %s%s%s\n", verdict, rss_growing ? " (RSS)" : "", fd_growing ? " (fds)" : ""
    exit (verdict == "growing" || rc != 0) ? 1 : 0
  }' "$SOAK_DIR/samples.csv" | tee "$SOAK_DIR/report.txt"
status=${PIPESTATUS[0]}
echo "producer summary: $(cat "$SOAK_DIR/summary.json")" | tee -a "$SOAK_DIR/report.txt"
exit "$status"
