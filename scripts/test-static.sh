#!/usr/bin/env bash
# =============================================================================
# scripts/test-static.sh: smoke test of the static musl binaries in dist/.
#
# 1. Runs `make static` if a binary is missing (or STATIC_REBUILD=1).
# 2. Checks each binary is statically linked (file / ldd).
# 3. Starts the local broker (`make kafka-up`; skipped with KAFKA_UP=0).
# 4. For each binary -- aarch64 under qemu-aarch64-static (user-mode
#    emulation, called explicitly: no binfmt needed), x86_64 natively:
#      --version                  prints "kafka-producer <version>"
#      schema show                prints the proto, with "message UserEvent"
#      produce --count 300 --create-topic --partitions 3
#              --topic static-test-<arch>-<random> --summary json
#                                 JSON summary with "delivered": 300, "failed": 0
#
# Environment:
#   KAFKA_BROKER    broker to produce to      (default localhost:9092)
#   DIST_DIR        where the binaries are    (default <repo>/dist)
#   STATIC_REBUILD  1 = run `make static` even if the binaries exist
#   KAFKA_UP        0 = do not run `make kafka-up` (broker managed elsewhere)
#   PRODUCE_TIMEOUT seconds allowed for each produce run (default 180)
# Exit status: 0 if every check passed, 1 otherwise (message on stderr).
# =============================================================================
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIST_DIR=${DIST_DIR:-$ROOT/dist}
BROKER=${KAFKA_BROKER:-localhost:9092}
COUNT=300
PRODUCE_TIMEOUT=${PRODUCE_TIMEOUT:-180}
BIN_X86="$DIST_DIR/kafka-producer-x86_64-linux-musl"
BIN_ARM="$DIST_DIR/kafka-producer-aarch64-linux-musl"

log() { printf 'test-static: %s\n' "$*" >&2; }
die() { printf 'test-static: FAIL: %s\n' "$*" >&2; exit 1; }

cd "$ROOT"

# --- 1. binaries -------------------------------------------------------------
if [ "${STATIC_REBUILD:-0}" = 1 ] || [ ! -x "$BIN_X86" ] || [ ! -x "$BIN_ARM" ]; then
    log "building the static binaries (make static)"
    make static || die "make static failed"
fi
[ -x "$BIN_X86" ] || die "$BIN_X86 missing after make static"
[ -x "$BIN_ARM" ] || die "$BIN_ARM missing after make static"

# --- 2. static linking ---------------------------------------------------------
if ! command -v file >/dev/null; then
    command -v apt-get >/dev/null || die "'file' missing and no apt-get to install it"
    log "installing file (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q file >/dev/null ||
        { apt-get update -q >/dev/null || true; DEBIAN_FRONTEND=noninteractive apt-get install -y -q file >/dev/null; } ||
        die "could not install file"
fi
for bin in "$BIN_X86" "$BIN_ARM"; do
    desc=$(file -b "$bin")
    case "$desc" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) die "$bin is not statically linked: $desc" ;;
    esac
    # ldd exits 1 on a static binary; its message is what we check.
    ldd_out=$(ldd "$bin" 2>&1 || true)
    case "$ldd_out" in
        *"not a dynamic executable"*) ;;
        *) die "ldd $bin: expected 'not a dynamic executable', got: $ldd_out" ;;
    esac
    log "static: $(basename "$bin"): $desc ($(stat -c %s "$bin") bytes)"
done

# --- 3. qemu for the aarch64 binary ----------------------------------------------
QEMU=""
for q in qemu-aarch64-static qemu-aarch64; do
    if command -v "$q" >/dev/null; then QEMU=$(command -v "$q"); break; fi
done
if [ -z "$QEMU" ]; then
    command -v apt-get >/dev/null || die "qemu-aarch64-static missing and no apt-get to install it"
    log "installing qemu-user-static (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q qemu-user-static >/dev/null; then
        apt-get update -q >/dev/null || true
        # Debian 13 renamed the package: qemu-user provides qemu-aarch64(-static).
        apt-get install -y -q qemu-user-static >/dev/null ||
            apt-get install -y -q qemu-user >/dev/null ||
            die "could not install qemu-user-static"
    fi
    for q in qemu-aarch64-static qemu-aarch64; do
        if command -v "$q" >/dev/null; then QEMU=$(command -v "$q"); break; fi
    done
    [ -n "$QEMU" ] || die "qemu-aarch64-static not found after installing qemu-user-static"
fi
log "aarch64 runner: $QEMU"

# --- 4. broker ---------------------------------------------------------------------
if [ "${KAFKA_UP:-1}" != 0 ]; then
    make kafka-up || die "make kafka-up failed"
fi

# --- 5. the checks -------------------------------------------------------------------
check_binary() { # <arch> <runner...> <binary>
    local arch=$1
    shift
    local -a run=("$@")
    local out topic summary

    out=$("${run[@]}" --version 2>&1) || die "$arch: --version exited non-zero: $out"
    [[ "$out" == "kafka-producer "[0-9]* ]] || die "$arch: --version printed '$out', expected 'kafka-producer <version>'"
    log "$arch: --version: $out"

    out=$("${run[@]}" schema show 2>&1) || die "$arch: 'schema show' exited non-zero: $out"
    grep -q 'message UserEvent' <<<"$out" || die "$arch: 'schema show' output has no 'message UserEvent'"
    log "$arch: schema show: $(wc -l <<<"$out") lines, contains 'message UserEvent'"

    topic="static-test-$arch-$(date +%s)-$RANDOM"
    log "$arch: produce --count $COUNT to $topic at $BROKER"
    if ! summary=$(timeout "$PRODUCE_TIMEOUT" "${run[@]}" --broker "$BROKER" --topic "$topic" \
        produce --count "$COUNT" --create-topic --partitions 3 --summary json); then
        die "$arch: produce exited non-zero (summary: ${summary:-none})"
    fi
    log "$arch: summary: $summary"
    SUMMARY="$summary" EXPECT="$COUNT" python3 - <<'EOF' || die "$arch: summary check failed"
import json, os, sys
text = os.environ["SUMMARY"].strip()
try:
    s = json.loads(text)
except ValueError:
    # tolerate log lines before the summary: the summary is the last line
    s = json.loads(text.splitlines()[-1])
want = int(os.environ["EXPECT"])
errors = []
if s.get("delivered") != want:
    errors.append(f'"delivered" is {s.get("delivered")!r}, expected {want}')
if s.get("failed") != 0:
    errors.append(f'"failed" is {s.get("failed")!r}, expected 0')
for e in errors:
    print(f"test-static: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
    log "$arch: OK ($COUNT delivered, 0 failed)"
}

check_binary aarch64 "$QEMU" "$BIN_ARM"
check_binary x86_64 "$BIN_X86"
log "all static binary checks passed"
