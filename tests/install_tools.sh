#!/usr/bin/env bash
# Installs the programs some tests drive that pip cannot bring: Chromium (the dashboard's
# browser tests) and Borg (the borgmatic test), from Debian's packages, Prometheus's
# promtool (the checks of deploy/prometheus/), built from the Go module proxy, and the
# OpenID provider of the single sign-on tests (tests/oidc, from npm), when missing.
# `make test` runs this first, so a fresh machine needs nothing by hand.
#
# When they cannot be installed (not root and no password-less sudo, or apt fails), it says
# so and goes on: the tests that need them are then skipped with that reason, except under
# CI (CI=true), where this script fails, as those tests would.
set -uo pipefail

# promtool: Prometheus's own checker of rule files, configs and scrapes, at a pinned version,
# built once per machine into the user's cache (a fresh clone finds it there; Go's module and
# build caches make a rebuild quick). tests/deploy/test_prometheus.py looks for it there.
status=0
bash "$(dirname "$0")/install_promtool.sh" || status=$?

# The OpenID provider of the single sign-on tests: panva's oidc-provider, at the version
# tests/oidc/package-lock.json pins, into tests/oidc/node_modules (kept out of git) by
# `npm ci`, again whenever the lock file is newer than the install.
oidc_dir="$(dirname "$0")/oidc"
oidc_reason=""
if [ ! -f "$oidc_dir/node_modules/.package-lock.json" ] \
   || [ "$oidc_dir/package-lock.json" -nt "$oidc_dir/node_modules/.package-lock.json" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    oidc_reason="no npm (Node.js 20) to install the OpenID provider of the SSO tests (tests/oidc)"
  elif ! (cd "$oidc_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null); then
    oidc_reason="npm ci in tests/oidc failed"
  fi
fi
if [ -n "$oidc_reason" ]; then
  if [ -n "${CI:-}" ]; then
    echo "error: $oidc_reason; CI needs it" >&2
    status=1
  else
    echo "warning: $oidc_reason; the SSO tests will be skipped" >&2
  fi
fi

declare -A package=([chromium]=chromium [borg]=borgbackup)
missing=()
for tool in "${!package[@]}"; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("${package[$tool]}")
done
[ ${#missing[@]} -eq 0 ] && exit $status

as_root=()
can_install=1
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then as_root=(sudo -n); else can_install=0; fi
fi

if [ "$can_install" = 1 ]; then
  echo "installing test tools: ${missing[*]} (apt-get)"
  if "${as_root[@]}" apt-get update -q >/dev/null \
     && DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null; then
    exit $status
  fi
  reason="apt-get install ${missing[*]} failed"
else
  reason="not root and no password-less sudo to apt-get install ${missing[*]}"
fi

if [ -n "${CI:-}" ]; then
  echo "error: $reason; CI needs them" >&2
  exit 1
fi
echo "warning: $reason; the tests that need them will be skipped" >&2
exit 0
