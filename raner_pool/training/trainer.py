"""`raner_pool.train`: from annotated files and a servable base model to a new servable model dir.

    from raner_pool import train
    result = train(["products.jsonl"], base="default", output="models/products")
    print(result.labels, result.dev["ALL"]["f1"])

Everything that can be wrong with the data is found before any training; the output dir appears whole, renamed
into place when the run is done, or not at all. The run's checkpoints live beside it (`.<name>.train/`) until then.
"""

from __future__ import annotations

import logging
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch

from raner_pool.engine import NEREngine
from raner_pool.errors import RaNERError
from raner_pool.hub import resolve_model_dir
from raner_pool.loading import load_backend
from raner_pool.modeldir import prob_temperature, trained_window
from raner_pool.precision import check_dtype
from raner_pool.threads import available_cores
from raner_pool.training.augment import Lexicon, augmented, jieba_dictionary
from raner_pool.training.calibration import fit_temperature
from raner_pool.training.card import base_name, write_card
from raner_pool.training.config import TrainConfig, TrainResult
from raner_pool.training.examples import DataError, Example
from raner_pool.training.loop import Loop, LoopSettings, default_epochs
from raner_pool.training.model import TrainableModel, new_base, parse_shape, write_settings
from raner_pool.training.readers import read_all
from raner_pool.training.targets import KEEP_OLD, Item, add_base_view, build_items, set_targets

log = logging.getLogger(__name__)
SCRATCH = "scratch"
"""The base that is no model: a new encoder of `shape`, trained from random weights (the default's recipe)."""


def run_dir_for(output: Path) -> Path:
    return output.parent / f".{output.name}.train"


