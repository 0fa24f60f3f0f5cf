#!/usr/bin/env bash
# =============================================================================
# scripts/static.sh: fully static, stripped release binaries of kafka-producer
# for Linux on x86_64 and aarch64 (musl libc), cross compiled without Docker.
#
# Usage: scripts/static.sh [TARGET...]
#   TARGET  Rust target triples (default: x86_64-unknown-linux-musl
#           aarch64-unknown-linux-musl)
#
# Output: dist/kafka-producer-<arch>-linux-musl  (e.g. ...-aarch64-linux-musl)
#         dist/SHA256SUMS
#
# How: rustup's rust-std for the musl targets, cargo-zigbuild as the cargo
# wrapper and zig (the `ziglang` PyPI wheel) as C compiler and linker, so the
# C parts (zstd-sys; ring, used by rustls) cross compile with zig's own
# bundled musl headers and no cross gcc. Everything is installed idempotently:
#   - `rustup target add` only for targets not yet installed;
#   - cargo-zigbuild and ziglang (pinned, both from PyPI as prebuilt wheels)
#     into a virtualenv under $STATIC_TOOLS_DIR, only if the pinned versions
#     are not already there.
#
# Environment:
#   STATIC_TOOLS_DIR         where the venv lives
#                            (default ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-producer-static)
#   DIST_DIR                 output directory        (default <repo>/dist)
#   CARGO_BUILD_JOBS         honoured by cargo as usual (unset: all cores)
#   CARGO_TARGET_DIR         honoured by cargo as usual (default <repo>/target)
#   STATIC_PYTHON            python used to make the venv (default python3)
#
# Stripping/size: the release profile's debug line tables are dropped and the
# symbols stripped for these builds only, via CARGO_PROFILE_RELEASE_* env
# overrides (Cargo.toml is not changed; target/<triple>/ is separate from the
# host build, so the host's release build is not invalidated).
# =============================================================================
set -euo pipefail

CARGO_ZIGBUILD_VERSION=0.24.0
ZIGLANG_VERSION=0.15.2

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TOOLS_DIR=${STATIC_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-producer-static}
DIST_DIR=${DIST_DIR:-$ROOT/dist}
PYTHON=${STATIC_PYTHON:-python3}
VENV=$TOOLS_DIR/venv-zigbuild-$CARGO_ZIGBUILD_VERSION-zig-$ZIGLANG_VERSION

if [ $# -gt 0 ]; then
    TARGETS=("$@")
else
    TARGETS=(x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
fi

log() { printf 'static.sh: %s\n' "$*" >&2; }
die() { printf 'static.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# --- 1. Rust targets ---------------------------------------------------------
command -v cargo >/dev/null || die "cargo not found (install Rust with rustup)"
command -v rustup >/dev/null || die "rustup not found: the musl rust-std comes from 'rustup target add'"
cd "$ROOT"
installed_targets=$(rustup target list --installed)
for t in "${TARGETS[@]}"; do
    if grep -qx "$t" <<<"$installed_targets"; then
        log "rust target $t: present"
    else
        log "rust target $t: installing (rustup target add $t)"
        rustup target add "$t" || die "rustup target add $t failed"
    fi
done

# --- 2. cargo-zigbuild + zig (PyPI wheels, pinned) in a venv -------------------
tools_ok() {
    [ -x "$VENV/bin/cargo-zigbuild" ] &&
        [ "$("$VENV/bin/cargo-zigbuild" --version 2>/dev/null)" = "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ] &&
        [ "$("$VENV/bin/python" -m ziglang version 2>/dev/null)" = "$ZIGLANG_VERSION" ]
}
if tools_ok; then
    log "cargo-zigbuild $CARGO_ZIGBUILD_VERSION + zig $ZIGLANG_VERSION: present in $VENV"
else
    log "installing cargo-zigbuild==$CARGO_ZIGBUILD_VERSION ziglang==$ZIGLANG_VERSION into $VENV"
    command -v "$PYTHON" >/dev/null || die "$PYTHON not found (needed for the ziglang/cargo-zigbuild wheels)"
    mkdir -p "$TOOLS_DIR"
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV" || die "'$PYTHON -m venv' failed (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" "ziglang==$ZIGLANG_VERSION" ||
        die "pip install cargo-zigbuild/ziglang failed"
    tools_ok || die "cargo-zigbuild/zig not usable after install"
fi
# cargo-zigbuild finds zig as `python3 -m ziglang`; the venv's python3 comes
# first on PATH so it is the one that has the ziglang module.
export PATH="$VENV/bin:$PATH"

# --- 3. build ----------------------------------------------------------------
export CARGO_PROFILE_RELEASE_DEBUG=0
export CARGO_PROFILE_RELEASE_STRIP=symbols
mkdir -p "$DIST_DIR"
for t in "${TARGETS[@]}"; do
    arch=${t%%-*}
    out="$DIST_DIR/kafka-producer-$arch-linux-musl"
    log "building $t"
    start=$SECONDS
    cargo zigbuild --release --target "$t" --bin kafka-producer ||
        die "cargo zigbuild --target $t failed"
    tdir=${CARGO_TARGET_DIR:-$ROOT/target}
    cp -f "$tdir/$t/release/kafka-producer" "$out.tmp"
    mv -f "$out.tmp" "$out"
    log "built $out in $((SECONDS - start)) s ($(stat -c %s "$out") bytes)"

    # Static or nothing: a dynamically linked result is a failure, not a warning.
    if command -v file >/dev/null; then
        desc=$(file -b "$out")
        case "$desc" in
            *"statically linked"* | *"static-pie linked"*) ;;
            *) die "$out is not statically linked: $desc" ;;
        esac
        case "$desc" in
            *"not stripped"*) die "$out is not stripped: $desc" ;;
        esac
        log "file: $desc"
    fi
done
(cd "$DIST_DIR" && sha256sum kafka-producer-*-linux-musl >SHA256SUMS)
ls -l "$DIST_DIR" >&2
