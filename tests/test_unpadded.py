"""Texts run together through a BERT encoder (raner_pool.unpadded) get the scores each gets padded on its own row."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from raner_pool.backends.modelscope import ModelScopeBackend
from raner_pool.engine import NEREngine
from raner_pool.hub import DEFAULT_MODEL_DIR
from raner_pool.precision import BF16_CPU_FLAGS, cpu_flags
from raner_pool.unpadded import TOKEN_QUANTUM, UnpaddedBert, supports

LENGTHS = [1, 9, 4, 17, 2, 17]


def random_texts(backend: ModelScopeBackend, lengths: list[int]) -> list[np.ndarray]:
    """Token ids of texts of `lengths` tokens, the same ones on every call."""
    generator = np.random.default_rng(3)
    vocab = backend.model.encoder.config.vocab_size
    return [generator.integers(5, vocab, size=length) for length in lengths]


def packed_and_alone(backend: ModelScopeBackend, lengths: list[int]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Emissions of random texts of `lengths` tokens run together, and of each on its own padded row."""
    texts = random_texts(backend, lengths)
    packed = backend.emissions_packed(np.concatenate(texts), lengths)
    alone = [backend.emissions(text[None], np.ones((1, len(text)), dtype=np.int64))[0] for text in texts]
    return packed, alone


@pytest.mark.parametrize("fused", [True, False])
def test_each_text_run_together_gets_the_scores_it_gets_alone(tiny_model_dir: Path, fused: bool):
    backend = ModelScopeBackend(tiny_model_dir, fused=fused)
    assert backend.packs
    packed, alone = packed_and_alone(backend, LENGTHS)
    assert packed.shape == (sum(LENGTHS), len(backend.labels))
    np.testing.assert_allclose(packed, np.concatenate(alone), atol=1e-5)


def test_a_texts_scores_depend_neither_on_its_neighbours_nor_on_its_place(tiny_model_dir: Path):
    """A text's scores do not depend on which texts share its batch, nor on where in the batch it sits."""
    backend = ModelScopeBackend(tiny_model_dir)
    together, _ = packed_and_alone(backend, LENGTHS)
    reversed_lengths = LENGTHS[::-1]
    texts = random_texts(backend, LENGTHS)
    backwards = backend.emissions_packed(np.concatenate(texts[::-1]), reversed_lengths)
    first_text_backwards = backwards[sum(reversed_lengths[:-1]):]
    np.testing.assert_allclose(first_text_backwards, together[: LENGTHS[0]], atol=1e-5)


@pytest.mark.skipif(not cpu_flags() & set(BF16_CPU_FLAGS), reason="this CPU has no native bfloat16")
def test_default_model_run_together_in_bfloat16_finds_what_padded_rows_find():
    from raner_pool.corpus import load_msra

    texts = [s.text for s in load_msra("test", 200)]
    packed = NEREngine(ModelScopeBackend(DEFAULT_MODEL_DIR, dtype="bfloat16"))
    padded = copy.copy(packed)
    padded.packs = False
    got, want = packed.predict_batch(texts), padded.predict_batch(texts)
    same = sum([(e.type, e.start, e.end) for e in g] == [(e.type, e.start, e.end) for e in w]
               for g, w in zip(got, want, strict=True))
    assert same >= 0.99 * len(texts), f"only {same} of {len(texts)} texts have the same entities"
    assert sum(map(len, got)) > 40


def test_only_bert_encoders_with_absolute_positions_run_unpadded(tiny_model_dir: Path):
    encoder = ModelScopeBackend(tiny_model_dir, fused=False).model.encoder  # fused weights cannot be deep-copied
    assert supports(encoder)
    relative = copy.deepcopy(encoder)
    relative.encoder.layer[0].attention.self.position_embedding_type = "relative_key"
    assert not supports(relative)
    decoder = copy.deepcopy(encoder)
    decoder.encoder.layer[0].is_decoder = True
    assert not supports(decoder)
    assert not supports(torch.nn.Linear(4, 4))
    with pytest.raises(ValueError, match="not a BERT encoder"):
        UnpaddedBert(relative)


def test_a_model_with_relative_positions_is_served_padded(tiny_model_dir: Path, tmp_path: Path):
    import json
    import shutil

    relative = shutil.copytree(tiny_model_dir, tmp_path / "relative")
    config = json.loads((relative / "config.json").read_text())
    (relative / "config.json").write_text(json.dumps({**config, "position_embedding_type": "relative_key"}))
    backend = ModelScopeBackend(relative)
    assert not backend.packs and backend.unpadded is None
    results = NEREngine(backend).predict_batch(["马云在杭州", "北京上海刘德华平时生活在香港", ""])
    assert len(results) == 3 and results[2] == []


def test_linear_layers_see_token_counts_in_multiples_of_the_quantum(tiny_model_dir: Path):
    """Each new token count is a shape oneDNN builds and keeps: unbounded counts grew a served heap by 400 MB in
    24 s. The batch runs as a multiple of TOKEN_QUANTUM, its scores still each text's own."""
    backend = ModelScopeBackend(tiny_model_dir, fused=False)
    seen: list[int] = []
    layer = backend.model.encoder.encoder.layer[0].intermediate.dense
    hook = layer.register_forward_hook(lambda module, args, output: seen.append(args[0].shape[0]))
    try:
        packed, alone = packed_and_alone(backend, LENGTHS)
    finally:
        hook.remove()
    assert seen and all(count % TOKEN_QUANTUM == 0 for count in seen[:1]), seen
    assert packed.shape[0] == sum(LENGTHS) and sum(LENGTHS) % TOKEN_QUANTUM != 0
    start = 0
    for text, length in zip(alone, LENGTHS, strict=True):
        np.testing.assert_allclose(packed[start:start + length], text, atol=1e-4)
        start += length
