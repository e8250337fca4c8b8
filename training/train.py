"""Train the embedded default model: a small BERT encoder + CRF on MSRA train.

The model is plain PyTorch (training/bert_crf.py: no ModelScope needed, `--device cuda` on a GPU);
the result is a ModelScope `transformer-crf` model dir, the same layout as
`damo/nlp_raner_named-entity-recognition_chinese-base-news`, so the one
loader in raner_pool serves it and the ModelScope pipeline can run it too.

    python training/train.py --run-dir artifacts/train/gen2 [--init-from DIR] [--out raner_pool/models/default]

A run lives in its --run-dir: checkpoint.pt (saved every epoch and every few minutes), history.jsonl (one line
per epoch: loss, dev F1, minutes) and model/ (the best epoch by dev F1, a complete model dir). Started again with
the same run dir, it resumes where it stopped, so a run may span many sittings of --max-minutes each; --out
receives the best model once every epoch is done. Reproducible with --seed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from raner_pool.corpus import TaggedSentence, load_msra
from raner_pool.evaluation import score_spans
from raner_pool.modeldir import (
    MSRA_LABELS,
    SPECIAL_TOKENS,
    TRAINED_LENGTH_FILE,
    EncoderShape,
    save_weights,
    write_model_dir,
)
from raner_pool.tagging import decode_spans
from training.augment import Lexicon, decorate, jieba_dictionary, joined_runs, replace_mentions
from training.bert_crf import BertCRF

PAD_ID, UNK_ID, CLS_ID, SEP_ID = 0, 1, 2, 3


@dataclass
class TrainConfig:
    """Every knob of one training run; saved with its checkpoint and beside the weights as train_config.json."""

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
    seed: int = 20261123
    init_from: str = ""  # a model dir whose weights start the run (characters matched by token)
    replace_prob: float = 0.0  # per name: swapped for another of its type (augment.replace_mentions)
    lexicon: str = "msra+jieba"  # names to swap in: "msra" (MSRA train's own) or "msra+jieba"
    join_prob: float = 0.0  # after each sentence: the text goes on with the next one (augment.joined_runs)
    decorate_prob: float = 0.0  # per sentence: a symbol put next to a name (augment.decorate)
    window: int = 100  # longest training text in characters; the engine windows served texts to it
    max_minutes: float = 55.0  # this sitting's budget; the run checkpoints and stops, and resumes when run again
    checkpoint_minutes: float = 10.0
    threads: int = 2
    device: str = "cpu"  # "cuda" where there is a GPU


def build_vocab(sentences: list[TaggedSentence], min_count: int) -> list[str]:
    """Special tokens, then every character seen `min_count` times, lower-cased as BERT's tokenizer does."""
    counts = Counter(ch.lower() for s in sentences for ch in s.text if not ch.isspace())
    return [*SPECIAL_TOKENS, *sorted(ch for ch, n in counts.items() if n >= min_count)]


def encode(sentences: list[TaggedSentence], vocab: list[str]) -> list[tuple[list[int], list[int]]]:
    """(token ids, tag ids) per sentence, one token per character as the engine tokenises."""
    token_id = {tok: i for i, tok in enumerate(vocab)}
    label_id = {label: i for i, label in enumerate(MSRA_LABELS)}
    return [([token_id.get(ch.lower(), UNK_ID) for ch in s.text], [label_id[t] for t in s.tags]) for s in sentences]


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


@torch.no_grad()
def evaluate(model: BertCRF, examples: list[tuple[list[int], list[int]]], device: torch.device) -> float:
    """Overall entity F1 of CRF-decoded predictions on `examples`."""
    model.eval()
    gold, predicted = [], []
    for start in range(0, len(examples), 64):
        chunk = examples[start : start + 64]
        input_ids, attention, _, char_mask = (t.to(device) for t in collate(chunk))
        paths = model.head.crf.decode(model.emissions(input_ids, attention), char_mask).cpu()
        for row, (ids, tag_ids) in enumerate(chunk):
            tags_pred = [MSRA_LABELS[t] for t in paths[row, : len(ids)].tolist()]
            tags_gold = [MSRA_LABELS[t] for t in tag_ids]
            gold.append([(s.type, s.start, s.end) for s in decode_spans(tags_gold)])
            predicted.append([(s.type, s.start, s.end) for s in decode_spans(tags_pred)])
    model.train()
    return score_spans(gold, predicted)["ALL"].f1


