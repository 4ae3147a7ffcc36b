#!/usr/bin/env bash
# Builds Prometheus's promtool (the version below) from the Go module proxy into
# ${XDG_CACHE_HOME:-~/.cache}/pingura/tools/, unless it is there already. The first build takes
# about 4.5 minutes on 2 cores (downloads included); later ones reuse Go's caches.
# Without Go it says so and fails under CI (CI=true), as the tests needing promtool would.
set -uo pipefail

version=v0.316.0  # github.com/prometheus/prometheus v0.316.0 is Prometheus 3.16
dir="${XDG_CACHE_HOME:-$HOME/.cache}/pingura/tools"
target="$dir/promtool-$version"
[ -x "$target" ] && exit 0

if ! command -v go >/dev/null 2>&1; then
  reason="no Go toolchain to build promtool"
elif ! mkdir -p "$dir"; then
  reason="cannot create $dir"
else
  echo "building promtool $version (go install; the first time takes minutes)"
  work=$(mktemp -d)
  if GOBIN="$work" go install "github.com/prometheus/prometheus/cmd/promtool@$version" >"$work/log" 2>&1 \
     && mv "$work/promtool" "$target"; then
    rm -rf "$work"
    exit 0
  fi
  reason="go install promtool failed: $(tail -n 3 "$work/log" | tr '\n' ' ')"
  rm -rf "$work"
fi

if [ -n "${CI:-}" ]; then
  echo "error: $reason; CI needs it" >&2
  exit 1
fi
echo "warning: $reason; the tests that need promtool will be skipped" >&2
exit 0
