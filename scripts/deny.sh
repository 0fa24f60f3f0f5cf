#!/usr/bin/env bash
# scripts/deny.sh: `cargo deny` over the dependency tree, as deny.toml says: RustSec
# advisories (vulnerable, unmaintained, unsound, yanked crates), licences, bans, sources.
# Run by `make test`. Installs cargo-deny with `cargo install --locked cargo-deny` when it
# is missing (a cold install compiles ~400 crates: about 5 CPU-minutes, once per machine).
#
# The advisories come from the RustSec database, which cargo deny fetches from GitHub into
# ~/.cargo/advisory-dbs. Where GitHub cannot be reached, the copy fetched last is used (and
# its date printed); with no copy at all the advisory check is skipped with a loud line,
# while licences, bans and sources, which need no network, are always checked.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "deny.sh: $*" >&2; }

if ! cargo deny --version >/dev/null 2>&1; then
  log "cargo-deny is missing; installing it (cargo install --locked cargo-deny, several minutes, once)"
  cargo install --locked cargo-deny
fi

# cargo deny reads `cargo metadata` for every platform, so the crates only other
# platforms build (Windows, UEFI) must be in the local registry too: a build here
# downloads only this platform's.
cargo fetch --locked --quiet || log "cargo fetch failed (no registry?): checking with the crates already downloaded"
cargo deny --offline check licenses bans sources

db_date() {
  local db
  db="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/advisory-db-*/ 2>/dev/null | head -n 1 || true)"
  [[ -n "$db" ]] && git -C "$db" log -1 --format=%cs 2>/dev/null || echo "date unknown"
}

out="$(mktemp)"
trap 'rm -f "$out"' EXIT
if cargo deny check advisories 2>"$out"; then
  log "advisories checked against the RustSec database of $(db_date)"
  exit 0
fi
if ! grep -q "failed to fetch advisory database" "$out"; then
  cat "$out" >&2
  log "a dependency has a RustSec advisory (above): update it (cargo update -p NAME) or replace it"
  exit 1
fi
db="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/advisory-dbs/advisory-db-*/ 2>/dev/null | head -n 1 || true)"
if [[ -z "$db" ]]; then
  log "SKIPPED advisories: the RustSec database cannot be fetched from GitHub and no earlier copy is in ${CARGO_HOME:-$HOME/.cargo}/advisory-dbs (licences, bans and sources were checked)"
  exit 0
fi
log "GitHub cannot be reached: checking advisories against the RustSec database as fetched last ($(db_date))"
if ! cargo deny --offline check advisories; then
  log "a dependency has a RustSec advisory (above): update it (cargo update -p NAME) or replace it"
  exit 1
fi