def split_train_dev(config: TrainConfig) -> tuple[list[TaggedSentence], list[TaggedSentence]]:
    """MSRA train without its held-out dev sentences (kept in corpus order, for joined runs), and the dev ones.

    The dev split is the first `dev_sentences` of a seeded shuffle (training/calibrate.py fits `prob` on it too).
    """
    sentences = load_msra("train")
    order = list(range(len(sentences)))
    random.Random(config.seed).shuffle(order)
    dev_ids = set(order[: config.dev_sentences])
    dev = [sentences[i] for i in order[: config.dev_sentences]]
    return [s for i, s in enumerate(sentences) if i not in dev_ids], dev


def epoch_examples(
    sentences: list[TaggedSentence], lexicon: Lexicon, config: TrainConfig, epoch: int
) -> list[TaggedSentence]:
    """One epoch's training texts: every sentence once, augmented and joined afresh, the same on resume."""
    rng = random.Random(f"{config.seed}/{epoch}")
    augmented = []
    for sentence in sentences:
        changed = decorate(replace_mentions(sentence, lexicon, config.replace_prob, rng), config.decorate_prob, rng)
        augmented.append(changed if len(changed.text) <= config.window else sentence)
    return joined_runs(augmented, config.join_prob, config.window, rng)


def load_initial_weights(model: BertCRF, init_from: Path, vocab: list[str]) -> None:
    """Start from another model dir's weights; its character embeddings are matched to `vocab` by token."""
    state = torch.load(init_from / "pytorch_model.bin", map_location="cpu")
    old_vocab = (init_from / "vocab.txt").read_text(encoding="utf-8").splitlines()
    key = next(k for k in state if k.endswith("word_embeddings.weight"))
    embeddings = model.state_dict()[key].clone()
    old_id = {tok: i for i, tok in enumerate(old_vocab)}
    for i, tok in enumerate(vocab):
        if tok in old_id:
            embeddings[i] = state[key][old_id[tok]].float()
    state[key] = embeddings
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})


