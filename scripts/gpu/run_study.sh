#!/usr/bin/env bash
# Run studies/pawsx-scaling.toml on one GPU machine with no internet, from an offline bundle made
# by `xstilts bundle --encoders compact`, inside a wall-clock limit, and pack what it produced.
#
#   bash scripts/gpu/run_study.sh BUNDLE [LIMIT_SECONDS] [OUT_DIR]
#
# Schedule (many worker processes share the one GPU and the store; leases keep each stage to one):
#   1. GPU throughput section of scripts/benchmark_training.py (XLM-R-base shape), alone;
#   2. the bundle is opened once and the e5-small encoders adopted;
#   3. at once: 4 workers pretrain the from-scratch family (--stages encoder), 3 processes run the
#      learning-rate sweep (e5-small-L12, `none`, seed 1, target lr 2e-5 / 5e-5 / 1e-4, each in
#      its own output dir), and 4 workers build e5 intermediate checkpoints (which do not depend
#      on the target learning rate);
#   4. the lr with the best ENGLISH DEV accuracy is chosen and $WORKERS full workers run the study
#      (or, with TIERS=FILE and WORKER_GROUPS, groups of workers work through run lists in order);
#   5. at the limit, workers are stopped; finished runs are collected (results.csv,
#      intermediate.csv, predictions/) and packed into OUT_DIR with logs and stage timings.
# Python packages missing on the machine travel as wheels in .gpu/whl (installed to /tmp/site).
set -uo pipefail
BUNDLE=${1:?usage: run_study.sh BUNDLE [LIMIT_SECONDS] [OUT_DIR]}
LIMIT=${2:-480}
OUTDIR=${3:-${OUT:-out}}
WORKERS=${WORKERS:-12}  # 12 ran cleanly on an H200; 23 processes (with pretraining) did not
STUDY=${STUDY:-studies/pawsx-scaling.toml}
SWEEP_LRS=${SWEEP_LRS-"2e-5 5e-5 1e-4"}  # SWEEP_LRS="" skips the sweep (TARGET_LR)
SWEEP_RUN=${SWEEP_RUN:-e5-small-L12__none__s1}
R=${RUNS_DIR:-runs/pawsx-scaling}  # the study's output_dir, relative to the repository root
T0=$(date +%s)
LOGS=${LOGS:-/tmp/xstilts-gpu-logs}
mkdir -p "$OUTDIR" "$LOGS"
rm -f "$LOGS/stop"
el() { echo $(($(date +%s) - T0)); }
say() { echo "[$(el)s] $*" | tee -a $LOGS/schedule.log; }

