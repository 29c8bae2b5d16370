"""Write pretraining.csv here (the format `xstilts results --collect` writes, docs/file-formats.md)
for the scratch rungs the published runs rest on: GPU call 3's pretraining of scratch-1m and
scratch-2m (the call 3/4 runs used those encoders), call 5's of scratch-4m (the call 5/6 runs) and
call 9's of scratch-8m (all its runs; call 5's 8m encoder was not kept),
from the logs and provenance those calls brought back (`gpu-call-N/logs/pretrain-scratch-*.csv`,
`provenance-scratch-*.json`). The store itself stayed on the GPU machine, so the rows are
assembled from those files; nothing is recomputed but the context-free reference
`unigram_eval_loss` where the provenance lacks it (call 3's rungs predate it): it is computed from
the same corpus (set XSTILTS_DATA_DIR to the data the GPU bundle was made from; the stage key of a
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
# each rung, and the call whose pretraining its published runs used
LOGS = {
    "scratch-1m": HERE / "gpu-call-3" / "logs",
    "scratch-2m": HERE / "gpu-call-3" / "logs",
    "scratch-4m": HERE / "gpu-call-5" / "logs",
    "scratch-8m": HERE / "gpu-call-9" / "logs",
}
LADDER = "from-scratch MLM family"

frames = []
for model, logs in LOGS.items():
    provenance = json.loads((logs / f"provenance-{model}.json").read_text(encoding="utf-8"))
    record = source_record(provenance, "pretraining")
    reference = record["pretraining"].get("unigram_eval_loss")
    if reference is None:
        max_lines = record["fingerprint"].get("max_lines")
        data_dir = os.environ["XSTILTS_DATA_DIR"]
        reference, _ = pretrain.unigram_reference(model, data_dir, max_lines)
    frame = pd.read_csv(logs / f"pretrain-{model}.csv")
    frame.insert(0, "model", model)
    frame.insert(0, "ladder", LADDER)
    frame["unigram_eval_loss"] = reference
    frame["device"] = record["pretraining"]["device"]
    frames.append(frame.reindex(columns=PRETRAINING_COLUMNS))
    print(model, "reference", reference, "final eval loss", frame["eval_loss"].dropna().iloc[-1])
pd.concat(frames).to_csv(HERE / "pretraining.csv", index=False)
