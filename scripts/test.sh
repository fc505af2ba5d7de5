#!/usr/bin/env bash
# Install strangler with its test extras into .venv, install the system tools some tests
# need (nginx and wrk for the proxy's side-by-side checks), then run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[test]'
exec .venv/bin/python -m pytest "$@"
