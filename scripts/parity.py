"""Engine vs ModelScope pipeline on every MSRA test sentence: prints the agreement.

    python scripts/parity.py [--model DIR] [--limit N]
"""

from __future__ import annotations

import argparse
import time

from raner_pool.corpus import load_msra
from raner_pool.hub import resolve_model_dir
from raner_pool.parity import compare_with_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    texts = [s.text for s in load_msra("test", args.limit)]
    began = time.monotonic()
    report = compare_with_pipeline(resolve_model_dir(args.model), texts)
    print(
        f"{report.identical}/{report.compared} sentences identical ({report.agreement:.2%}); "
        f"pipeline failed on {report.pipeline_failed}; "
        f"{time.monotonic() - began:.0f} s"
    )
    for text, theirs, ours in report.mismatches[:10]:
        print(f"- {text}\n  pipeline: {theirs}\n  engine:   {ours}")


if __name__ == "__main__":
    main()
