#!/usr/bin/env python
"""Probe what intermediate training did to an encoder's sentence-pair representation, before any
PAWS fine-tuning: the first-token vector the PAWS classification head reads, and the mean over
tokens for comparison, on English PAWS-X pairs encoded exactly as the target phase encodes them.

    python scripts/probe_encoders.py --pawsx ../shared/data/pawsx \\
        none=runs/x/stages/encoder/encoder-…/encoder \\
        ud_upos=runs/x/stages/intermediate/intermediate-…/encoder  --out probe.csv

Per encoder and pooling (`first` token, `mean` of tokens):
- `mean_cosine`: mean cosine similarity between the vectors of different pairs (1.0: every pair
  looks the same to the head; anisotropy, Ethayarajh 2019);
- `varying_share`: share of the vectors' mean squared norm that varies between pairs
  (trace of the covariance / mean squared norm);
- `probe_dev_acc`: a ridge-regularised linear probe (closed form, standardised features) fitted
  on `--train-pairs` pairs of the English training file and scored on English dev: how much of
  the PAWS label a linear head could read from the frozen vectors.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import scipy.linalg
import torch

from xstilts.batching import collate, inference_order
from xstilts.data.pawsx import pawsx_split_path, read_pawsx_tsv
from xstilts.heads import load_encoder
from xstilts.pipeline import _tokenizer
from xstilts.tasks.registry import get_task

FIELDS = ("encoder", "pooling", "n_dev", "mean_cosine", "varying_share", "probe_dev_acc")


@torch.no_grad()
def pair_vectors(
    encoder_dir: Path, pairs: list, batch_size: int = 64, max_length: int = 128
) -> dict[str, np.ndarray]:
    """First-token and mean-of-tokens last-layer vectors of each PAWS pair (n × hidden each)."""
    tokenizer = _tokenizer(encoder_dir)
    model = load_encoder(encoder_dir, 0.0).eval()
    data = get_task("pawsx").encode(pairs, tokenizer, max_length)
    first = np.zeros((len(data), model.config.hidden_size), dtype=np.float32)
    mean = np.zeros_like(first)
    for indices in inference_order(data.lengths, batch_size):
        batch = collate(data, indices, tokenizer.pad_token_id)
        mask = batch["attention_mask"]
        hidden = model(input_ids=batch["input_ids"], attention_mask=mask).last_hidden_state.float()
        first[indices] = hidden[:, 0].numpy()
        m = mask.unsqueeze(-1).float()
        mean[indices] = ((hidden * m).sum(1) / m.sum(1)).numpy()
    return {"first": first, "mean": mean}


def mean_cosine(x: np.ndarray) -> float:
    """Mean cosine similarity over all pairs of different rows."""
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    gram = unit @ unit.T
    n = len(x)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def varying_share(x: np.ndarray) -> float:
    """Trace of the covariance over the mean squared norm: 0 when every row is the same vector."""
    return float(x.var(axis=0).sum() / np.mean((x**2).sum(axis=1)))


def ridge_probe_accuracy(
    train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, test_y: np.ndarray, lam: float
) -> float:
    """Ridge classifier on standardised features (targets ±1), accuracy on the test rows."""
    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    a, b = (train_x - mu) / sd, (test_x - mu) / sd
    a1 = np.hstack([a, np.ones((len(a), 1))])
    reg = lam * np.eye(a1.shape[1])
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    w = scipy.linalg.solve(a1.T @ a1 + reg, a1.T @ (2.0 * train_y - 1.0), assume_a="pos")
    pred = (np.hstack([b, np.ones((len(b), 1))]) @ w) > 0
    return float(np.mean(pred == test_y.astype(bool)))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("encoders", nargs="+", help="LABEL=ENCODER_DIR (an HF encoder directory)")
    ap.add_argument("--pawsx", type=Path, required=True, help="the PAWS-X root (x-final layout)")
    ap.add_argument("--train-file", type=Path, help="English training TSV (default: en train)")
    ap.add_argument("--train-pairs", type=int, default=2000)
    ap.add_argument("--dev-pairs", type=int, default=1000)
    ap.add_argument("--ridge", type=float, default=10.0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    train_file = args.train_file or pawsx_split_path(args.pawsx, "en", "train")
    train = read_pawsx_tsv(train_file).examples[: args.train_pairs]
    dev = read_pawsx_tsv(pawsx_split_path(args.pawsx, "en", "dev")).examples[: args.dev_pairs]
    train_y = np.array([ex.label for ex in train])
    dev_y = np.array([ex.label for ex in dev])
    rows = []
    for spec in args.encoders:
        label, _, path = spec.partition("=")
        if not path:
            ap.error(f"{spec!r}: expected LABEL=ENCODER_DIR")
        tr, dv = pair_vectors(Path(path), train), pair_vectors(Path(path), dev)
        for pooling in ("first", "mean"):
            row = {
                "encoder": label,
                "pooling": pooling,
                "n_dev": len(dev),
                "mean_cosine": mean_cosine(dv[pooling]),
                "varying_share": varying_share(dv[pooling]),
                "probe_dev_acc": ridge_probe_accuracy(
                    tr[pooling], train_y, dv[pooling], dev_y, args.ridge
                ),
            }
            rows.append(row)
            print(
                f"{label:>14} {pooling:>5}: cos {row['mean_cosine']:.3f}  varying "
                f"{row['varying_share']:.3f}  probe {row['probe_dev_acc']:.3f}",
                flush=True,
            )
    if args.out:
        with args.out.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
