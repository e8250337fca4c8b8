"""Train the embedded default model: a small BERT encoder + CRF on MSRA train, from scratch.

The result is a ModelScope `transformer-crf` model dir, the same layout as
`damo/nlp_raner_named-entity-recognition_chinese-base-news`, so the one
loader in raner_pool serves it and the ModelScope pipeline can run it too.

    python training/train.py --out raner_pool/models/default

Runs on 2 CPU cores in under an hour with the defaults, reproducible with --seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from raner_pool.corpus import TaggedSentence, load_msra
from raner_pool.evaluation import score_spans
from raner_pool.modeldir import (
    MSRA_LABELS,
    SPECIAL_TOKENS,
    TRAINED_LENGTH_FILE,
    EncoderShape,
    new_crf_model,
    save_weights,
    write_model_dir,
)
from raner_pool.tagging import decode_spans

PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3


@dataclass
class TrainConfig:
    """Every knob of one training run; saved beside the weights as train_config.json."""

    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    dropout: float = 0.1
    min_char_count: int = 2
    epochs: int = 6
    tokens_per_batch: int = 1536
    learning_rate: float = 5e-4
    crf_learning_rate: float = 1e-2
    warmup_steps: int = 600
    weight_decay: float = 0.01
    dev_sentences: int = 1500
    max_minutes: float = 55.0
    seed: int = 20261123
    threads: int = 2


def build_vocab(sentences: list[TaggedSentence], min_count: int) -> list[str]:
    """Special tokens, then every character seen `min_count` times, lower-cased as BERT's tokenizer does."""
    counts = Counter(ch.lower() for s in sentences for ch in s.text if not ch.isspace())
    return [*SPECIAL_TOKENS, *sorted(ch for ch, n in counts.items() if n >= min_count)]


def encode(sentences: list[TaggedSentence], vocab: list[str]) -> list[tuple[list[int], list[int]]]:
    """(token ids, tag ids) per sentence, one token per character as the engine tokenises."""
    token_id = {tok: i for i, tok in enumerate(vocab)}
    label_id = {label: i for i, label in enumerate(MSRA_LABELS)}
    return [
        ([token_id.get(ch.lower(), UNK_ID) for ch in s.text], [label_id[t] for t in s.tags])
        for s in sentences
    ]


def make_batches(
    examples: list[tuple[list[int], list[int]]], tokens_per_batch: int, rng: random.Random
) -> list[list[int]]:
    """Indices grouped by similar length under a padded-token budget, batches in random order."""
    order = sorted(range(len(examples)), key=lambda i: (len(examples[i][0]), rng.random()))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        longest = len(examples[i][0]) + 2
        if current and longest * (len(current) + 1) > tokens_per_batch:
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    rng.shuffle(batches)
    return batches


def collate(examples: list[tuple[list[int], list[int]]]) -> tuple[torch.Tensor, ...]:
    """Pad a batch: [CLS] chars [SEP] ids, attention mask, and tags/mask aligned to the chars."""
    longest = max(len(ids) for ids, _ in examples)
    input_ids = torch.full((len(examples), longest + 2), PAD_ID, dtype=torch.long)
    attention = torch.zeros_like(input_ids)
    tags = torch.zeros((len(examples), longest), dtype=torch.long)
    char_mask = torch.zeros((len(examples), longest), dtype=torch.bool)
    for row, (ids, tag_ids) in enumerate(examples):
        n = len(ids)
        input_ids[row, : n + 2] = torch.tensor([CLS_ID, *ids, SEP_ID])
        attention[row, : n + 2] = 1
        tags[row, :n] = torch.tensor(tag_ids)
        char_mask[row, :n] = True
    return input_ids, attention, tags, char_mask


