"""The model being trained: any servable ModelScope `transformer-crf` dir, loaded by ModelScope's own classes
(so every layout the pool serves is a base), its label set extended with new types, saved back as a model dir.

New types get new classifier rows and CRF cells; the old rows and cells are kept as they are. A new type's CRF
cells start from the mean of the old types' cells of the same shape (B->E within a type, O->B, E->O, ...), so
the CRF knows the scheme's grammar before the first step.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from raner_pool.backends.modelscope import ModelScopeBackend
from raner_pool.errors import ModelNotAvailable
from raner_pool.modeldir import SPECIAL_TOKENS, TRAINED_LENGTH_FILE, EncoderShape, new_crf_model, write_model_dir
from raner_pool.tagging import entity_types, split_tag, tag_scheme
from raner_pool.training.examples import Span

WRITTEN_FILES = ("pytorch_model.bin", "label_mapping.json", "README.md", TRAINED_LENGTH_FILE, "train_config.json")
"""Files of the base dir the output writes anew rather than copies."""
NEG = -1e4
"""A score no path through a forbidden tag survives (finite, so sums stay finite in any precision)."""


def scheme_prefixes(labels: Sequence[str]) -> str:
    """The tag prefixes a label set uses for every type, in its order: "BMES", "BIES" or "BI"."""
    scheme = tag_scheme(labels)
    if scheme == "BMES":
        return "BMES"
    if scheme == "BIOES":
        present = {tag[0].upper() for tag in labels if split_tag(tag)}
        return "BILU" if "L" in present else "BIES"
    return "BI"


def span_tags(length: int, spans: Sequence[Span], prefixes: str) -> list[str]:
    """Tags of `length` characters for non-overlapping `spans`, in the scheme of `prefixes`."""
    tags = ["O"] * length
    begin, inside, end, single = ("B", "I", "I", "B") if len(prefixes) == 2 else tuple(prefixes)
    for span in spans:
        if span.end - span.start == 1:
            tags[span.start] = f"{single}-{span.type}"
            continue
        tags[span.start] = f"{begin}-{span.type}"
        for i in range(span.start + 1, span.end - 1):
            tags[i] = f"{inside}-{span.type}"
        tags[span.end - 1] = f"{end}-{span.type}"
    return tags


class TrainableModel:
    """A base model dir loaded for training: the ModelScope module, its tokenizer and its labels."""

    def __init__(self, base: Path, device: str = "cpu") -> None:
        if not (base / "configuration.json").is_file():
            raise ModelNotAvailable(f"{base} is not a ModelScope transformer-crf model dir (no configuration.json): "
                                    "train can extend the embedded default, a RaNER dir or an earlier output")
        backend = ModelScopeBackend(base, device, fused=False)
        if backend.crf is None:
            raise ModelNotAvailable(f"{base} has no CRF head; train extends transformer-crf models")
        self.base = base
        self.module: Any = backend.model  # ModelScope's ModelForTokenClassificationWithCRF (untyped)
        self.tokenizer = backend.tokenizer
        self.labels: list[str] = list(backend.labels)
        self.base_labels: tuple[str, ...] = tuple(self.labels)
        self.max_chars = backend.max_positions - 2
        self.device = torch.device(device)
        self.prefixes = scheme_prefixes(self.labels) if any(split_tag(t) for t in self.labels) else "BMES"

    @property
    def types(self) -> list[str]:
        return entity_types(self.labels)

    def extend(self, new_types: Sequence[str]) -> list[str]:
        """Add labels for `new_types` (in the base's scheme); returns the labels added."""
        added = [f"{p}-{t}" for t in sorted(set(new_types) - set(self.types)) for p in self.prefixes]
        if not added:
            return []
        head = self.module.head
        old, total = len(self.labels), len(self.labels) + len(added)
        linear = nn.Linear(head.linear.in_features, total).to(self.device)
        with torch.no_grad():
            nn.init.normal_(linear.weight, std=0.02)
            linear.weight[:old] = head.linear.weight
            linear.bias[:old] = head.linear.bias
            linear.bias[old:] = head.linear.bias[[i for i, t in enumerate(self.labels) if t != "O"]].mean()
        head.linear = linear
        labels = [*self.labels, *added]
        crf = head.crf
        start, end, transitions = _extended_crf(
            crf.start_transitions.detach(), crf.end_transitions.detach(), crf.transitions.detach(), self.labels, labels
        )
        crf.start_transitions = nn.Parameter(start)
        crf.end_transitions = nn.Parameter(end)
        crf.transitions = nn.Parameter(transitions)
        crf.num_tags = total
        self.labels = labels
        return added

    def emissions(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Tag scores of every token, (batch, tokens, labels); [CLS] included (callers pick the characters)."""
        features = self.module.encoder(input_ids=input_ids, attention_mask=attention_mask)
        return self.module.head.forward(features).logits

    def crf_parameters(self) -> list[nn.Parameter]:
        return list(self.module.head.crf.parameters())

    def save(self, out: Path) -> None:
        """Write a model dir: the base's config and vocab files, the labels, the weights in the base's float
        width (raner_pool.json comes from `write_settings`)."""
        out.mkdir(parents=True)
        for path in self.base.iterdir():
            if path.is_file() and path.name not in WRITTEN_FILES and path.suffix in (".json", ".txt", ".model"):
                shutil.copy2(path, out / path.name)
        mapping = {label: i for i, label in enumerate(self.labels)}
        (out / "label_mapping.json").write_text(json.dumps(mapping, indent=1, ensure_ascii=False), encoding="utf-8")
        config_path = out / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        if "id2label" in config or "label2id" in config:
            config.update(id2label={str(i): t for i, t in enumerate(self.labels)}, label2id=mapping,
                          num_labels=len(self.labels))
            config_path.write_text(json.dumps(config, indent=1, ensure_ascii=False), encoding="utf-8")
        half = _stored_half(self.base)
        state = {k: (v.half() if half and v.is_floating_point() else v).cpu() for k, v in
                 self.module.state_dict().items()}
        torch.save(state, out / "pytorch_model.bin")


def write_settings(out: Path, settings: dict[str, object]) -> None:
    """The dir's raner_pool.json: the trained window and the fitted `prob` temperature (raner_pool.modeldir)."""
    (out / TRAINED_LENGTH_FILE).write_text(json.dumps(settings) + "\n", encoding="utf-8")


def _stored_half(base: Path) -> bool:
    """Whether the base stores its weights in float16 (the embedded default does, to halve its size)."""
    state = torch.load(base / "pytorch_model.bin", map_location="cpu", mmap=True)
    return any(v.dtype == torch.float16 for v in state.values())


def _shape(label: str) -> tuple[str, str]:
    """A label's place in the grammar, and its type: ("O", "") or (prefix, type)."""
    parsed = split_tag(label)
    return ("O", "") if parsed is None else (label[0].upper(), parsed[1])


def _extended_crf(
    start: torch.Tensor, end: torch.Tensor, transitions: torch.Tensor, old: list[str], new: list[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CRF scores for `new` labels: the old cells copied, each new cell the mean of the old cells of its shape."""
    n_old, n_new = len(old), len(new)
    shapes = [_shape(label) for label in new]

    def key(i: int) -> tuple[str, bool]:
        return shapes[i][0], shapes[i][0] == "O"

    def pair_key(i: int, j: int) -> tuple[str, str, bool]:
        return shapes[i][0], shapes[j][0], shapes[i][1] == shapes[j][1]

    out_start, out_end = torch.zeros(n_new), torch.zeros(n_new)
    out_start[:n_old], out_end[:n_old] = start, end
    for i in range(n_old, n_new):
        same = [k for k in range(n_old) if key(k) == key(i)]
        if same:
            out_start[i], out_end[i] = start[same].mean(), end[same].mean()
    out_transitions = torch.zeros(n_new, n_new)
    out_transitions[:n_old, :n_old] = transitions
    groups: dict[tuple[str, str, bool], list[float]] = {}
    for i in range(n_old):
        for j in range(n_old):
            groups.setdefault(pair_key(i, j), []).append(float(transitions[i, j]))
    for i in range(n_new):
        for j in range(n_new):
            if i >= n_old or j >= n_old:
                values = groups.get(pair_key(i, j))
                out_transitions[i, j] = sum(values) / len(values) if values else NEG / 10
    return out_start.to(start.device), out_end.to(end.device), out_transitions.to(transitions.device)


def new_base(out: Path, texts: Sequence[str], types: Sequence[str], shape: EncoderShape, min_char_count: int,
             seed: int, window: int | None, init_from: Path | None = None) -> Path:
    """A model dir to train from scratch (the embedded default's recipe): a vocab of the characters `texts` use
    at least `min_char_count` times, BMES labels for `types`, random weights of `shape`, or `init_from`'s weights
    where it has the same shape (its character embeddings matched by token)."""
    counts = Counter(ch.lower() for text in texts for ch in text if not ch.isspace())
    vocab = [*SPECIAL_TOKENS, *sorted(ch for ch, n in counts.items() if n >= min_char_count)]
    labels = ["O", *(f"{p}-{t}" for t in sorted(types) for p in "BMES")]
    shutil.rmtree(out, ignore_errors=True)
    write_model_dir(out, vocab, labels, shape)
    torch.manual_seed(seed)
    module = new_crf_model(out)
    if init_from is not None:
        _load_matching(module, init_from, vocab, labels)
    torch.save(module.state_dict(), out / "pytorch_model.bin")
    write_settings(out, {"max_window_tokens": window} if window else {})
    return out


def _load_matching(module: Any, init_from: Path, vocab: Sequence[str], labels: Sequence[str]) -> None:
    """`init_from`'s weights into `module`: character embeddings row by row for the tokens both vocabs have, the
    head's rows and CRF cells for the labels both have, every other tensor whole (the shapes must agree)."""
    state = {k: v.float() for k, v in torch.load(init_from / "pytorch_model.bin", map_location="cpu").items()}
    state = {k if k.startswith(("encoder.", "head.")) else f"head.{k}": v for k, v in state.items()}
    old_vocab = (init_from / "vocab.txt").read_text(encoding="utf-8").splitlines()
    old_labels = TrainableModel(init_from).base_labels
    target = module.state_dict()
    rows = {"vocab": _row_map(old_vocab, vocab), "labels": _row_map(old_labels, labels)}
    for key, value in state.items():
        mine = target[key]
        if key.endswith("word_embeddings.weight"):
            mine[list(rows["vocab"])] = value[list(rows["vocab"].values())]
        elif key.startswith("head."):
            pairs = rows["labels"]
            if value.dim() == 2 and key.endswith("transitions"):
                for i, oi in pairs.items():
                    mine[i, list(pairs)] = value[oi, list(pairs.values())]
            else:
                mine[list(pairs)] = value[list(pairs.values())]
        elif mine.shape == value.shape:
            mine.copy_(value)
        else:
            raise ModelNotAvailable(f"--init-from {init_from}: {key} has shape {tuple(value.shape)}, the new "
                                    f"model {tuple(mine.shape)}: give the same --shape")
    module.load_state_dict(target)


def _row_map(old: Sequence[str], new: Sequence[str]) -> dict[int, int]:
    """new index -> old index, for the entries both lists have."""
    where = {token: i for i, token in enumerate(old)}
    return {i: where[token] for i, token in enumerate(new) if token in where}


def parse_shape(text: str) -> EncoderShape:
    """"4x256" (layers x hidden; heads hidden/64, at least 4; feed-forward 4 x hidden) or "4x256x4x1024"."""
    try:
        parts = [int(p) for p in text.lower().split("x")]
        layers, hidden = parts[:2]
        heads = parts[2] if len(parts) > 2 else max(4, hidden // 64)
        intermediate = parts[3] if len(parts) > 3 else 4 * hidden
    except ValueError:
        raise ModelNotAvailable(f"--shape {text!r}: write LAYERSxHIDDEN, e.g. 4x256 or 6x384x6x1536") from None
    return EncoderShape(layers, hidden, heads, intermediate)
