"""Make `prob` mean what it says: fit a temperature for the CRF marginals on held-out MSRA train sentences and
print the reliability table (precision of predicted entities per `prob` bucket) on MSRA test, before and after.

    python training/calibrate.py [--model-dir raner_pool/models/default] [--write]

Held out: the training run's own dev split (its seed and size are in the dir's train_config.json), never
trained on and never the test set. The temperature divides every score before the marginals are computed, so
the decoded entities do not change, only their `prob`. --write stores it in the dir's raner_pool.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from collections.abc import Sequence
from pathlib import Path

from raner_pool import DEFAULT_MODEL_DIR, RaNERModelPool
from raner_pool.corpus import TaggedSentence, load_msra
from raner_pool.modeldir import TRAINED_LENGTH_FILE
from raner_pool.tagging import decode_spans

TEMPERATURES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 4.0)
BUCKETS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0001)


def held_out_sentences(model_dir: Path) -> list[TaggedSentence]:
    """The dev split the embedded default was selected on: the first `dev_sentences` of MSRA train shuffled with
    its `seed` (both in its train_config.json). Models `raner-pool train` makes fit their temperature themselves."""
    saved = json.loads((model_dir / "train_config.json").read_text(encoding="utf-8"))
    sentences = load_msra("train")
    order = list(range(len(sentences)))
    random.Random(saved["seed"]).shuffle(order)
    return [sentences[i] for i in order[: saved["dev_sentences"]]]


def scored_entities(pool: RaNERModelPool, sentences: Sequence[TaggedSentence]) -> list[tuple[float, bool]]:
    """(prob, exactly right) of every predicted entity."""
    results: list[tuple[float, bool]] = []
    for start in range(0, len(sentences), 256):
        chunk = sentences[start : start + 256]
        for sentence, found in zip(chunk, pool.predict_batch([s.text for s in chunk]), strict=True):
            gold = {(s.type, s.start, s.end) for s in decode_spans(sentence.tags)}
            results.extend((e.prob, (e.type, e.start, e.end) in gold) for e in found)
    return results


def log_loss(scored: Sequence[tuple[float, bool]]) -> float:
    eps = 1e-6
    return -sum(math.log(max(p, eps)) if right else math.log(max(1 - p, eps)) for p, right in scored) / len(scored)


def expected_calibration_error(scored: Sequence[tuple[float, bool]]) -> float:
    """Mean |precision - mean prob| over the buckets, weighted by their entities."""
    total = 0.0
    for low, high in itertools.pairwise(BUCKETS):
        bucket = [(p, r) for p, r in scored if low <= p < high]
        if bucket:
            precision, mean_prob = sum(r for _, r in bucket) / len(bucket), sum(p for p, _ in bucket) / len(bucket)
            total += abs(precision - mean_prob) * len(bucket)
    return total / len(scored)


def reliability_table(before: Sequence[tuple[float, bool]], after: Sequence[tuple[float, bool]], t: float) -> str:
    lines = [
        f"| prob bucket | entities (T=1) | mean prob | precision | entities (T={t:g}) | mean prob | precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for low, high in itertools.pairwise(BUCKETS):
        cells = []
        for scored in (before, after):
            bucket = [(p, r) for p, r in scored if low <= p < high]
            if bucket:
                cells += [
                    f"{len(bucket)}",
                    f"{sum(p for p, _ in bucket) / len(bucket):.3f}",
                    f"{sum(r for _, r in bucket) / len(bucket):.3f}",
                ]
            else:
                cells += ["0", "-", "-"]
        lines.append(f"| [{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'} | " + " | ".join(cells) + " |")
    ece_before, ece_after = expected_calibration_error(before), expected_calibration_error(after)
    lines.append(f"| ECE | {ece_before:.4f} | | | {ece_after:.4f} | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=DEFAULT_MODEL_DIR)
    parser.add_argument("--write", action="store_true", help="store the fitted temperature in the model dir")
    args = parser.parse_args()
    pool = RaNERModelPool(args.model_dir, pool_size=1)
    with pool.checkout() as engine:
        engines = [engine]
    held_out = held_out_sentences(args.model_dir)
    fits = []
    for t in TEMPERATURES:
        engines[0].temperature = t
        scored = scored_entities(pool, held_out)
        fits.append((log_loss(scored), t, expected_calibration_error(scored)))
        print(
            f"T={t:<5g} held-out log loss {fits[-1][0]:.4f}  ECE {fits[-1][2]:.4f}  ({len(scored)} entities)",
            flush=True,
        )
    best = min(fits)[1]
    test = load_msra("test")
    engines[0].temperature = 1.0
    before = scored_entities(pool, test)
    engines[0].temperature = best
    after = scored_entities(pool, test)
    print(
        f"\nMSRA test, all {len(test):,} sentences; T fitted on {len(held_out):,} held-out train sentences: {best:g}\n"
    )
    print(reliability_table(before, after, best))
    if args.write:
        path = args.model_dir / TRAINED_LENGTH_FILE
        settings = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        path.write_text(json.dumps({**settings, "prob_temperature": best}) + "\n", encoding="utf-8")
        print(f"\nwrote prob_temperature={best:g} to {path}")


if __name__ == "__main__":
    main()