def save_checkpoint(path: Path, **state: object) -> None:
    """Write the checkpoint whole or not at all (a stop mid-write leaves the previous one)."""
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def train(config: TrainConfig, run_dir: Path) -> Path:
    """Train (or resume) the run in `run_dir`; returns its best model dir."""
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    train_sentences, dev_sentences = split_train_dev(config)
    vocab = build_vocab(train_sentences, config.min_char_count)
    model_dir = run_dir / "model"
    shape = EncoderShape(config.layers, config.hidden, config.heads, config.intermediate, config.dropout)
    write_model_dir(model_dir, vocab, MSRA_LABELS, shape)
    dictionary = jieba_dictionary() if config.lexicon == "msra+jieba" else None
    lexicon = Lexicon.build(train_sentences, dictionary)
    dev_examples = encode(dev_sentences, vocab)

    torch.manual_seed(config.seed)
    model = BertCRF(len(vocab), len(MSRA_LABELS), shape)
    if config.init_from:
        load_initial_weights(model, Path(config.init_from), vocab)
    model.to(device).train()
    crf_params = list(model.head.crf.parameters())
    crf_ids = {id(p) for p in crf_params}
    other_params = [p for p in model.parameters() if id(p) not in crf_ids]
    optimizer = torch.optim.AdamW(
        [
            {"params": other_params, "lr": config.learning_rate, "weight_decay": config.weight_decay},
            {"params": crf_params, "lr": config.crf_learning_rate, "weight_decay": 0.0},
        ]
    )

    def epoch_batches(epoch: int) -> tuple[list[tuple[list[int], list[int]]], list[list[int]]]:
        examples = encode(epoch_examples(train_sentences, lexicon, config, epoch), vocab)
        batch_rng = random.Random(f"{config.seed}/{epoch}/batches")
        return examples, make_batches(examples, config.tokens_per_batch, batch_rng)

    prepared = {0: epoch_batches(0)}  # the schedule's length is the first epoch's; a fresh run then trains on it
    steps_per_epoch = len(prepared[0][1])
    total_steps = steps_per_epoch * config.epochs

    def lr_factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
        return max(0.0, 0.5 * (1 + math.cos(math.pi * progress)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    checkpoint_path = run_dir / "checkpoint.pt"
    epoch, batch_index, step, best_f1, minutes_before = 0, 0, 0, -1.0, 0.0
    if checkpoint_path.exists():
        saved = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
        changed = {k for k, v in saved["config"].items() if k not in RESUMABLE and getattr(config, k) != v}
        if changed:
            raise SystemExit(
                f"{run_dir} holds a run with other settings ({', '.join(sorted(changed))}): use another --run-dir"
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"])
        epoch, batch_index, step = saved["epoch"], saved["batch_index"], saved["step"]
        best_f1, minutes_before = saved["best_f1"], saved["minutes"]
        print(f"resuming {run_dir}: epoch {epoch + 1}, batch {batch_index}, step {step}", flush=True)
    print(
        f"vocab {len(vocab)}, params {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M, "
        f"{len(train_sentences)} train / {len(dev_examples)} dev sentences, ~{steps_per_epoch} steps/epoch, "
        f"lexicon {', '.join(f'{t} {len(n)}' for t, n in lexicon.names.items())}",
        flush=True,
    )
    began = time.monotonic()

    def minutes() -> float:
        return minutes_before + (time.monotonic() - began) / 60

    def checkpoint() -> None:
        save_checkpoint(
            checkpoint_path,
            config=asdict(config),
            model=model.state_dict(),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            torch_rng=torch.get_rng_state(),
            epoch=epoch,
            batch_index=batch_index,
            step=step,
            best_f1=best_f1,
            minutes=minutes(),
        )

    last_checkpoint = time.monotonic()
    while epoch < config.epochs:
        examples, batches = prepared.pop(epoch, None) or epoch_batches(epoch)
        losses: list[float] = []
        while batch_index < len(batches):
            batch = [t.to(device) for t in collate([examples[i] for i in batches[batch_index]])]
            input_ids, attention, tags, char_mask = batch
            loss = model.loss(model.emissions(input_ids, attention), tags, char_mask)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            step, batch_index = step + 1, batch_index + 1
            losses.append(loss.item())
            if step % 200 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{total_steps} loss {loss.item():.3f} {minutes():.1f} min",
                    flush=True,
                )
            if time.monotonic() - last_checkpoint > 60 * config.checkpoint_minutes:
                checkpoint()
                last_checkpoint = time.monotonic()
            if time.monotonic() - began > 60 * config.max_minutes:
                checkpoint()
                print(
                    f"stopping: this sitting's {config.max_minutes} minutes are spent; run again to resume", flush=True
                )
                return model_dir
        dev_f1 = evaluate(model, dev_examples, device)
        record = {
            "epoch": epoch + 1,
            "step": step,
            "minutes": round(minutes(), 1),
            "lr": round(scheduler.get_last_lr()[0], 7),
            "train_loss": round(sum(losses) / max(1, len(losses)), 4),
            "dev_f1": round(dev_f1, 4),
        }
        with open(run_dir / "history.jsonl", "a", encoding="utf-8") as history:
            history.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)
        if dev_f1 > best_f1:
            best_f1 = dev_f1
            save_weights(model.to("cpu"), model_dir)
            model.to(device)
            summary = {
                **asdict(config),
                "best_dev_f1": round(best_f1, 4),
                "best_epoch": epoch + 1,
                "minutes": record["minutes"],
            }
            (model_dir / "train_config.json").write_text(json.dumps(summary, indent=1))
            # positions past the longest training text were never learned: the engine windows texts to this length
            (model_dir / TRAINED_LENGTH_FILE).write_text(json.dumps({"max_window_tokens": config.window}))
        epoch, batch_index = epoch + 1, 0
        checkpoint()
        last_checkpoint = time.monotonic()
    return model_dir


# settings that may change between sittings of one run without changing what it computes (the initial weights
# are read only when a run starts)
RESUMABLE = {"max_minutes", "checkpoint_minutes", "threads", "device", "init_from"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--run-dir", type=Path, required=True, help="where the run's checkpoint, history and model live"
    )
    parser.add_argument("--out", type=Path, help="model dir to replace with the run's best model when it is done")
    for field, default in asdict(TrainConfig()).items():
        parser.add_argument(f"--{field.replace('_', '-')}", type=type(default), default=default)
    args = parser.parse_args()
    config = TrainConfig(**{f: getattr(args, f) for f in asdict(TrainConfig())})
    args.run_dir.mkdir(parents=True, exist_ok=True)
    best = train(config, args.run_dir)
    done = json.loads((args.run_dir / "history.jsonl").read_text().splitlines()[-1])["epoch"] >= config.epochs
    if args.out and done:
        args.out.mkdir(parents=True, exist_ok=True)
        for path in best.iterdir():
            shutil.copy2(path, args.out / path.name)
        print(f"best model (dev F1 by epoch in {args.run_dir / 'history.jsonl'}) copied to {args.out}", flush=True)


if __name__ == "__main__":
    main()
