#!/usr/bin/env bash
# One-off driver for the 2026-12-01 measurement window: one bench.sh invocation per
# scenario, in priority order, skipping a scenario that would not end by the deadline.
cd /work/wt-bench
export KAFKA_ROOT=/work/main/.kafka
start=$(date +%s)
cap=$(( start + 30*60 ))
end_window=$(date -d '11:50' +%s)
deadline=$(( cap < end_window ? cap : end_window ))
# scenario:estimated-minutes
for item in ${SCENARIO_PLAN:-p100:4 p1000:8 p1000-long:8 p3:3 latency:4 rate:3 p12:3}; do
  sc=${item%%:*}; est=${item##*:}
  now=$(date +%s)
  if (( now + est*60 > deadline )); then echo "$(date +%T) skip $sc (est $est min, deadline $(date -d @$deadline +%T))"; continue; fi
  echo "$(date +%T) start $sc load $(cut -d' ' -f1-3 /proc/loadavg)"
  BENCH_EVENTS=1000000 BENCH_RUNS=3 BENCH_SCENARIOS=$sc BENCH_OUT=target/bench/real-$sc scripts/bench.sh > target/bench/real-$sc.log 2>&1
  echo "$(date +%T) end $sc rc $?"
done
echo "$(date +%T) all done; wall $(( $(date +%s) - start )) s"