WHEELS=${WHEELS:-.gpu/whl}
if [ -d "$WHEELS" ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site "$WHEELS"/*.whl || exit 1
  export PYTHONPATH=/tmp/site
fi
export PYTHONPATH=$PWD/src${PYTHONPATH:+:$PYTHONPATH}
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false
export XSTILTS_CACHE_DIR=/tmp/xstilts-cache
# many processes share one GPU: let each one's allocator give back what it no longer uses
export PYTORCH_CUDA_ALLOC_CONF=${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}
XS=(python3 -c 'import sys; from xstilts.cli import app; sys.argv[0] = "xstilts"; app()')
xs() { "${XS[@]}" "$@"; }  # background workers call "${XS[@]}" directly: $! is then their pid

say "start: $(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader)"
python3 -c 'import torch, transformers; print("torch", torch.__version__, "transformers",
transformers.__version__, "cuda", torch.cuda.is_available())' | tee -a $LOGS/schedule.log
nvidia-smi --query-gpu=timestamp,utilization.gpu,memory.used --format=csv -l 5 \
  > $LOGS/gpu_util.csv 2>&1 &
SMI=$!

# 1. GPU throughput (alone on the GPU); BENCH=0 skips it
[ "${BENCH:-1}" = 1 ] && for shape in "32 128" "256 128"; do
  set -- $shape
  timeout 60 python3 scripts/benchmark_training.py --gpu-only --gpu-batch "$1" --gpu-seq-len "$2" \
    --out "$LOGS/gpu_bench_b$1_t$2.json" > "$LOGS/gpu_bench_b$1_t$2.log" 2>&1
  say "gpu bench batch $1 x $2: rc=$? $(grep -o 'MFU.*' "$LOGS/gpu_bench_b$1_t$2.log" | head -1)"
done

# 2. open the bundle once, adopt the bundled encoders of ADOPT_ONLY (a glob on run ids; empty: a
#    bundle without e5 encoders, BUNDLE_MODELS of prepare.sh, is only opened, by `status`)
ADOPT_ONLY=${ADOPT_ONLY-'e5-*'}
if [ -n "$ADOPT_ONLY" ]; then
  xs run "$STUDY" --bundle "$BUNDLE" --stages encoder --only "$ADOPT_ONLY" --no-report \
    > $LOGS/adopt.log 2>&1 || { say "adopt failed"; tail -30 $LOGS/adopt.log; }
else
  xs status "$STUDY" --bundle "$BUNDLE" > $LOGS/adopt.log 2>&1 \
    || { say "bundle open failed"; tail -30 $LOGS/adopt.log; }
fi
say "bundle opened: $(grep -o 'encoders from the bundle: [0-9]*' $LOGS/adopt.log)"


wait_until_done() {  # wait_until_done POLL UNTIL PID...: until none of PIDs lives or UNTIL
  local poll=$1 until=$2 p  # seconds after the start (capped at the limit); sets $alive
  shift 2
  [ "$until" -gt "$LIMIT" ] && until=$LIMIT
  while :; do
    alive=0
    for p in "$@"; do kill -0 "$p" 2>/dev/null && alive=$((alive + 1)); done
    [ "$alive" -eq 0 ] || [ "$(el)" -ge "$until" ] && return
    sleep "$poll"
  done
}

# 3. pretraining, sweep and e5 intermediate checkpoints, side by side
pids=()
pretrain=()
for i in $(seq "${PRETRAIN_WORKERS:-4}"); do
  "${XS[@]}" run "$STUDY" --bundle "$BUNDLE" --stages encoder --only "${PRETRAIN_ONLY:-scratch-*}" \
    --no-report > "$LOGS/pretrain_$i.log" 2>&1 &
  pretrain+=($!)
  pids+=($!)
done
# PRETRAIN_ALONE=1: nothing else starts until the scratch family is pretrained (or the limit, or
# PRETRAIN_ALONE_UNTIL seconds after the start, is reached; pretraining goes on after that):
# fine-tuning processes beside them took most of the GPU in session B, and the stopped
# pretraining is what a capped call loses most (docs/results/pawsx-scaling/README.md).
# PRETRAIN_ONLY (default 'scratch-*') picks the rungs these processes pretrain.
if [ "${PRETRAIN_ALONE:-0}" = 1 ] && [ ${#pretrain[@]} -gt 0 ]; then
  wait_until_done 2 "${PRETRAIN_ALONE_UNTIL:-$LIMIT}" "${pretrain[@]}"
  say "pretraining alone until now: $alive of ${#pretrain[@]} processes still pretraining"
fi
sweep=()
for lr in $SWEEP_LRS; do
  XSTILTS_OUTPUT_DIR=$PWD/runs/sweep-lr$lr timeout 200 "${XS[@]}" run "$STUDY" --bundle "$BUNDLE" \
    --set "target.lr=$lr" --only "$SWEEP_RUN" --no-report > "$LOGS/sweep_$lr.log" 2>&1 &
  sweep+=($!)
done
for i in $(seq "${INTER_WORKERS:-4}"); do
  "${XS[@]}" run "$STUDY" --bundle "$BUNDLE" --stages encoder,intermediate --only 'e5-*' --no-report \
    > "$LOGS/intermediate_$i.log" 2>&1 &
  pids+=($!)
done
[ ${#sweep[@]} -gt 0 ] && wait "${sweep[@]}"
say "sweep done"
LR=$(python3 - "$SWEEP_LRS" "${TARGET_LR:-5e-5}" <<'EOF'
import sys
import pandas as pd
best = None
for lr in sys.argv[1].split():
    try:
        r = pd.read_csv(f"runs/sweep-lr{lr}/results.csv")
    except FileNotFoundError:
        continue
    acc = r[(r["lang"] == "en") & (r["split"] == "dev")]["accuracy"]
    if len(acc):
        print(f"lr {lr}: English dev accuracy {acc.iloc[0]:.4f}", file=sys.stderr)
        if best is None or acc.iloc[0] > best[1]:  # ties keep the smaller lr (listed first)
            best = (lr, acc.iloc[0])
print(best[0] if best else sys.argv[2])
EOF
)
say "chosen target lr: $LR"
echo "$LR" > $LOGS/chosen_lr.txt

# 4. the study: $WORKERS workers on the whole plan (or on $ONLY), or, with TIERS=FILE, worker groups
#    WORKER_GROUPS="name:count ..." that each work through the FILE's lines for their group (or "all") in
#    order, one `xstilts run --only P...` per line: a line is "GROUP PATTERN [PATTERN ...]", and
#    "GROUP PATTERN ... -- ARG ..." adds ARGs to that run (after `--set target.lr=$LR`, so a
#    `--set target.lr=X` there wins: the target-phase checks of make_tiers.py --check)
worker() {  # worker GROUP INDEX: run the tier lines of GROUP, one after the other
  set -f  # patterns are run-id globs, not file names
  grep -v '^ *#' "$TIERS" | while read -r group rest; do
    [ -z "$group" ] && continue
    [ "$group" = "$1" ] || [ "$group" = all ] || continue
    [ -e "$LOGS/stop" ] && break
    local patterns=$rest extra=""
    case " $rest " in *" -- "*)
      patterns=${rest%%--*}
      extra=${rest#*--}
      ;;
    esac
    only=()
    for p in $patterns; do only+=(--only "$p"); done
    # shellcheck disable=SC2206  # extra holds options, split on spaces like the patterns
    args=($extra)
    echo "== tier: $group $rest" >&2
    "${XS[@]}" run "$STUDY" --bundle "$BUNDLE" --set "target.lr=$LR" --no-report "${only[@]}" \
      "${args[@]}"
  done
}
if [ -n "${TIERS:-}" ]; then
  for spec in ${WORKER_GROUPS:-all:$WORKERS}; do
    for i in $(seq "${spec#*:}"); do
      worker "${spec%%:*}" "$i" > "$LOGS/worker_${spec%%:*}_$i.log" 2>&1 &
      pids+=($!)
    done
  done
else
  for i in $(seq "$WORKERS"); do
    # shellcheck disable=SC2086  # ONLY holds --only options
    "${XS[@]}" run "$STUDY" --bundle "$BUNDLE" --set "target.lr=$LR" --no-report ${ONLY:-} \
      > "$LOGS/worker_$i.log" 2>&1 &
    pids+=($!)
  done
fi
wait_until_done 5 "$LIMIT" "${pids[@]}"
say "stopping: $alive workers still running"
touch "$LOGS/stop"  # tier loops start nothing new
for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null; done
signal_workers() {  # signal every xstilts process (tier workers run theirs as children)
  python3 - "$1" <<'EOF'
import os, signal, sys
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            if b"from xstilts.cli import app" in handle.read():
                os.kill(int(pid), getattr(signal, sys.argv[1]))
    except OSError:
        pass
EOF
}
signal_workers SIGINT
sleep 5
for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
signal_workers SIGKILL
kill "$SMI" 2>/dev/null

# 5. pack: first what needs no planning (stage table with summaries, encoder records, logs), so a
#    call that runs out of time still brings those back; then collect results and predictions
python3 - "$LOGS" "$R" <<'EOF'
import glob, sqlite3, sys
from pathlib import Path
import pandas as pd
for db in sorted(set(glob.glob("runs/*/store.sqlite")) | {f"{sys.argv[2]}/store.sqlite"}):
    if not Path(db).is_file():
        continue
    con = sqlite3.connect(db)
    name = Path(db).parent.name
    for table in ("stages", "events"):
        frame = pd.read_sql(f"select * from {table}", con)
        if "error" in frame:
            frame["error"] = frame["error"].fillna("").str.strip().str.split("\n").str[-1]
        frame.to_csv(f"{sys.argv[1]}/{name}.{table}.csv", index=False)
EOF
find "$R/stages/encoder" \( -name pretrain_log.csv -o -name xstilts_encoder.json \
  -o -name summary.json \) | tar czf "$OUTDIR/encoders.tgz" -T - 2>/dev/null
tar czf "$OUTDIR/logs.tgz" -C "$(dirname "$LOGS")" "$(basename "$LOGS")"
say "stage tables packed"
timeout "${COLLECT_TIMEOUT:-150}" "${XS[@]}" results "$STUDY" --bundle "$BUNDLE" --collect \
  --set "target.lr=$LR" > $LOGS/results.txt 2>&1
say "results collected: rc=$?"
timeout "${STATUS_TIMEOUT:-30}" "${XS[@]}" status "$STUDY" --bundle "$BUNDLE" --set "target.lr=$LR" \
  > $LOGS/status.txt 2>&1
ls runs/*/ > $LOGS/runs_ls.txt 2>&1
tar czf "$OUTDIR/results.tgz" $R/results.csv $R/intermediate.csv runs/sweep-*/results.csv \
  2>/dev/null
tar czf "$OUTDIR/logs.tgz" -C "$(dirname "$LOGS")" "$(basename "$LOGS")"
rm -f /tmp/predlist.*
ls $R/predictions 2>/dev/null | split -n r/4 - /tmp/predlist.
i=0
for f in /tmp/predlist.*; do
  i=$((i + 1))
  sed "s|^|$R/predictions/|" "$f" | tar czf "$OUTDIR/predictions_$i.tgz" -T -
done
say "packed: $(ls -la "$OUTDIR" | tail -n +2 | awk '{print $5, $9}' | tr '\n' ' ')"

# Optional: an add-on bundle of the finished encoders of EXPORT_MODELS (globs on rung names, e.g.
# 'scratch-*'), cut into 15 MiB parts under EXPORT_DIR on this machine. A call brings back at most
# 8 files of 16 MiB, so later calls on the still-warm machine fetch them 4 at a time:
#   bash scripts/gpu/fetch_export.sh K $OUT   (K = 0, 1, ...); then `xstilts adopt` here.
if [ -n "${EXPORT_MODELS:-}" ]; then
  EXPORT_DIR=${EXPORT_DIR:-/tmp/xstilts-export}
  rm -rf "$EXPORT_DIR" && mkdir -p "$EXPORT_DIR"
  read -ra PATTERNS <<< "$EXPORT_MODELS"  # read -a does not expand the globs
  MODEL_ARGS=()
  for p in "${PATTERNS[@]}"; do MODEL_ARGS+=(--models "$p"); done
  timeout "${EXPORT_TIMEOUT:-180}" "${XS[@]}" bundle "$STUDY" --bundle "$BUNDLE" --encoders-only \
    --encoders artifacts "${MODEL_ARGS[@]}" -o "$EXPORT_DIR/encoders.tar" > $LOGS/export.log 2>&1
  say "export: rc=$? $(tail -n 1 $LOGS/export.log)"
  if [ -f "$EXPORT_DIR/encoders.tar" ]; then
    (cd "$EXPORT_DIR" && sha256sum encoders.tar > encoders.tar.sha256 \
      && split -b 15M -d -a 2 encoders.tar encoders.tar.part- && rm encoders.tar)
    say "export parts: $(ls "$EXPORT_DIR" | grep -c part-) in $EXPORT_DIR"
    cp "$EXPORT_DIR/encoders.tar.sha256" "$OUTDIR/"
  fi
fi
