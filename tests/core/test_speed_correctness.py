"""The speed-ups change how fast, not what is computed: length bucketing still shows every example
once per epoch, length-sorted inference gives each example the logits of a plain unpadded forward
pass in dataset order, the fused AdamW step equals the foreach one bit for bit, and a
vocabulary-trimmed encoder gives the same logits (and trains the same) as the full one."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from xstilts import train as train_module
from xstilts.batching import EncodedDataset, TaskMix
from xstilts.data.records import PairExample
from xstilts.evaluate import predict_logits
from xstilts.heads import EncoderWithHead, load_encoder
from xstilts.study import PhaseHParams
from xstilts.tasks.registry import get_task
from xstilts.train import make_optimizer, train_model


def tiny_encoder(vocab: int = 60, seed: int = 0) -> BertModel:
    torch.manual_seed(seed)
    cfg = BertConfig(
        vocab_size=vocab, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, pad_token_id=1,
    )  # fmt: skip
    return BertModel(cfg, add_pooling_layer=False)


def varied_dataset(head: str = "classification", n: int = 37, seed: int = 0) -> EncodedDataset:
    rng = np.random.default_rng(seed)
    ids, labels = [], []
    for i in range(n):
        body = rng.integers(5, 60, size=int(rng.integers(1, 30)))
        seq = np.concatenate([[0], body, [2]]).astype(np.int32)
        ids.append(seq)
        if head == "tagging":
            labels.append(rng.integers(0, 3, size=len(seq)))
        else:
            labels.append(i % 2)
    return EncodedDataset(head, ids, labels, [str(i) for i in range(n)])


# -- bucketing ----------------------------------------------------------------------------------
def test_bucketed_epochs_show_every_example_once_and_reduce_padding() -> None:
    data = varied_dataset(n=203)
    mix = TaskMix({"t": data})
    lengths = data.lengths
    orders = []
    for epoch in range(4):
        batches = mix.epoch_batches(8, seed=3, epoch=epoch)
        flat = np.concatenate([b for _, b in batches])
        assert sorted(flat.tolist()) == list(range(len(data)))
        assert all(task == "t" and 1 <= len(b) <= 8 for task, b in batches)
        orders.append(flat)
        padded = sum(len(b) * lengths[b].max() for _, b in batches)
        perm = np.random.default_rng(epoch).permutation(len(data))
        unsorted = sum(len(b) * lengths[b].max() for b in np.array_split(perm, len(batches)))
        assert padded < 0.8 * unsorted
    assert not np.array_equal(orders[0], orders[1])


# -- length-sorted inference --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("head", "pooling"),
    [("classification", "first"), ("classification", "mean"), ("tagging", "first")],
)
def test_predict_logits_equals_plain_unpadded_forward_in_dataset_order(
    head: str, pooling: str
) -> None:
    """Also: mean pooling over a padded, length-sorted batch sees the real tokens only."""
    data = varied_dataset(head)
    model = EncoderWithHead(tiny_encoder(), {"t": (head, 3)}, 0.1, pooling)  # type: ignore[arg-type]
    fast = predict_logits(model, data, batch_size=8, pad_id=1, precision="fp32")
    assert len(fast) == len(data)
    model.eval()
    with torch.no_grad():
        for i, ids in enumerate(data.input_ids):
            one = torch.from_numpy(ids.astype(np.int64))[None]
            _, logits = model({"input_ids": one, "attention_mask": torch.ones_like(one)}, "t")
            np.testing.assert_allclose(fast[i], logits[0].numpy(), rtol=0, atol=2e-5)


def test_predict_logits_bf16_is_close_to_fp32() -> None:
    data = varied_dataset()
    model = EncoderWithHead(tiny_encoder(), {"t": ("classification", 2)}, 0.1)
    a = np.stack(predict_logits(model, data, batch_size=8, pad_id=1, precision="fp32"))
    b = np.stack(predict_logits(model, data, batch_size=8, pad_id=1, precision="bf16"))
    np.testing.assert_allclose(a, b, rtol=0, atol=0.1)


# -- fused AdamW --------------------------------------------------------------------------------
def test_make_optimizer_is_fused_and_matches_foreach() -> None:
    """Same AdamW, one pass per parameter: it may round the last bit differently, no more."""
    model = EncoderWithHead(tiny_encoder(), {"t": ("classification", 2)}, 0.1)
    twin = copy.deepcopy(model)
    hp = PhaseHParams(lr=1e-2, weight_decay=0.01)
    fused = make_optimizer(model, hp)
    assert fused.defaults["fused"]
    foreach = torch.optim.AdamW(_same_groups(twin, hp), lr=hp.lr, foreach=True)
    gen = torch.Generator().manual_seed(0)
    for step in range(5):
        for a, b in zip(model.parameters(), twin.parameters(), strict=True):
            grad = torch.randn(a.shape, generator=gen) * 10.0 ** (-step)
            a.grad, b.grad = grad.clone(), grad.clone()
        fused.step()
        foreach.step()
    for (name, a), b in zip(model.named_parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)


def _same_groups(model: torch.nn.Module, hp: PhaseHParams) -> list[dict]:
    """make_optimizer's grouping (decay / no decay) for `model`."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        (no_decay if param.ndim < 2 or "LayerNorm" in name else decay).append(param)
    return [
        {"params": decay, "weight_decay": hp.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


@pytest.mark.parametrize(("precision", "atol"), [("fp32", 2e-6), ("bf16", 1e-3)])
def test_train_model_fused_matches_foreach_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, precision: str, atol: float
) -> None:
    """A whole run (10 steps, lr 5e-3) with the fused optimizer against the foreach one: fp32
    weights agree to rounding; in bf16 the last-bit differences pass through bf16 rounding."""
    data = TaskMix({"t": varied_dataset(n=40)})
    hp = PhaseHParams(lr=5e-3, epochs=2, batch_size=8, precision=precision, checkpoint_every=3)
    fused_model = EncoderWithHead(tiny_encoder(), {"t": ("classification", 2)}, 0.1)
    foreach_model = copy.deepcopy(fused_model)
    train_model(fused_model, data, hp, 1, tmp_path / "fused", pad_id=1)

    def foreach_optimizer(model: torch.nn.Module, hp: PhaseHParams) -> torch.optim.AdamW:
        return torch.optim.AdamW(_same_groups(model, hp), lr=hp.lr, foreach=True)

    monkeypatch.setattr(train_module, "make_optimizer", foreach_optimizer)
    train_model(foreach_model, data, hp, 1, tmp_path / "foreach", pad_id=1)
    for (name, a), b in zip(
        fused_model.state_dict().items(), foreach_model.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=atol, msg=name)


# -- vocabulary trimming ------------------------------------------------------------------------
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")


def unigram_encoder_dir(path: Path) -> Path:
    """A tiny BertModel directory with an XLM-R-style Unigram tokenizer over letters a-h."""
    rng = np.random.default_rng(0)
    letters = "abcdefgh"
    pieces = {"▁", *letters}
    while len(pieces) < 70:
        piece = "".join(rng.choice(list(letters), size=int(rng.integers(2, 4))))
        pieces.add(("▁" if rng.random() < 0.5 else "") + piece)
    scored = [(p, -round(float(rng.uniform(0.5, 14.0)), 3)) for p in sorted(pieces)]
    vocab = [(s, 0.0) for s in SPECIALS] + scored + [("<mask>", 0.0)]
    backend = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    backend.normalizer = normalizers.Sequence([normalizers.Replace(Regex(" {2,}"), " ")])
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    backend.add_special_tokens([*SPECIALS, "<mask>"])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
        unk_token="<unk>", mask_token="<mask>",
    )  # fmt: skip
    tiny_encoder(len(vocab)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def pair_examples(n: int, seed: int) -> list[PairExample]:
    rng = np.random.default_rng(seed)

    def text() -> str:
        words = int(rng.integers(1, 6))
        return " ".join("".join(rng.choice(list("abcdef"), size=int(rng.integers(1, 6))))
                        for _ in range(words))  # fmt: skip

    return [PairExample(id=f"p{i}", text_a=text(), text_b=text(), label=i % 2) for i in range(n)]


def test_trimmed_encoder_gives_the_same_logits_and_trains_the_same(tmp_path: Path) -> None:
    trim = pytest.importorskip("xstilts.models.trim")
    source = unigram_encoder_dir(tmp_path / "full")
    train_ex, dev_ex = pair_examples(48, 1), pair_examples(20, 2)
    texts = [t for ex in (*train_ex, *dev_ex) for t in (ex.text_a, ex.text_b)]
    trim.trim_vocabulary(source, texts, tmp_path / "small")
    small = tmp_path / "small"
    new_to_old = trim.read_trim_map(small)
    assert len(new_to_old) < len(AutoTokenizer.from_pretrained(source))

    pawsx = get_task("pawsx")
    models_, devs, trains, pads = [], [], [], []
    for directory in (source, small):
        tokenizer = AutoTokenizer.from_pretrained(directory)
        trains.append(pawsx.encode(train_ex, tokenizer, 64))
        devs.append(pawsx.encode(dev_ex, tokenizer, 64))
        pads.append(tokenizer.pad_token_id)
        encoder = load_encoder(directory, 0.1)
        torch.manual_seed(0)  # same head whatever loading consumed
        models_.append(EncoderWithHead(encoder, {"pawsx": ("classification", 2)}, 0.1))
    for full_ids, small_ids in zip(devs[0].input_ids, devs[1].input_ids, strict=True):
        assert np.asarray(new_to_old)[small_ids].tolist() == full_ids.tolist()

    def logits(i: int) -> np.ndarray:
        return np.stack(
            predict_logits(models_[i], devs[i], batch_size=8, pad_id=pads[i], precision="fp32")
        )

    np.testing.assert_array_equal(logits(0), logits(1))
    hp = PhaseHParams(lr=1e-2, epochs=2, batch_size=8, precision="fp32", weight_decay=0.01)
    for i in (0, 1):
        train_model(models_[i], TaskMix({"pawsx": trains[i]}), hp, 5, tmp_path / f"w{i}",
                    pad_id=pads[i])  # fmt: skip
    np.testing.assert_allclose(logits(0), logits(1), rtol=0, atol=1e-5)
    full_rows = models_[0].encoder.get_input_embeddings().weight.detach()[new_to_old]
    small_rows = models_[1].encoder.get_input_embeddings().weight.detach()
    torch.testing.assert_close(small_rows, full_rows, rtol=0, atol=1e-6)
