"""Write ModelScope `transformer-crf` NER model dirs: the layout of the real RaNER models.

Used by training (the embedded default model), by tests (tiny models built in
a fixture) and by benchmarks (randomly initialised models of RaNER-base shape).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
MSRA_LABELS = ("O", *(f"{p}-{t}" for t in ("PER", "LOC", "ORG") for p in "BMES"))
TRAINED_LENGTH_FILE = "raner_pool.json"
"""Optional file in a model dir: {"max_window_tokens": N} when the model only learned positions up to N, and
{"prob_temperature": T} when its `prob` was calibrated (training/calibrate.py)."""


def _settings(model_dir: Path) -> dict[str, Any]:
    """The dir's raner_pool.json, or nothing when it has none."""
    path = model_dir / TRAINED_LENGTH_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def prob_temperature(model_dir: Path) -> float:
    """The temperature that calibrates the model's `prob` (fitted on held-out data by training/calibrate.py),
    when its dir says so; 1.0 otherwise."""
    return float(_settings(model_dir).get("prob_temperature", 1.0))


def trained_window(model_dir: Path) -> int | None:
    """The longest window (sub-tokens, without [CLS]/[SEP]) the model was trained on, when its dir says so."""
    value = _settings(model_dir).get("max_window_tokens")
    return int(value) if value else None


@dataclass(frozen=True)
class EncoderShape:
    """Size of a BERT encoder."""

    layers: int = 4
    hidden: int = 256
    heads: int = 4
    intermediate: int = 1024
    dropout: float = 0.1
    max_positions: int = 512


RANER_BASE_SHAPE = EncoderShape(layers=12, hidden=768, heads=12, intermediate=3072)


def write_model_dir(out: Path, vocab: Sequence[str], labels: Sequence[str], shape: EncoderShape) -> None:
    """Write configuration.json, config.json, vocab.txt and label_mapping.json (weights come separately)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    label_mapping = {label: i for i, label in enumerate(labels)}
    (out / "label_mapping.json").write_text(json.dumps(label_mapping, indent=1))
    bert_config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": len(vocab),
        "hidden_size": shape.hidden,
        "num_hidden_layers": shape.layers,
        "num_attention_heads": shape.heads,
        "intermediate_size": shape.intermediate,
        "hidden_act": "gelu",
        "hidden_dropout_prob": shape.dropout,
        "attention_probs_dropout_prob": shape.dropout,
        "max_position_embeddings": shape.max_positions,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        "layer_norm_eps": 1e-12,
        "pad_token_id": 0,
    }
    (out / "config.json").write_text(json.dumps(bert_config, indent=1))
    configuration = {
        "framework": "pytorch",
        "task": "named-entity-recognition",
        "model": {"type": "transformer-crf", "encoder": {"type": "bert"}},
        "preprocessor": {"type": "sequence-labeling-tokenizer", "is_split_into_words": True},
        "pipeline": {"type": "named-entity-recognition"},
    }
    (out / "configuration.json").write_text(json.dumps(configuration, indent=1))


def new_crf_model(model_dir: Path):  # type: ignore[no-untyped-def]
    """A freshly initialised ModelScope `ModelForTokenClassificationWithCRF` for the config files in `model_dir`."""
    from modelscope.models.nlp import ModelForTokenClassificationWithCRF

    return ModelForTokenClassificationWithCRF(model_dir=str(model_dir), encoder={"type": "bert"})


def save_weights(model: object, model_dir: Path, half: bool = True) -> None:
    """Store the state dict as pytorch_model.bin; float16 halves the size and loads back into float32."""
    import torch

    state = model.state_dict()  # type: ignore[attr-defined]
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, model_dir / "pytorch_model.bin")


def build_random_model(
    out: Path,
    vocab: Sequence[str],
    shape: EncoderShape,
    labels: Sequence[str] = MSRA_LABELS,
    seed: int = 0,
) -> Path:
    """A complete, loadable model dir with random weights: for tests and for speed benchmarks."""
    import torch

    torch.manual_seed(seed)
    write_model_dir(out, vocab, labels, shape)
    save_weights(new_crf_model(out), out, half=False)
    return out
