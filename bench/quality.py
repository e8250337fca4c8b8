"""MSRA test F1 of one model under each backend: what ONNX export and INT8 quantization cost in accuracy.

    python bench/quality.py [--model default] [--limit N]
"""

from __future__ import annotations

import argparse
import time

from raner_pool import RaNERModelPool
from raner_pool.evaluation import evaluate_on_msra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    print("| backend | precision | recall | F1 | F1 change (points) | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    reference = None
    for backend in ("modelscope", "onnx", "onnx-int8"):
        pool = RaNERModelPool(args.model, pool_size=1, backend=backend)
        began = time.monotonic()
        overall = evaluate_on_msra(pool.predict_batch, args.limit)["ALL"]
        reference = overall.f1 if reference is None else reference
        print(f"| {backend} | {overall.precision:.4f} | {overall.recall:.4f} | {overall.f1:.4f} | "
              f"{(overall.f1 - reference) * 100:+.2f} | {time.monotonic() - began:.0f} |", flush=True)


if __name__ == "__main__":
    main()
