#!/usr/bin/env bash
# Fresh machine → demo study end to end: set up .venv, then run examples/demo.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
xstilts run examples/demo.toml "$@"
