"""The training loop: epochs of shuffled, length-grouped batches; the dev score after each epoch, the best epoch's
weights kept; a checkpoint every epoch (and on Ctrl-C or at the time budget), so a stopped run resumes where it
stopped; a progress bar with the loss, the throughput and the last dev F1 per type."""

from __future__ import annotations

import json
import math
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from raner_pool.crf import CRFParams, viterbi_decode
from raner_pool.evaluation import Score, score_spans
from raner_pool.precision import compute_in
from raner_pool.tagging import decode_spans
from raner_pool.training.loss import crf_nll, distillation_kl
from raner_pool.training.model import TrainableModel
from raner_pool.training.targets import Batch, Item, collate, plan_batches


class TrainingStopped(KeyboardInterrupt):
    """Ctrl-C (SIGINT) during training: the last complete checkpoint is on disk, `--resume` continues from it."""


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs of the run's configuration."""

    epochs: int
    learning_rate: float
    head_learning_rate: float
    crf_learning_rate: float
    batch_size: int
    max_batch_tokens: int
    warmup: float
    patience: int
    max_minutes: float | None
    seed: int
    dtype: str
    distill_weight: float


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    dev: dict[str, dict[str, float]]
    """Per labelled type and "ALL": precision, recall, f1 on the dev split."""
    kept: dict[str, float] = field(default_factory=dict)
    """Per kept base type: F1 of the new model's entities against the base model's on the dev split."""
    minutes: float = 0.0
    texts_per_s: float = 0.0


@dataclass
class LoopOutcome:
    best: EpochRecord
    history: list[EpochRecord]
    stopped_by_budget: bool
    minutes: float


