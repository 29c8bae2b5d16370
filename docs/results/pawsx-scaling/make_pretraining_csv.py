"""Write pretraining.csv here (the format `xstilts results --collect` writes, docs/file-formats.md)
for the scratch rungs the published runs rest on: GPU call 3's pretraining of scratch-1m and
scratch-2m (the call 3/4 runs used those encoders), from the logs and provenance that call brought
back (`gpu-call-3/logs/pretrain-scratch-*.csv`, `provenance-scratch-*.json`). The store itself
stayed on the GPU machine, so the rows are assembled from those files; nothing is recomputed but
the context-free reference `unigram_eval_loss`, which these rungs predate: it is computed from the
same corpus (set XSTILTS_DATA_DIR to the data the GPU bundle was made from; the stage key of a
CPU pretraining of scratch-1m on it equals the GPU's, cpu-checks/README.md section 4).

    XSTILTS_DATA_DIR=<bundle data> python docs/results/pawsx-scaling/make_pretraining_csv.py
"""

import json
import os
from pathlib import Path

import pandas as pd

from xstilts.models import pretrain
from xstilts.models.encoder_dir import source_record
from xstilts.results import PRETRAINING_COLUMNS

HERE = Path(__file__).resolve().parent
LOGS = HERE / "gpu-call-3" / "logs"
LADDER = "from-scratch MLM family"

frames = []
for model in ("scratch-1m", "scratch-2m"):
    provenance = json.loads((LOGS / f"provenance-{model}.json").read_text(encoding="utf-8"))
    record = source_record(provenance, "pretraining")
    max_lines = record["fingerprint"].get("max_lines")
    reference, _ = pretrain.unigram_reference(model, os.environ["XSTILTS_DATA_DIR"], max_lines)
    frame = pd.read_csv(LOGS / f"pretrain-{model}.csv")
    frame.insert(0, "model", model)
    frame.insert(0, "ladder", LADDER)
    frame["unigram_eval_loss"] = reference
    frame["device"] = record["pretraining"]["device"]
    frames.append(frame.reindex(columns=PRETRAINING_COLUMNS))
    print(model, "reference", reference, "final eval loss", frame["eval_loss"].dropna().iloc[-1])
pd.concat(frames).to_csv(HERE / "pretraining.csv", index=False)
