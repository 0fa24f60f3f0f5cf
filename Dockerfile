# syntax=docker/dockerfile:1
# kafka-producer as a static musl binary on an empty (scratch) image.
#
#   docker build -t kafka-producer .
#   docker run --rm kafka-producer --version
#   docker compose up -d          # kafka + producer, see docker-compose.yml
#
# Default command: produce generated UserEvents until stopped (SIGTERM/Ctrl-C
# delivers what was accepted, then exits), at PRODUCE_RATE events per second.
# Configuration is by environment: KAFKA_BROKER, KAFKA_TOPIC, PRODUCE_RATE, ...
# (`kafka-producer --help` lists every flag with its variable).
# Metrics and probes on port 9464 (/metrics, /healthz, /readyz); JSON logs.
#
# Without Docker, `make static` builds the same kind of binary for x86_64 and
# aarch64 (cargo-zigbuild); this image uses the plain musl toolchain instead.
# The runtime-prebuilt target puts that binary in the same image with no Rust
# image to pull; `make test-image` builds and runs it with podman.

# ---- builder -----------------------------------------------------------------
FROM rust:1.95-bookworm AS builder

# musl-tools: musl-gcc, the C compiler for zstd-sys and ring on the musl target.
RUN apt-get update \
    && apt-get install -y --no-install-recommends musl-tools ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN rustup target add x86_64-unknown-linux-musl

ENV CC_x86_64_unknown_linux_musl=musl-gcc \
    CARGO_PROFILE_RELEASE_DEBUG=0 \
    CARGO_PROFILE_RELEASE_STRIP=symbols

WORKDIR /src
# The whole context (.dockerignore leaves out target/, dist/, .kafka/, .git):
# Cargo.toml names more than src/ (vendor/ patches, benches/ targets), and cargo
# refuses a manifest whose targets or path dependencies are missing.
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --target x86_64-unknown-linux-musl --bin kafka-producer \
    && cp target/x86_64-unknown-linux-musl/release/kafka-producer /kafka-producer \
    && /kafka-producer --version

# ---- runtime from a prebuilt binary ---------------------------------------------
# The same image from a binary `make static` already built, without pulling the Rust
# image (scripts/test-image.sh builds it with podman). The context is a directory
# holding only kafka-producer and ca-certificates.crt:
#   docker build --target runtime-prebuilt -f Dockerfile -t kafka-producer DIR
# Everything below the COPYs matches the runtime stage (tests/deploy_files.rs checks).
FROM scratch AS runtime-prebuilt

COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY kafka-producer /kafka-producer

ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    KAFKA_BROKER=localhost:9092 \
    KAFKA_TOPIC=user.events \
    PRODUCE_RATE=1000 \
    KAFKA_PRODUCER_METRICS_ADDR=0.0.0.0:9464 \
    KAFKA_PRODUCER_LOG_FORMAT=json
EXPOSE 9464
USER 65532:65532
STOPSIGNAL SIGTERM
ENTRYPOINT ["/kafka-producer"]
CMD ["produce", "--create-topic", "--duration", "0"]

# ---- runtime (the default target) ---------------------------------------------
FROM scratch AS runtime

COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /kafka-producer /kafka-producer

# KAFKA_PRODUCER_METRICS_ADDR: /metrics, /healthz and /readyz on port 9464, on all
# addresses so that probes and Prometheus reach it from outside the container; logs as
# one JSON object per line, for log collectors.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    KAFKA_BROKER=localhost:9092 \
    KAFKA_TOPIC=user.events \
    PRODUCE_RATE=1000 \
    KAFKA_PRODUCER_METRICS_ADDR=0.0.0.0:9464 \
    KAFKA_PRODUCER_LOG_FORMAT=json
EXPOSE 9464

# Non-root (the conventional "nonroot" uid/gid; scratch has no /etc/passwd).
USER 65532:65532

STOPSIGNAL SIGTERM
ENTRYPOINT ["/kafka-producer"]
CMD ["produce", "--create-topic", "--duration", "0"]
