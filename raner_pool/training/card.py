"""The model card: README.md in ModelScope's format (a YAML header the hub reads, then prose), saying what the
model was trained from, on what (each file's sha256), how it scored and how to make it again; and
train_config.json, the same facts for programs."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import torch

from raner_pool.hub import DEFAULT_MODEL_DIR
from raner_pool.training.config import TrainConfig, TrainResult


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def base_name(base_dir: Path) -> str:
    """How the card names a base: "raner-pool default (MSRA)" for the embedded model, else its dir."""
    return "raner-pool default (MSRA)" if base_dir.resolve() == DEFAULT_MODEL_DIR.resolve() else str(base_dir)


def write_card(out: Path, result: TrainResult, base: str, files: list[Path], config: TrainConfig,
               command: str) -> None:
    """README.md and train_config.json in `out`; `base` as base_name() says it."""
    data = [{"file": str(path), "sha256": sha256(path)} for path in files]
    device = config.device if config.device != "cpu" else f"cpu ({torch.get_num_threads()} threads)"
    facts = {"base_model": base, "data": data, "labels": list(result.labels),
             "added_types": list(result.added_types), "kept_types": list(result.kept_types),
             "dev": result.dev, "kept_vs_base": result.kept, "epochs": result.epochs,
             "best_epoch": result.best_epoch, "minutes": round(result.seconds / 60, 2), "device": device,
             "dtype": config.dtype, "prob_temperature": result.prob_temperature, "command": command,
             "config": asdict(config)}
    (out / "train_config.json").write_text(json.dumps(facts, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    header = [
        "---",
        "tasks:",
        "- named-entity-recognition",
        "domain:",
        "- nlp",
        "language:",
        "- zh",
        "frameworks:",
        "- pytorch",
        "base_model:",
        f"- {json.dumps(base, ensure_ascii=False)}",
        "labels:",
        *(f"- {label}" for label in result.labels),
        "tags:",
        "- transformer-crf",
        "- raner-pool",
        "---",
    ]
    rows = [f"| {t} | {v['precision']:.3f} | {v['recall']:.3f} | {v['f1']:.3f} | {int(v.get('gold', 0))} |"
            for t, v in result.dev.items()]
    kept = [f"| {t} | {f1:.3f} |" for t, f1 in result.kept.items()]
    body = [
        "",
        f"# Chinese NER: {', '.join(sorted({label[2:] for label in result.labels if label != 'O'}))}",
        "",
        f"Base model: {base}. Trained by `raner-pool train`.",
        "",
        f"New types: {', '.join(result.added_types) or 'none'}; kept from the base without labels in the data: "
        f"{', '.join(result.kept_types) or 'none'} (by {config.keep_old}).",
        "",
        "Serve it: `raner-pool serve --model DIR`, or `RaNERModelPool(\"DIR\")`, or the ModelScope pipeline "
        "(`pipeline(Tasks.named_entity_recognition, model=DIR)`).",
        "",
        "## Data",
        "",
        "| file | sha256 |",
        "| --- | --- |",
        *(f"| {d['file']} | `{d['sha256']}` |" for d in data),
        "",
        f"{result.train_texts} texts trained on, {result.dev_texts} held out for dev"
        f"{' (--dev)' if config.dev else f' (a seeded {config.dev_fraction:.0%} split, seed {config.seed})'}.",
        "",
        f"## Dev scores (best epoch {result.best_epoch} of {result.epochs})",
        "",
        "| type | precision | recall | F1 | gold entities |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        *(["Kept types: F1 of this model's entities against the base model's on the dev texts.", "",
           "| type | F1 vs base |", "| --- | ---: |", *kept, ""] if kept else []),
        "## Training",
        "",
        f"- {result.epochs} epochs, {result.seconds / 60:.1f} minutes on {device}, {config.dtype}"
        f"{', stopped by the time budget' if result.stopped_by_budget else ''}",
        f"- prob temperature: {result.prob_temperature:g}",
        f"- command: `{command or 'raner_pool.train(...)'}`",
        "",
    ]
    (out / "README.md").write_text("\n".join(header + body), encoding="utf-8")
