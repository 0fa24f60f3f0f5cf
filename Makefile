SHELL := /bin/bash

# ---------------------------------------------------------------------------
# Local Kafka broker (scripts/kafka.sh; Apache Kafka 4.4.0, KRaft, no Docker).
# Honours KAFKA_INSTANCE, KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_ROOT,
# KAFKA_SECURITY from the environment; see the header of scripts/kafka.sh.
# ---------------------------------------------------------------------------
.PHONY: kafka-up kafka-down kafka-status

kafka-up:
	scripts/kafka.sh up

kafka-down:
	scripts/kafka.sh down

kafka-status:
	scripts/kafka.sh status
# ---------------------------------------------------------------------------
# end of Kafka broker section
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# Build, demo and tests. `demo` brings up the local broker first if none answers;
# `test` needs this checkout's own (see below).
# ---------------------------------------------------------------------------
.PHONY: build demo test

DEMO_EVENTS ?= 1000000

build:
	cargo build --release

# The main job end to end: 1,000,000 generated events to a 3-partition
# user.events topic, the summary, then verify reads the topic back.
demo: kafka-up build
	target/release/kafka-producer produce --create-topic --partitions 3 --count $(DEMO_EVENTS)
	target/release/kafka-producer verify

# Quality gates, then every test against this checkout's own broker. Tests read its log
# segments, so `up` refuses a broker it did not start on the port (KAFKA_OWN_BROKER=1)
# and says what to stop; `make test KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093` runs
# beside it instead. The tests reach the broker where scripts/kafka.sh says it listens.
# scripts/prometheus.sh unpacks Debian's prometheus package (server and promtool) into
# .tools/prometheus/ on first use, for the tests that scrape with a real Prometheus.
test:
	KAFKA_OWN_BROKER=1 scripts/kafka.sh up
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	scripts/deny.sh
	scripts/prometheus.sh
	eval "$$(scripts/kafka.sh env)" && \
	  KAFKA_BROKER="$$KAFKA_BOOTSTRAP" KAFKA_PRODUCER_REQUIRE_BROKER=1 cargo test

# ---------------------------------------------------------------------------
# static builds: fully static, stripped musl binaries for x86_64 and
# aarch64 in dist/, cross compiled with cargo-zigbuild + zig (PyPI wheels, no
# Docker); scripts/static.sh installs what it needs, idempotently.
#   make static        dist/kafka-producer-{x86_64,aarch64}-linux-musl
#   make test-static   builds them if missing, then --version, schema show and
#                      a 300-event produce to the local broker with each (the
#                      aarch64 one under qemu-aarch64-static)
#   make test-image    the Dockerfile's image (runtime-prebuilt target, from the
#                      x86_64 binary) built and run with podman against the local
#                      broker, and compose's producer service with podman-compose;
#                      installs podman, runc and podman-compose (scripts/test-image.sh)
# ---------------------------------------------------------------------------
.PHONY: static test-static test-image

static:
	scripts/static.sh

test-static:
	scripts/test-static.sh

test-image:
	scripts/test-image.sh
# ---------------------------------------------------------------------------
# end of static builds section
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# benchmarks (see BENCHMARKS.md). Not part of `make test`.
#   make bench         ours vs librdkafka side by side on the local broker:
#                      benches/vs-librdkafka (own workspace, librdkafka built
#                      with cmake), alternating runs, medians and ratios
#                      (scripts/bench.sh). Quick run:
#                      make bench BENCH_EVENTS=200000 BENCH_RUNS=1
#   make bench-floor   the single-core floor, no network: criterion benchmark
#                      benches/hot_path.rs (cargo bench --bench hot_path)
#   make bench-sizes   bytes per event (JSON, protobuf, protobuf+zstd as the
#                      broker stores it) and zstd/gzip/lz4/snappy on the same
#                      events with the project's CLI (scripts/bench/sizes.sh)
#   make bench-profile where ours spends its CPU: perf (software clock, DWARF
#                      call graphs) over the timed phase of one run, by symbol,
#                      category and owning caller (scripts/bench/profile.sh)
# ---------------------------------------------------------------------------
.PHONY: bench bench-floor bench-sizes bench-profile

BENCH_EVENTS ?= 2000000
BENCH_RUNS ?= 3

bench:
	BENCH_EVENTS=$(BENCH_EVENTS) BENCH_RUNS=$(BENCH_RUNS) scripts/bench.sh

# Built with cargo, then run outside it, so the build lock is not held while it measures.
bench-floor:
	bin="$$(cargo bench --bench hot_path --no-run --message-format=json \
	  | jq -r 'select(.target.name == "hot_path" and .executable != null) | .executable')"; \
	  "$$bin" --bench

bench-sizes: kafka-up build
	scripts/bench/sizes.sh

bench-profile:
	scripts/bench/profile.sh
# ---------------------------------------------------------------------------
# end of benchmarks section
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# faults: the delivery promise under failures; see RELIABILITY.md.
# tests/fault_crash.rs (kill -9 of an owned broker) and tests/fault_network.rs
# (resets, stalls, blackholes through a TCP proxy) run in `make test`.
#   make test-cluster  3-node KRaft cluster on loopback (scripts/kafka.sh
#                      cluster, ports 28192-28197), kill -9 of a partition
#                      leader under load, three rounds, then a frozen (SIGSTOP)
#                      leader (tests/fault_cluster.rs), and a topic refused
#                      for too few in-sync replicas; about 3 min;
#                      `make test` runs it too
#   make soak          the release producer for SOAK_DURATION (5m) at
#                      SOAK_RATE (20000) events/s against the local broker,
#                      RSS and open fds every 5 s into target/soak/<time>/,
#                      report and verdict flat/growing (scripts/soak.sh)
# ---------------------------------------------------------------------------
.PHONY: test-cluster soak

test-cluster: kafka-up
	KAFKA_PRODUCER_REQUIRE_BROKER=1 cargo test --test fault_cluster -- --nocapture

soak: kafka-up build
	scripts/soak.sh
# ---------------------------------------------------------------------------
# end of faults section
# ---------------------------------------------------------------------------

# ---------------------------------------------------------------------------
# fuzzing the JSON line parser: the no-panic properties of src/json_lines.rs
# (arbitrary bytes, JSON-ish bytes, mutated valid lines; proptest) run for
# FUZZ_SECONDS, in rounds of FUZZ_CASES cases per property, each round with a
# fresh random seed. `make test` runs 256 cases per property.
#   make fuzz FUZZ_SECONDS=3600
# A failure prints the minimal input and stores its seed under
# proptest-regressions/, which later runs replay first. A round of 10,000 cases
# takes a few minutes in the debug build on a 2-core machine (3,000 took 62 s),
# so a run can last up to one round longer than FUZZ_SECONDS.
# ---------------------------------------------------------------------------
.PHONY: fuzz

FUZZ_SECONDS ?= 600
FUZZ_CASES ?= 10000

fuzz:
	cargo test --lib --no-run
	end=$$(( $$(date +%s) + $(FUZZ_SECONDS) )); rounds=0; \
	while [ $$(date +%s) -lt $$end ]; do \
	  PROPTEST_CASES=$(FUZZ_CASES) cargo test --quiet --lib never_panic_the_parser || exit 1; \
	  rounds=$$((rounds + 1)); \
	done; \
	echo "fuzz: $$rounds rounds of $(FUZZ_CASES) cases per property, no failure"
