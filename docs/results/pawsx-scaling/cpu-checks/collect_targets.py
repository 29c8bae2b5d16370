"""Collect the CPU checks' target stages into target.csv (run from the repository root with the
project's venv: `python docs/results/pawsx-scaling/cpu-checks/collect_targets.py OUT.csv`): which
settings made each stage is found by planning the study with those settings (the stage key must
match), not remembered. The store and data paths are those of the development machine."""

import csv
import json
import os
import sys
from pathlib import Path

from xstilts.plan import build_plan
from xstilts.study import load_study

STUDY = "studies/pawsx-scaling.toml"
CHECKS = (
    [  # (store, data dir, run id, overrides)
        ("/tmp/colaexp/base", "/work/shared/data", "e5-small-L12__none__s1", ["target.lr=2e-5"]),
        (
            "/tmp/colaexp/base",
            "/work/shared/data",
            "e5-small-L12__none__s1",
            ["target.pooling=mean"],
        ),
        ("/tmp/colaexp/base", "/work/shared/data", "e5-small-L12__ud_upos__s1", []),
        ("/tmp/colaexp/base", "/work/shared/data", "e5-small-L12__ud_upos__s1", ["target.lr=2e-5"]),
        (
            "/tmp/colaexp/base",
            "/work/shared/data",
            "e5-small-L12__ud_upos__s1",
            ["target.pooling=mean"],
        ),
    ]
    + [
        ("/work/scratch-cpu/runs", "/work/gpu-data", "scratch-1m__none__s1", o)
        for o in (
            [],
            ["target.lr=3e-4"],
            ["target.lr=1e-3"],
            ["target.lr=1e-3", "target.pooling=mean"],
            ["target.lr=1e-3", "target.epochs=10"],
        )
    ]
    + [
        (
            "/work/scratch-cpu/e5runs",
            "/work/shared/data",
            f"e5-small-L{k}__none__s1",
            ["target.epochs=10"],
        )
        for k in (6, 9)
    ]
    + [  # section 6: the study's 3 epochs, its warm-up and a longer one
        ("/work/scratch-cpu/e5runs", "/work/shared/data", f"e5-small-L9__none__s{seed}", o)
        for seed, o in (
            (1, []),
            (1, ["target.warmup_ratio=0.3"]),
            (3, ["target.warmup_ratio=0.3"]),
            (3, []),
        )
    ]
    + [  # section 6, second session: seeds 2 and 4 (4 is not a study seed: the seed list is
        # widened, which changes no stage key)
        (
            "/work/scratch-cpu/e5runs",
            "/work/shared/data",
            f"e5-small-L9__none__s{seed}",
            ["study.seeds=[1,2,3,4,5]", *o],
        )
        for seed in (2, 4)
        for o in ([], ["target.warmup_ratio=0.3"])
    ]
    + [
        (
            "/tmp/colaexp/base",
            "/work/shared/data",
            "e5-small-L12__ud_upos__s1",
            ["target.warmup_ratio=0.3"],
        )
    ]
)
rows = []
for store, data, run_id, overrides in CHECKS:
    os.environ["XSTILTS_DATA_DIR"] = data
    study = load_study(STUDY, overrides)
    run = {r.run_id: r for r in build_plan(study).runs}[run_id]
    d = Path(store) / "stages" / "target" / run.target_key / "summary.json"
    if not d.exists():
        print("not made:", run_id, overrides)
        continue
    s = json.loads(d.read_text())
    t = s["training"]
    rows.append(
        {
            "run": run_id,
            "model": run.model.name,
            "intermediate": run.condition.name,
            "target_lr": study.target.lr,
            "target_epochs": study.target.epochs,
            "target_warmup_ratio": study.target.warmup_ratio,
            "pooling": study.target.pooling,
            "steps": t["steps"],
            "en_dev_by_checkpoint": " ".join(f"{h['metric'] * 100:.2f}" for h in t["history"]),
            "selected_step": s["selected_step"],
            "en_dev_selected": round(s["en_dev_accuracy"] * 100, 2),
            "train_seconds": round(t["train_seconds"], 1),
            "stage": run.target_key,
        }
    )
with open(sys.argv[1], "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
for r in rows:
    print(r)
