#!/usr/bin/env bash
# Fresh machine → the test suite CI runs: set up .venv, lint and type-check, then the fast tests plus the
# real-data tests marked for CI (`-m "not slow or ci"`). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
ruff check src tests scripts
ruff format --check src tests scripts
mypy
python -m pytest -q -m "not slow or ci" "$@"
