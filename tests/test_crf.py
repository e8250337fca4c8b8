"""The numpy Viterbi must pick exactly the paths ModelScope's own CRF picks."""

import numpy as np
import torch
from modelscope.models.nlp.heads.crf_head import CRF

from raner_pool.crf import CRFParams, viterbi_decode


def test_matches_modelscope_crf_decode():
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    for tags in (3, 13):
        crf = CRF(tags, batch_first=True)
        with torch.no_grad():
            crf.transitions.normal_(0, 2)
            crf.start_transitions.normal_(0, 2)
            crf.end_transitions.normal_(0, 2)
        params = CRFParams(
            crf.start_transitions.detach().numpy(),
            crf.end_transitions.detach().numpy(),
            crf.transitions.detach().numpy(),
        )
        emissions = rng.normal(size=(8, 20, tags)).astype(np.float32)
        lengths = np.array([20, 1, 5, 19, 7, 2, 20, 11])
        mask = torch.arange(20)[None, :] < torch.from_numpy(lengths)[:, None]
        expected = crf.decode(torch.from_numpy(emissions), mask).squeeze(0)
        ours = viterbi_decode(emissions, lengths, params)
        for row, length in enumerate(lengths):
            assert ours[row].tolist() == expected[row, :length].tolist()


def test_zero_length_and_single_step():
    params = CRFParams(np.zeros(3, np.float32), np.zeros(3, np.float32), np.zeros((3, 3), np.float32))
    emissions = np.array([[[0.0, 2.0, 1.0]], [[0.0, 0.0, 0.0]]], dtype=np.float32)
    paths = viterbi_decode(emissions, np.array([1, 0]), params)
    assert paths[0].tolist() == [1] and paths[1].tolist() == []


def test_tag_marginals_equal_brute_force_enumeration():
    import itertools

    from raner_pool.crf import tag_marginals

    rng = np.random.default_rng(5)
    tags, steps = 3, 4
    params = CRFParams(*(rng.normal(size=s).astype(np.float32) for s in ((tags,), (tags,), (tags, tags))))
    emissions = rng.normal(size=(2, steps, tags)).astype(np.float32)
    lengths = np.array([4, 2])
    marginals = tag_marginals(emissions, lengths, params)
    for row, length in enumerate(lengths):
        expected = np.zeros((length, tags))
        total = 0.0
        for path in itertools.product(range(tags), repeat=int(length)):
            score = params.start[path[0]] + params.end[path[-1]] + sum(emissions[row, t, k] for t, k in enumerate(path))
            score += sum(params.transitions[a, b] for a, b in itertools.pairwise(path))
            weight = np.exp(score)
            total += weight
            for t, k in enumerate(path):
                expected[t, k] += weight
        np.testing.assert_allclose(marginals[row, :length], expected / total, rtol=1e-4, atol=1e-6)


def test_tag_marginals_stay_right_when_scores_lie_hundreds_apart():
    """Rescaled at every step, the weights neither overflow nor vanish where exp(score) would: against the same
    enumeration done in log space, for scores ~100x those of a trained model."""
    import itertools

    from raner_pool.crf import tag_marginals

    rng = np.random.default_rng(9)
    tags, steps = 3, 5
    params = CRFParams(*(rng.normal(scale=80, size=s).astype(np.float32) for s in ((tags,), (tags,), (tags, tags))))
    emissions = rng.normal(scale=300, size=(1, steps, tags)).astype(np.float32)
    marginals = tag_marginals(emissions, np.array([steps]), params)
    paths = list(itertools.product(range(tags), repeat=steps))
    scores = np.array([params.start[p[0]] + params.end[p[-1]] + sum(emissions[0, t, k] for t, k in enumerate(p))
                       + sum(params.transitions[a, b] for a, b in itertools.pairwise(p)) for p in paths],
                      dtype=np.float64)
    log_z = np.logaddexp.reduce(scores)
    for t in range(steps):
        for k in range(tags):
            chosen = [score for path, score in zip(paths, scores, strict=True) if path[t] == k]
            expected = np.exp(np.logaddexp.reduce(chosen) - log_z) if chosen else 0.0
            assert abs(marginals[0, t, k] - expected) < 1e-5
    assert np.isfinite(marginals).all() and np.allclose(marginals.sum(axis=2), 1.0, atol=1e-5)
