#!/usr/bin/env bash
# Make, on this machine, what a GPU call of the pawsx-scaling study carries (.gpu/, ignored by
# git, so every fresh checkout needs it again), before any device time is spent:
#   1. the bundle's data dir: a copy of ../shared/data whose corpus files en/ko are cut to their
#      first 100,000 / 65,000 lines (the 64 MiB a call carries), checked against the SHA-256 of
#      the cut the published scratch runs rest on (their stage keys hash these bytes);
#   2. wheels of the packages the GPU image lacks (versions as in .venv), for Python 3.12;
#   3. the compact bundle (.gpu/bundle.tar.xz; ~4 minutes on 2 cores);
#   4. the run list (.gpu/tiers.txt) without the runs already in the published results;
#   5. the carry check (tree + bundle + wheels + tiers ≤ 64 MiB).
#
#   bash scripts/gpu/prepare.sh [--data-only] [-- MAKE_TIERS_ARGS...]
#
# MAKE_TIERS_ARGS default to the plan in docs/results/pawsx-scaling/README.md (every worker: the
# e5 runs first, then the scratch runs; run_study.sh WORKER_GROUPS="all:N").
# Environment: SHARED_DATA (../shared/data), GPU_DATA (.gpu/data), STUDY, PYTHON (.venv),
# BUNDLE_MODELS (globs on rung names, space-separated: pack only these rungs' encoders, e.g.
# 'scratch-*' once every e5 run is published: 28 instead of 50 MB, so the carry fits again;
# run_study.sh then needs ADOPT_ONLY= as the bundle holds no e5 encoder to adopt).
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${SHARED_DATA:-../shared/data}
DATA=${GPU_DATA:-.gpu/data}
STUDY=${STUDY:-studies/pawsx-scaling.toml}
DATA_ONLY=0
TIERS_ARGS=()
while [ $# -gt 0 ]; do
  case $1 in
    --data-only) DATA_ONLY=1 ;;
    --) shift; TIERS_ARGS=("$@"); break ;;
    *) echo "unknown argument: $1 (see the header of $0)" >&2; exit 2 ;;
  esac
  shift
done
# every worker (group "all") takes the e5 runs first, then the scratch runs
[ ${#TIERS_ARGS[@]} -gt 0 ] || TIERS_ARGS=(--tier all 'e5-*' --tier all 'scratch-*')

# 1. data. The cut is `zcat | head -n N | gzip -n -9` (no name or time in the header), which is
#    what reproduces session A's bytes; Python's gzip module writes other bytes.
declare -A LINES=([en]=100000 [ko]=65000)
declare -A SHA=(
  [en]=e2a410a2b58252973edd508fb5e74bb436b9406a92c48c5204d892c1a39aef02
  [ko]=42f4927e45862bd417d7df31bf96728437f1bc4644f59f0123e42cfe38d8614d
)
[ -d "$SHARED/multilingual-text" ] || { echo "no $SHARED/multilingual-text" >&2; exit 1; }
mkdir -p "$DATA"
for d in "$SHARED"/*/; do
  name=$(basename "$d")
  # real copies: a bundle names its files by their path below the data dir, so no symlinks
  [ -e "$DATA/$name" ] || { cp -r "$d" "$DATA/$name" && chmod -R u+w "$DATA/$name"; }
done
for lang in "${!LINES[@]}"; do
  out="$DATA/multilingual-text/$lang.txt.gz"
  if [ "$(sha256sum "$out" | cut -d' ' -f1)" != "${SHA[$lang]}" ]; then
    # (zcat ends on SIGPIPE when head has its lines: not an error here)
    { zcat "$SHARED/multilingual-text/$lang.txt.gz" || true; } | head -n "${LINES[$lang]}" \
      | gzip -n -9 > "$out.tmp"
    mv "$out.tmp" "$out"
  fi
  got=$(sha256sum "$out" | cut -d' ' -f1)
  if [ "$got" != "${SHA[$lang]}" ]; then
    echo "$out: SHA-256 $got, not ${SHA[$lang]}: the scratch rungs' keys would not match" \
      "the published runs (another gzip? other source text?)" >&2
    exit 1
  fi
done
echo "data: $DATA (corpus en/ko cut; SHA-256 as published)"
[ "$DATA_ONLY" = 1 ] && exit 0

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || bash scripts/setup.sh
mkdir -p .gpu/whl

# 2. wheels: the image has torch, transformers, pandas, typer, rich, ... but not these
#    (/work/.library/env or the device README lists its packages)
rm -f .gpu/whl/*.whl
for pkg in pydantic pydantic_core annotated_types typing_inspection typing_extensions; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$pkg")
  "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/whl "$pkg==$version" 2>&1 | grep -v '^WARNING' || true
done
ls .gpu/whl

# 3. bundle
MODEL_ARGS=()
read -ra GLOBS <<< "${BUNDLE_MODELS:-}"  # read -a does not expand the globs
for g in "${GLOBS[@]}"; do MODEL_ARGS+=(--models "$g"); done
XSTILTS_DATA_DIR=$DATA "$(dirname "$PY")/xstilts" bundle "$STUDY" -o .gpu/bundle.tar.xz \
  --encoders compact "${MODEL_ARGS[@]}"

# 4. run list
XSTILTS_DATA_DIR=$DATA "$PY" scripts/gpu/make_tiers.py "$STUDY" \
  --done docs/results/pawsx-scaling/results.csv "${TIERS_ARGS[@]}" > .gpu/tiers.txt
head -n 1 .gpu/tiers.txt

# 5. carry
"$PY" scripts/gpu/carry_size.py .gpu/bundle.tar.xz .gpu/whl .gpu/tiers.txt
