"""Score a model on MSRA test: entity-level exact-match P/R/F1 per type and overall, as a Markdown table.

    python training/evaluate.py [--model default] [--limit N]
    python training/evaluate.py --joined 1000     # pairs of consecutive test sentences joined into one text

--joined scores the same sentences twice, alone and joined in pairs as they stood, and counts predicted entities
containing a sentence end (。！？ or a line break): what a model that reads across sentences costs.
"""

from __future__ import annotations

import argparse
import time

from raner_pool import EngineConfig, RaNERModelPool
from raner_pool.corpus import load_msra
from raner_pool.edges import SENTENCE_ENDS
from raner_pool.evaluation import SpanKey, evaluate_on_msra, format_scores, score_spans
from raner_pool.tagging import decode_spans


def joined_pairs(pool: RaNERModelPool, pairs: int) -> str:
    """F1 of `pairs` pairs of consecutive test sentences, alone and joined; entities across a sentence end."""
    sentences = load_msra("test", 2 * pairs)
    gold = [[(s.type, s.start, s.end) for s in decode_spans(sentence.tags)] for sentence in sentences]
    alone: list[list[SpanKey]] = [
        [(e.type, e.start, e.end) for e in found] for found in pool.predict_batch([s.text for s in sentences])
    ]
    joined_texts = [sentences[i].text + sentences[i + 1].text for i in range(0, len(sentences) - 1, 2)]
    joined_gold: list[list[SpanKey]] = []
    joined: list[list[SpanKey]] = []
    crossing = 0
    for k, found in enumerate(pool.predict_batch(joined_texts)):
        shift = len(sentences[2 * k].text)
        joined_gold.append(gold[2 * k] + [(t, a + shift, b + shift) for t, a, b in gold[2 * k + 1]])
        joined.append([(e.type, e.start, e.end) for e in found])
        crossing += sum(bool(set(e.span) & SENTENCE_ENDS) for e in found)
    alone_f1 = score_spans(gold, alone)["ALL"].f1
    joined_f1 = score_spans(joined_gold, joined)["ALL"].f1
    return (
        f"{len(joined_texts)} joined pairs: F1 alone {alone_f1:.4f}, joined {joined_f1:.4f} "
        f"({(joined_f1 - alone_f1) * 100:+.2f} points); predicted entities containing a sentence end: {crossing}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="modelscope")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument(
        "--joined",
        type=int,
        default=0,
        metavar="PAIRS",
        help="score PAIRS pairs of consecutive sentences alone and joined instead",
    )
    parser.add_argument(
        "--raw-edges",
        action="store_true",
        help="entity edges as decoded, as the ModelScope pipeline leaves them (EngineConfig)",
    )
    parser.add_argument(
        "--whole-texts",
        action="store_true",
        help="score a text of several sentences at once, as the pipeline does, not sentence by sentence",
    )
    args = parser.parse_args()
    config = EngineConfig(clean_edges=not args.raw_edges, sentence_windows=not args.whole_texts)
    pool = RaNERModelPool(args.model, pool_size=1, backend=args.backend, engine_config=config)
    if args.joined:
        print(joined_pairs(pool, args.joined))
        return
    began = time.monotonic()
    scores = evaluate_on_msra(pool.predict_batch, args.limit)
    print(format_scores(scores))
    print(f"\n{scores['ALL'].gold} gold entities, scored in {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    main()
