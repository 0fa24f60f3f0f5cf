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
# Build, demo and tests. Both bring up the local broker first if none answers.
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

# Quality gates, then every test; integration tests must find the broker.
test: kafka-up
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	KAFKA_PRODUCER_REQUIRE_BROKER=1 cargo test
