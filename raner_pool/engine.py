"""The batched NER engine: texts in, entities out, with no ModelScope pipeline on the hot path.

One call: tokenise every text per code point, cut long texts into windows,
sort the windows by length and group them into batches under a token budget
(padded tokens, or the tokens alone where the backend runs texts together),
run one forward pass per batch, decode each window (CRF Viterbi, or
argmax for models without a CRF), stitch windows back together and turn
tags into spans with code-point offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Literal

import numpy as np

from raner_pool.backends.base import Backend
from raner_pool.crf import tag_marginals, viterbi_decode
from raner_pool.edges import clean_span, strip_whitespace
from raner_pool.entities import Entity
from raner_pool.modeldir import prob_temperature
from raner_pool.tagging import decode_spans, decode_spans_like_modelscope
from raner_pool.windows import Window, plan_sentence_windows, plan_windows


@dataclass(frozen=True)
class EngineConfig:
    """Batching and windowing knobs of one engine."""

    max_batch_tokens: int = 8192
    """Padded tokens per forward pass (longest window x windows in the batch)."""
    max_batch_size: int = 64
    """Windows per forward pass."""
    window_overlap: int | None = None
    """Characters shared by neighbouring windows of a long text; None: a quarter of the window, at most 64."""
    span_decoding: Literal["modelscope", "lenient"] = "modelscope"
    """How tags become spans: exactly as the ModelScope pipeline does (its quirks included: an M- alone is
    dropped, ``B O E`` spans the O), or with raner_pool.tagging's scheme-aware lenient reading."""
    max_window_tokens: int | None = None
    """Sub-tokens per window; None: as many as the model has positions (minus [CLS] and [SEP])."""
    clean_edges: bool = True
    """Trim symbols and punctuation off entity edges and cut entities at sentence ends (raner_pool.edges);
    False: trim only whitespace, leaving the spans as the ModelScope pipeline decodes them (parity checks)."""
    sentence_windows: bool = True
    """Score every sentence of a text on its own (raner_pool.windows.plan_sentence_windows), so a text of several
    sentences yields what its sentences yield one by one; False: the whole text at once, windowed only when
    longer than the model's positions, as the ModelScope pipeline reads it (parity checks)."""


PIPELINE_READING = EngineConfig(clean_edges=False, sentence_windows=False)
"""Read texts as the ModelScope pipeline does: whole, edges as decoded; what parity checks compare."""


@dataclass
class _Segment:
    """One window of one text, and after the forward pass its per-character tags and probabilities."""

    text_index: int
    window: Window
    char_ids: list[tuple[int, ...]]
    tags: np.ndarray | None = None
    probs: np.ndarray | None = None
    token_probs: np.ndarray | None = None
    """Label probabilities of every token, [CLS] and [SEP] included; kept only when asked for."""

    @property
    def n_tokens(self) -> int:
        return sum(len(ids) for ids in self.char_ids) + 2


