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
