#!/usr/bin/env bash
# The one test command (the README's and CI's): install strangler with its test extras into
# .venv, install the servers and tools some tests run for real (Redis, PostgreSQL, nginx and
# HAProxy for the exported data planes and the slow-client benchmark, Graphviz to render the DOT report, zsh for its completion script,
# Chromium and chromedriver for the dashboard's browser tests) from Debian's
# packages when they are missing,
# then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
command -v dot >/dev/null 2>&1 || need+=(graphviz)
command -v npm >/dev/null 2>&1 || need+=(nodejs npm)
command -v zsh >/dev/null 2>&1 || need+=(zsh)
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
if [ ${#need[@]} -gt 0 ]; then
  echo "test.sh: installing ${need[*]} (needed by the tests that use real servers)" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq >/dev/null && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "test.sh: cannot install ${need[*]}: the tests that need them will fail, loudly" >&2
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
# the Gateway API and Istio CRD schemas the Kubernetes exports are validated against (pinned)
npm ci --silent --no-audit --no-fund --prefix tests/fixtures/crds >/dev/null 2>&1 \
  || echo "test.sh: npm ci in tests/fixtures/crds failed: the CRD schema tests will fail, loudly" >&2
# two workers (pytest-xdist; this machine and CI have 2 cores): most tests wait on real
# servers and processes, so the suite takes about half as long. No test counts or claims what
# another test may hold at the same time (ports are free ones, processes are counted by the
# environment their test gave them)
exec .venv/bin/python -m pytest -n "${STRANGLER_TEST_WORKERS:-2}" "$@"