def emissions(model: torch.nn.Module, input_ids: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """Per-character tag scores: the encoder and the head's linear layer, [CLS]/[SEP] cut off."""
    hidden = model.encoder(input_ids=input_ids, attention_mask=attention).last_hidden_state
    return model.head.linear(hidden)[:, 1:-1]


@torch.no_grad()
def evaluate(model: torch.nn.Module, examples: list[tuple[list[int], list[int]]]) -> float:
    """Overall entity F1 of CRF-decoded predictions on `examples`."""
    model.eval()
    gold, predicted = [], []
    for start in range(0, len(examples), 64):
        chunk = examples[start : start + 64]
        input_ids, attention, _, char_mask = collate(chunk)
        scores = emissions(model, input_ids, attention)
        paths = model.head.crf.decode(scores, char_mask.byte()).squeeze(0)
        for row, (ids, tag_ids) in enumerate(chunk):
            tags_pred = [MSRA_LABELS[t] for t in paths[row, : len(ids)].tolist()]
            tags_gold = [MSRA_LABELS[t] for t in tag_ids]
            gold.append([(s.type, s.start, s.end) for s in decode_spans(tags_gold)])
            predicted.append([(s.type, s.start, s.end) for s in decode_spans(tags_pred)])
    model.train()
    return score_spans(gold, predicted)["ALL"].f1


def train(config: TrainConfig, out: Path) -> None:
    random.seed(config.seed)
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)

    sentences = load_msra("train")
    rng.shuffle(sentences)
    dev_sentences, train_sentences = sentences[: config.dev_sentences], sentences[config.dev_sentences :]
    vocab = build_vocab(train_sentences, config.min_char_count)
    shape = EncoderShape(config.layers, config.hidden, config.heads, config.intermediate, config.dropout)
    write_model_dir(out, vocab, MSRA_LABELS, shape)
    train_examples, dev_examples = encode(train_sentences, vocab), encode(dev_sentences, vocab)

    model = new_crf_model(out)
    model.train()
    crf_params = list(model.head.crf.parameters())
    crf_ids = {id(p) for p in crf_params}
    other_params = [p for p in model.parameters() if id(p) not in crf_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": other_params, "lr": config.learning_rate, "weight_decay": config.weight_decay},
            {"params": crf_params, "lr": config.crf_learning_rate, "weight_decay": 0.0},
        ]
    )
    steps_per_epoch = len(make_batches(train_examples, config.tokens_per_batch, random.Random(0)))
    total_steps = steps_per_epoch * config.epochs

    def lr_factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    print(
        f"vocab {len(vocab)}, params {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M, "
        f"{len(train_examples)} train / {len(dev_examples)} dev sentences, {steps_per_epoch} steps/epoch",
        flush=True,
    )
    began = time.monotonic()
    best_f1, step = -1.0, 0
    for epoch in range(config.epochs):
        for batch in make_batches(train_examples, config.tokens_per_batch, rng):
            input_ids, attention, tags, char_mask = collate([train_examples[i] for i in batch])
            loss = -model.head.crf(emissions(model, input_ids, attention), tags, char_mask, reduction="mean")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step += 1
            if step % 200 == 0:
                minutes = (time.monotonic() - began) / 60
                progress = f"epoch {epoch + 1} step {step}/{total_steps} loss {loss.item():.3f}"
                print(f"{progress} {minutes:.1f} min", flush=True)
            if (time.monotonic() - began) / 60 > config.max_minutes:
                break
        dev_f1 = evaluate(model, dev_examples)
        print(f"epoch {epoch + 1}: dev F1 {dev_f1:.4f}", flush=True)
        if dev_f1 > best_f1:
            best_f1 = dev_f1
            save_weights(model, out)
        if (time.monotonic() - began) / 60 > config.max_minutes:
            print(f"stopping: the {config.max_minutes}-minute budget is spent", flush=True)
            break
    summary = {**asdict(config), "best_dev_f1": round(best_f1, 4), "minutes": round((time.monotonic() - began) / 60, 1)}
    (out / "train_config.json").write_text(json.dumps(summary, indent=1))
    # positions past the longest training sentence were never learned: the engine windows texts to this length
    longest = max(len(ids) for ids, _ in train_examples)
    (out / TRAINED_LENGTH_FILE).write_text(json.dumps({"max_window_tokens": longest}))
    print(json.dumps(summary), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="model dir to write")
    for field, default in asdict(TrainConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    config = TrainConfig(**{f: getattr(args, f) for f in asdict(TrainConfig())})
    if args.out.exists():
        shutil.rmtree(args.out)
    train(config, args.out)


if __name__ == "__main__":
    main()