class NEREngine:
    """Runs a backend on batches of texts. Stateless apart from the shared backend: safe across threads."""

    def __init__(self, backend: Backend, config: EngineConfig | None = None) -> None:
        self.backend = backend
        self.config = config or EngineConfig()
        self.window_tokens = backend.max_positions - 2
        if self.config.max_window_tokens is not None:
            self.window_tokens = min(self.window_tokens, self.config.max_window_tokens)
        overlap = self.config.window_overlap
        self.window_overlap: int = min(64, self.window_tokens // 4) if overlap is None else overlap
        self.packs: bool = backend.packs
        """Whether batches run their texts together rather than pad (Backend.packs): a batch costs its tokens."""
        self.temperature = prob_temperature(backend.model_dir)
        """Divides every score before `prob` is computed (1.0: the model's own marginals); paths do not change."""
        if not 0 <= self.window_overlap < self.window_tokens:
            raise ValueError(f"window_overlap must be between 0 and {self.window_tokens - 1} (the window size - 1)")

    def predict(self, text: str) -> list[Entity]:
        """Entities of one text."""
        return self.predict_batch([text])[0]

    def predict_batch(self, texts: Sequence[str]) -> list[list[Entity]]:
        """Entities of each text, in the order given."""
        by_text = self._run(texts, keep_token_probs=False)
        return [self._entities(text, segs) for text, segs in zip(texts, by_text, strict=True)]

    def with_confidence(self, texts: Sequence[str]) -> list[tuple[list[Entity], float]]:
        """Each text's entities and how sure the model is of the text as a whole: the lowest probability, over its
        characters, of the tag the best path gives it (CRF marginals). Low where an entity is unsure and where
        another path competes with the best one anywhere, entity or not: what active learning ranks by."""
        by_text = self._run(texts, keep_token_probs=False)
        return [(self._entities(text, segs),
                 min((float(s.probs.min()) for s in segs if s.probs is not None and len(s.probs)), default=1.0))
                for text, segs in zip(texts, by_text, strict=True)]

    def classify_tokens(self, texts: Sequence[str]) -> list[TokenClassification]:
        """Per-token label probabilities (the vLLM `token_classify` view) and the decoded entities of each text."""
        by_text = self._run(texts, keep_token_probs=True)
        return [
            TokenClassification(self._entities(text, segs), self._token_probs(segs))
            for text, segs in zip(texts, by_text, strict=True)
        ]

    def _run(self, texts: Sequence[str], keep_token_probs: bool) -> list[list[_Segment]]:
        """Score every window of every text; the scored windows of each text, in text order."""
        check_texts(texts)
        segments = [seg for index, text in enumerate(texts) for seg in self._segments(index, text)]
        for batch in self._batches(segments):
            self._run_batch(batch, keep_token_probs)
        by_text: list[list[_Segment]] = [[] for _ in texts]
        for segment in segments:
            by_text[segment.text_index].append(segment)
        return by_text

    def _segments(self, text_index: int, text: str) -> list[_Segment]:
        char_ids = self.backend.tokenizer.encode(text)
        if not char_ids:
            return []
        limit = self.window_tokens
        char_ids = [ids if len(ids) <= limit else ids[:limit] for ids in char_ids]
        counts = [len(ids) for ids in char_ids]
        if self.config.sentence_windows:
            windows = plan_sentence_windows(text, counts, limit, self.window_overlap)
        else:
            windows = plan_windows(counts, limit, self.window_overlap)
        return [_Segment(text_index, w, char_ids[w.start : w.end]) for w in windows]

    def _batches(self, segments: list[_Segment]) -> list[list[_Segment]]:
        """Length-sorted batches under the token budget (padded, unless the backend packs) and the size cap."""
        batches: list[list[_Segment]] = []
        current: list[_Segment] = []
        for segment in sorted(segments, key=lambda s: s.n_tokens):
            cost = batch_cost([*(s.n_tokens for s in current), segment.n_tokens], self.packs)
            if current and (cost > self.config.max_batch_tokens or len(current) >= self.config.max_batch_size):
                batches.append(current)
                current = []
            current.append(segment)
        if current:
            batches.append(current)
        return batches

    def _run_batch(self, batch: list[_Segment], keep_token_probs: bool) -> None:
        tokenizer = self.backend.tokenizer
        rows = [[tokenizer.cls_id, *(t for ids in segment.char_ids for t in ids), tokenizer.sep_id]
                for segment in batch]
        scores = self._forward_packed(rows) if self.packs else self._forward_padded(rows)
        longest = max(len(s.char_ids) for s in batch)
        # position of each character's first sub-token; padding points at [CLS] and is masked by length
        first_token = np.zeros((len(batch), longest), dtype=np.int64)
        lengths = np.array([len(s.char_ids) for s in batch], dtype=np.int64)
        for row, segment in enumerate(batch):
            sizes = np.fromiter((len(ids) for ids in segment.char_ids), dtype=np.int64, count=len(segment.char_ids))
            first_token[row, : len(sizes)] = 1 + np.cumsum(sizes) - sizes
        char_scores = np.take_along_axis(scores, first_token[:, :, None], axis=1)
        if self.backend.crf is not None:
            paths = viterbi_decode(char_scores, lengths, self.backend.crf)
            probs = tag_marginals(char_scores / self.temperature, lengths, self.backend.crf.tempered(self.temperature))
        else:
            paths = [char_scores[row, : lengths[row]].argmax(axis=-1) for row in range(len(batch))]
            probs = _softmax(char_scores / self.temperature)
        token_probs = _softmax(scores) if keep_token_probs else None
        for row, segment in enumerate(batch):
            segment.tags = paths[row]
            segment.probs = probs[row, np.arange(lengths[row]), paths[row]]
            if token_probs is not None:
                segment.token_probs = token_probs[row, : segment.n_tokens]

    def _forward_padded(self, rows: list[list[int]]) -> np.ndarray:
        """Scores of each row of token ids, one text per row, shorter rows padded to the longest."""
        width = max(len(row) for row in rows)
        input_ids = np.full((len(rows), width), self.backend.tokenizer.pad_id, dtype=np.int64)
        attention = np.zeros((len(rows), width), dtype=np.int64)
        for index, row in enumerate(rows):
            input_ids[index, : len(row)] = row
            attention[index, : len(row)] = 1
        return self.backend.emissions(input_ids, attention)

    def _forward_packed(self, rows: list[list[int]]) -> np.ndarray:
        """Scores of each row of token ids as `_forward_padded` gives them, computed on the rows run together, each
        text attending only to itself (Backend.emissions_packed): a batch of mixed lengths costs its tokens."""
        lengths = [len(row) for row in rows]
        packed = self.backend.emissions_packed(np.fromiter(chain.from_iterable(rows), np.int64, sum(lengths)),
                                               lengths)
        scores = np.zeros((len(rows), max(lengths), packed.shape[-1]), dtype=np.float32)
        for index, (start, length) in enumerate(zip(np.cumsum(lengths) - lengths, lengths, strict=True)):
            scores[index, :length] = packed[start : start + length]
        return scores

    def _entities(self, text: str, segments: list[_Segment]) -> list[Entity]:
        if not segments:
            return []
        tags = np.zeros(len(text), dtype=np.int64)
        probs = np.zeros(len(text), dtype=np.float32)
        for segment in segments:
            w = segment.window
            assert segment.tags is not None and segment.probs is not None
            tags[w.own_start : w.own_end] = segment.tags[w.own_start - w.start : w.own_end - w.start]
            probs[w.own_start : w.own_end] = segment.probs[w.own_start - w.start : w.own_end - w.start]
        labels = self.backend.labels
        entities = []
        decode = decode_spans_like_modelscope if self.config.span_decoding == "modelscope" else decode_spans
        trim = clean_span if self.config.clean_edges else strip_whitespace
        for span in decode([labels[t] for t in tags.tolist()]):
            for start, end in trim(text, span.start, span.end):
                # as sure as its least sure character: a doubtful last character means a doubtful extent
                entities.append(Entity(span.type, start, end, text[start:end], float(probs[start:end].min())))
        return entities


    def _token_probs(self, segments: list[_Segment]) -> np.ndarray:
        """[CLS], then the tokens of every character from the window that owns it, then [SEP]."""
        if not segments:
            return _softmax(self.backend.emissions(
                np.array([[self.backend.tokenizer.cls_id, self.backend.tokenizer.sep_id]], dtype=np.int64),
                np.ones((1, 2), dtype=np.int64),
            ))[0]
        rows: list[np.ndarray] = []
        for segment in segments:
            assert segment.token_probs is not None
            w = segment.window
            sizes = [len(ids) for ids in segment.char_ids]
            first = 1 + sum(sizes[: w.own_start - w.start])
            last = first + sum(sizes[w.own_start - w.start : w.own_end - w.start])
            if segment is segments[0]:
                rows.append(segment.token_probs[:1])
            rows.append(segment.token_probs[first:last])
            if segment is segments[-1]:
                rows.append(segment.token_probs[-1:])
        return np.concatenate(rows)


def batch_cost(sizes: Sequence[int], packed: bool) -> int:
    """Tokens a forward pass over texts of `sizes` tokens computes: their sum where rows are packed, else the
    longest times their number."""
    return sum(sizes) if packed else max(sizes, default=0) * len(sizes)


def check_texts(texts: Sequence[str]) -> None:
    """Raise a TypeError naming the first item that is not a str (or the argument, if it is one str)."""
    if isinstance(texts, str):
        raise TypeError("predict_batch takes a list of texts; use predict for a single text")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"texts[{index}] is {type(text).__name__}, not str")


@dataclass(frozen=True)
class TokenClassification:
    """One text seen token by token: label probabilities per token ([CLS] first, [SEP] last), and its entities."""

    entities: list[Entity]
    token_probs: np.ndarray
    """float32, shape (tokens, labels), rows in token order, columns in label-id order."""


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    result: np.ndarray = shifted / shifted.sum(axis=-1, keepdims=True)
    return result
