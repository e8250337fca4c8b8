"""Score a model on MSRA test: entity-level exact-match P/R/F1 per type and overall, as a Markdown table.

    python training/evaluate.py [--model default] [--limit N]
"""

from __future__ import annotations

import argparse
import time

from raner_pool import RaNERModelPool
from raner_pool.evaluation import evaluate_on_msra, format_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--backend", default="modelscope")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    pool = RaNERModelPool(args.model, pool_size=1, backend=args.backend)
    began = time.monotonic()
    scores = evaluate_on_msra(pool.predict_batch, args.limit)
    print(format_scores(scores))
    print(f"\n{scores['ALL'].gold} gold entities, scored in {time.monotonic() - began:.1f} s")


if __name__ == "__main__":
    main()