@contextmanager
def sigint_flag() -> Iterator[threading.Event]:
    """An event set by Ctrl-C instead of an exception mid-step, so the loop stops between steps."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


def scores_table(scores: dict[str, Score]) -> dict[str, dict[str, float]]:
    return {t: {"precision": round(s.precision, 4), "recall": round(s.recall, 4), "f1": round(s.f1, 4),
                "gold": s.gold} for t, s in scores.items()}


class Loop:
    """One run's optimiser, schedule and state, checkpointed to `run_dir`."""

    def __init__(self, model: TrainableModel, epoch_items: Callable[[int], Sequence[Item]],
                 dev_items: Sequence[Item], labelled: set[str], settings: LoopSettings, run_dir: Path,
                 keep_old: str) -> None:
        self.model, self.epoch_items, self.dev_items = model, epoch_items, dev_items
        self.labelled, self.settings, self.run_dir, self.keep_old = labelled, settings, run_dir, keep_old
        module = model.module
        head_ids = {id(p) for p in module.head.linear.parameters()}
        crf_ids = {id(p) for p in model.crf_parameters()}
        encoder = [p for p in module.parameters() if id(p) not in head_ids | crf_ids]
        self.optimizer = torch.optim.AdamW([
            {"params": encoder, "lr": settings.learning_rate, "weight_decay": 0.01},
            {"params": list(module.head.linear.parameters()), "lr": settings.head_learning_rate, "weight_decay": 0.0},
            {"params": model.crf_parameters(), "lr": settings.crf_learning_rate, "weight_decay": 0.0},
        ])
        steps_per_epoch = len(self._batches(0, epoch_items(0)))  # augmented epochs differ a little; near enough
        self.total_steps = max(1, steps_per_epoch * settings.epochs)
        warmup = max(1, int(self.total_steps * settings.warmup))
        decay = max(1, self.total_steps - warmup)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(  # linear warm-up, then linear decay to 0
            self.optimizer, lambda step: min((step + 1) / warmup, max(0.0, (self.total_steps - step) / decay))
        )
        base_labels = model.base_labels
        self.old_ids = torch.tensor([model.labels.index(t) for t in base_labels], device=model.device)
        self.epoch, self.batch_index, self.step, self.minutes_before = 0, 0, 0, 0.0
        self.history: list[EpochRecord] = []
        self.best: EpochRecord | None = None
        self.losses: list[float] = []

    def _batches(self, epoch: int, items: Sequence[Item]) -> list[list[int]]:
        rng = random.Random(f"{self.settings.seed}/{epoch}")
        return plan_batches(items, self.settings.batch_size, self.settings.max_batch_tokens, rng)

    def _collate(self, items: Sequence[Item]) -> Batch:
        tok = self.model.tokenizer
        return collate(items, tok.cls_id, tok.sep_id, tok.pad_id, len(self.model.labels)).to(self.model.device)

    def _char_emissions(self, batch: Batch) -> torch.Tensor:
        with compute_in(self.settings.dtype, self.model.device.type):
            emissions = self.model.emissions(batch.input_ids, batch.attention_mask)
        rows = batch.char_rows[:, :, None].expand(-1, -1, emissions.shape[-1])
        return emissions.float().gather(1, rows)

    def _loss(self, batch: Batch) -> torch.Tensor:
        emissions = self._char_emissions(batch)
        loss = crf_nll(emissions, batch.allowed, batch.char_mask, self.model.module.head.crf)
        if self.keep_old == "distill" and batch.teacher_probs is not None:
            kl = distillation_kl(emissions, batch.teacher_probs, batch.silent & batch.char_mask, self.old_ids)
            loss = loss + self.settings.distill_weight * kl
        return loss

    # -- checkpoints --------------------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"

    def save_checkpoint(self, minutes: float) -> None:
        """Written whole or not at all: a stop mid-write leaves the previous checkpoint."""
        state = {
            "model": self.model.module.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(), "torch_rng": torch.get_rng_state(), "epoch": self.epoch,
            "batch_index": self.batch_index, "step": self.step, "minutes": minutes, "losses": self.losses,
            "history": [asdict(r) for r in self.history], "best": asdict(self.best) if self.best else None,
        }
        _atomic_save(state, self.checkpoint_path)

    def resume(self) -> bool:
        """Continue from the run dir's checkpoint, if it has one."""
        if not self.checkpoint_path.is_file():
            return False
        saved: dict[str, Any] = torch.load(self.checkpoint_path, map_location=self.model.device, weights_only=False)
        self.model.module.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        self.epoch, self.batch_index, self.step = saved["epoch"], saved["batch_index"], saved["step"]
        self.minutes_before, self.losses = saved["minutes"], saved["losses"]
        self.history = [EpochRecord(**r) for r in saved["history"]]
        self.best = EpochRecord(**saved["best"]) if saved["best"] else None
        return True

    # -- the loop -----------------------------------------------------------------------------------------------
    def run(self, progress: bool = True) -> LoopOutcome:
        began = time.monotonic()

        def minutes() -> float:
            return self.minutes_before + (time.monotonic() - began) / 60

        s = self.settings
        bar = tqdm(total=self.total_steps, initial=self.step, disable=not progress, unit="step", dynamic_ncols=True,
                   desc="train")
        with sigint_flag() as stop, bar:
            last_dev = ""
            while self.epoch < s.epochs:
                self.model.module.train()
                train_items = self.epoch_items(self.epoch)
                batches = self._batches(self.epoch, train_items)
                epoch_began, texts = time.monotonic(), 0
                while self.batch_index < len(batches):
                    items = [train_items[i] for i in batches[self.batch_index]]
                    loss = self._loss(self._collate(items))
                    self.optimizer.zero_grad()
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(self.model.module.parameters(), 1.0)
                    self.optimizer.step()
                    self.scheduler.step()
                    self.step, self.batch_index, texts = self.step + 1, self.batch_index + 1, texts + len(items)
                    self.losses.append(loss.item())
                    rate = texts / max(1e-9, time.monotonic() - epoch_began)
                    bar.update(1)
                    bar.set_postfix_str(f"epoch {self.epoch + 1}/{s.epochs} loss {loss.item():.3f} "
                                        f"{rate:.1f} texts/s{last_dev}")
                    if stop.is_set():
                        self.save_checkpoint(minutes())
                        raise TrainingStopped(f"stopped at epoch {self.epoch + 1}, step {self.step}; "
                                              f"the checkpoint in {self.run_dir} resumes it (--resume)")
                    if s.max_minutes is not None and time.monotonic() - began > 60 * s.max_minutes:
                        return self._stop_for_budget(minutes())
                record = self._end_epoch(minutes(), texts / max(1e-9, time.monotonic() - epoch_began))
                last_dev = " | dev " + " ".join(f"{t} {v['f1']:.2f}" for t, v in record.dev.items())
                bar.set_postfix_str(f"epoch {record.epoch}/{s.epochs} loss {record.train_loss:.3f}{last_dev}")
                self.save_checkpoint(minutes())
                best_epoch = self.best.epoch if self.best else 0
                if self.epoch - best_epoch >= s.patience:
                    break
        assert self.best is not None
        return LoopOutcome(self.best, self.history, False, minutes())

    def _stop_for_budget(self, minutes: float) -> LoopOutcome:
        """This sitting's time is spent: checkpoint where the run stands (a `--resume` goes on from exactly here),
        and keep the weights as they are now if they score better than the best complete epoch."""
        self.save_checkpoint(minutes)
        dev, kept = self.evaluate(self.dev_items)
        if self.best is None or dev["ALL"]["f1"] > self.best.dev["ALL"]["f1"]:
            self.best = EpochRecord(self.epoch + 1, round(float(np.mean(self.losses)) if self.losses else 0.0, 4),
                                    dev, kept, round(minutes, 2))
            _atomic_save(self.model.module.state_dict(), self.best_path)
            self.save_checkpoint(minutes)
        return LoopOutcome(self.best, self.history, True, minutes)

    def _end_epoch(self, minutes: float, rate: float) -> EpochRecord:
        dev, kept = self.evaluate(self.dev_items)
        record = EpochRecord(self.epoch + 1, round(float(np.mean(self.losses)) if self.losses else 0.0, 4), dev,
                             kept, round(minutes, 2), round(rate, 1))
        self.history.append(record)
        with open(self.run_dir / "history.jsonl", "a", encoding="utf-8") as history:
            history.write(json.dumps(asdict(record), ensure_ascii=False) + "\n")
        if self.best is None or record.dev["ALL"]["f1"] > self.best.dev["ALL"]["f1"]:
            self.best = record
            _atomic_save(self.model.module.state_dict(), self.best_path)
        self.epoch, self.batch_index, self.losses = self.epoch + 1, 0, []
        return record

    @torch.no_grad()
    def evaluate(self, items: Sequence[Item]) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
        """Dev precision/recall/F1 of the labelled types, and the kept types' F1 against the base model."""
        self.model.module.eval()
        crf = self.model.module.head.crf
        params = CRFParams(*(t.detach().float().cpu().numpy() for t in
                             (crf.start_transitions, crf.end_transitions, crf.transitions)))
        gold, predicted, base, kept = [], [], [], []
        for offset in range(0, len(items), 32):
            chunk = items[offset : offset + 32]
            emissions = self._char_emissions(self._collate(chunk)).cpu().numpy()
            lengths = np.array([len(item.text) for item in chunk])
            for item, path in zip(chunk, viterbi_decode(emissions, lengths, params), strict=True):
                spans = decode_spans([self.model.labels[i] for i in path])
                gold.append([(s.type, s.start, s.end) for s in item.gold])
                predicted.append([(s.type, s.start, s.end) for s in spans if s.type in self.labelled])
                base.append([(s.type, s.start, s.end) for s in item.base_spans])
                kept.append([(s.type, s.start, s.end) for s in spans if s.type not in self.labelled])
        self.model.module.train()
        dev = scores_table(score_spans(gold, predicted))
        for t in self.labelled:
            dev.setdefault(t, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "gold": 0})
        kept_f1 = {t: round(s.f1, 4) for t, s in score_spans(base, kept).items() if t != "ALL" and s.gold}
        return dev, kept_f1


def _atomic_save(state: object, path: Path) -> None:
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    partial.replace(path)


def default_epochs(n_train: int) -> int:
    """More passes over less data: ~4,000 texts seen in all, between 5 and 40 epochs."""
    return max(5, min(40, math.ceil(4000 / max(1, n_train))))