def train(data: list[str | os.PathLike[str]], base: str | os.PathLike[str] = "default",
          output: str | os.PathLike[str] = "trained-model", config: TrainConfig | None = None,
          command: str = "") -> TrainResult:
    """Fine-tune `base` on `data` (and extend it with the data's new types) into the model dir `output`."""
    config = config or TrainConfig()
    began = time.monotonic()
    out = Path(output).resolve()
    if config.keep_old not in KEEP_OLD:
        raise RaNERError(f"keep_old must be one of {', '.join(KEEP_OLD)}, not {config.keep_old!r}")
    if out.exists() and not config.overwrite and not (config.resume and run_dir_for(out).is_dir()):
        raise RaNERError(f"{out} already exists; choose another --output or pass --overwrite")
    check_dtype(config.dtype, "modelscope", config.device)
    files = [Path(p) for p in data]
    if not files:
        raise DataError("no data files given")
    examples = read_all(files, config.format)
    dev_examples = read_all([Path(p) for p in config.dev], config.format) if config.dev else []
    train_examples, dev_examples = _split(examples, dev_examples, config)
    labelled = set(config.types).union(*(e.types for e in examples), *(e.types for e in dev_examples))
    if not labelled:
        raise DataError(f"{', '.join(map(str, files))}: no entity in any text; nothing to learn")

    torch.set_num_threads(config.threads or available_cores())
    run_dir = run_dir_for(out)
    if run_dir.exists() and not config.resume:
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if str(base) == SCRATCH:
        shape = parse_shape(config.shape)
        base_dir = new_base(run_dir / "scratch-base", [e.text for e in train_examples], sorted(labelled), shape,
                            config.min_char_count, config.seed, config.window,
                            Path(config.init_from) if config.init_from else None)
        base_label = f"none (from scratch, {shape.layers} x {shape.hidden}" + (
            f", initialised from {config.init_from})" if config.init_from else ")")
    else:
        base_dir = resolve_model_dir(base)
        base_label = base_name(base_dir)
    torch.manual_seed(config.seed)
    model = TrainableModel(base_dir, config.device)
    kept = set(model.types) - labelled if config.keep_old != "forget" else set()
    added = model.extend(sorted(labelled))
    teacher = NEREngine(load_backend(base_dir, "modelscope", config.device)) if kept else None

    def items(examples: Sequence[Example]) -> list[Item]:
        """Windows of `examples` with their targets, the base model's view added where the data is silent."""
        built = build_items(examples, model)
        if teacher is not None:
            add_base_view(built, teacher, model.base_labels, kept, with_probs=config.keep_old == "distill")
        set_targets(built, model.labels, model.prefixes, config.keep_old)
        return built

    dev_items = items(dev_examples)
    epoch_items = _epoch_items(train_examples, items, config, model.max_chars)

    hidden = int(model.module.encoder.config.hidden_size)
    settings = LoopSettings(
        epochs=config.epochs or default_epochs(len(train_examples)),
        learning_rate=config.learning_rate or (5e-5 if hidden >= 512 else 2e-4),
        head_learning_rate=config.head_learning_rate, crf_learning_rate=config.crf_learning_rate,
        batch_size=config.batch_size, max_batch_tokens=config.max_batch_tokens, warmup=config.warmup,
        patience=config.patience, max_minutes=config.max_minutes, seed=config.seed, dtype=config.dtype,
        distill_weight=config.distill_weight,
    )
    loop = Loop(model, epoch_items, dev_items, labelled, settings, run_dir, config.keep_old)
    if config.resume and loop.resume():
        log.info("resuming %s at epoch %d, step %d", run_dir, loop.epoch + 1, loop.step)
    outcome = loop.run(progress=config.progress)

    model.module.load_state_dict(torch.load(loop.best_path, map_location=model.device))
    model.module.to("cpu")
    partial = out.parent / f".{out.name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    window = trained_window(base_dir)
    dir_settings: dict[str, object] = {"max_window_tokens": window} if window else {}
    model.save(partial)
    write_settings(partial, dir_settings)
    temperature = fit_temperature(partial, dev_examples, labelled, prob_temperature(base_dir))
    write_settings(partial, {**dir_settings, "prob_temperature": temperature})
    result = TrainResult(
        output=out, labels=tuple(model.labels), added_types=tuple(sorted({a[2:] for a in added})),
        kept_types=tuple(sorted(kept)), dev=outcome.best.dev, kept=outcome.best.kept, epochs=len(outcome.history),
        best_epoch=outcome.best.epoch, seconds=round(time.monotonic() - began, 1), train_texts=len(train_examples),
        dev_texts=len(dev_examples), prob_temperature=temperature, stopped_by_budget=outcome.stopped_by_budget,
        history=[asdict(r) for r in outcome.history],
    )
    write_card(partial, result, base_label, files + [Path(p) for p in config.dev], config, command)
    replace_dir(partial, out)
    if not outcome.stopped_by_budget:  # a run stopped by its time budget stays resumable
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _epoch_items(examples: list[Example], items: Callable[[Sequence[Example]], list[Item]], config: TrainConfig,
                 window: int) -> Callable[[int], list[Item]]:
    """Each epoch's training items: the same every epoch, or with `augment` drawn afresh for each (seeded by the
    epoch, so a resumed run sees what it would have seen)."""
    if not config.augment.active:
        fixed = items(examples)
        return lambda epoch: fixed
    dictionary = jieba_dictionary() if config.augment.jieba_names else None
    lexicon = Lexicon.build(examples, dictionary)
    return lambda epoch: items(augmented(examples, lexicon, config.augment, window, random.Random(
        f"{config.seed}/{epoch}/augment")))


def _split(examples: list[Example], dev: list[Example], config: TrainConfig) -> tuple[list[Example], list[Example]]:
    """The training examples and the dev ones: `dev` when given, else a seeded `dev_fraction` of `examples`."""
    if dev:
        return examples, dev
    if len(examples) < 2:
        raise DataError(f"{examples[0].where}: one annotated text is not enough to train and score on; "
                        "give more, or a --dev file")
    order = list(range(len(examples)))
    random.Random(config.seed).shuffle(order)
    n_dev = max(1, round(len(examples) * config.dev_fraction))
    held = set(order[:n_dev])
    return [e for i, e in enumerate(examples) if i not in held], [examples[i] for i in sorted(held)]


def replace_dir(new: Path, out: Path) -> None:
    """Put `new` at `out` by renames, so `out` is never a half-written dir."""
    if out.exists():
        old = out.parent / f".{out.name}.old"
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        new.rename(out)
        shutil.rmtree(old)
    else:
        new.rename(out)


__all__ = ["TrainConfig", "TrainResult", "train"]
