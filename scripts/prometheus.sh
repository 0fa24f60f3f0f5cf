#!/usr/bin/env bash
# scripts/prometheus.sh: a Prometheus server and promtool for the tests, from Debian's
# `prometheus` package (it ships both binaries), unpacked into .tools/prometheus/
# (git-ignored). Nothing is installed system-wide and no service is started: the package
# is fetched with `apt-get download` and unpacked with `dpkg-deb -x`; the tests start the
# server themselves, on loopback (tests/common/prometheus.rs).
#
#   scripts/prometheus.sh          install if missing (run by `make test`)
#   scripts/prometheus.sh path     install if missing, then print the folder that holds
#                                  `prometheus` and `promtool`
#
# Needs apt-get and dpkg-deb (Debian, Ubuntu); when the package list has no `prometheus`
# yet (a fresh machine), runs `apt-get update` once, which needs root. Already installed,
# it only checks that both binaries run (well under a second). A cold install downloads
# about 19 MB.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR=.tools/prometheus
PACKAGE=prometheus

log() { echo "prometheus.sh: $*" >&2; }
die() { log "$*"; exit 1; }

installed() {
  [[ -x "$DIR/prometheus" && -x "$DIR/promtool" ]] &&
    "$DIR/prometheus" --version >/dev/null 2>&1 &&
    "$DIR/promtool" --version >/dev/null 2>&1
}

install() {
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null ||
    die "needs apt-get and dpkg-deb (Debian's $PACKAGE package); install Prometheus 2.x yourself and put prometheus and promtool in $DIR/"
  work="$(mktemp -d "${TMPDIR:-/tmp}/prometheus-deb.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  if ! apt-cache show "$PACKAGE" >/dev/null 2>&1; then
    log "the package list has no $PACKAGE: apt-get update"
    apt-get update -q >/dev/null || die "apt-get update failed (run it as root)"
  fi
  log "downloading Debian's $PACKAGE package (apt-get download, no system install)"
  # -o APT::Sandbox::User=root: the download goes to a private temp dir that the _apt
  # user cannot write to; as root this only silences apt's warning about it.
  (cd "$work" && apt-get download -q -o APT::Sandbox::User="$(id -un)" "$PACKAGE" >/dev/null) ||
    die "apt-get download $PACKAGE failed"
  local deb
  deb="$(ls "$work"/"$PACKAGE"_*.deb)"
  dpkg-deb -x "$deb" "$work/root"
  for bin in prometheus promtool; do
    [[ -x "$work/root/usr/bin/$bin" ]] || die "$(basename "$deb") has no usr/bin/$bin"
  done
  # Into place in one step, so an interrupted install leaves nothing half there.
  mkdir -p "$work/out"
  mv "$work/root/usr/bin/prometheus" "$work/root/usr/bin/promtool" "$work/out/"
  dpkg-deb -f "$deb" Version >"$work/out/VERSION"
  mkdir -p "$(dirname "$DIR")"
  rm -rf "$DIR"
  mv "$work/out" "$DIR"
  installed || die "the unpacked binaries do not run: $("$DIR/prometheus" --version 2>&1 | head -n 1)"
  log "installed $PACKAGE $(cat "$DIR/VERSION") in $DIR/"
}

installed || install

case "${1:-install}" in
  install) ;;
  path) echo "$PWD/$DIR" ;;
  *) die "unknown command ${1}: use no argument (install) or \`path\`" ;;
esac
