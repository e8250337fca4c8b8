"""MSRA test F1 of one model under each backend and number format: what ONNX export, INT8 quantization and
bfloat16 cost in accuracy, and how many entities each finds exactly as float32 PyTorch does.

    python bench/quality.py [--model default] [--limit N]
"""

from __future__ import annotations

import argparse
import time

from raner_pool import RaNERError, RaNERModelPool
from raner_pool.choices.runtime import agreement
from raner_pool.entities import Entity
from raner_pool.evaluation import evaluate_on_msra

FORMATS = (("modelscope", "float32"), ("modelscope", "bfloat16"), ("onnx", "float32"), ("onnx-int8", "float32"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--limit", type=int, default=None)
    args = parser.parse_args()
    print("| backend | dtype | precision | recall | F1 | F1 change (points) | entity parity with float32 | seconds |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    reference_f1: float | None = None
    reference: list[list[Entity]] | None = None
    for backend, dtype in FORMATS:
        try:
            pool = RaNERModelPool(args.model, pool_size=1, backend=backend, dtype=dtype)
        except RaNERError as error:
            print(f"| {backend} | {dtype} | refused: {error} | | | | | |", flush=True)
            continue
        answers: list[list[Entity]] = []

        def predict_batch(texts: list[str], pool: RaNERModelPool = pool,
                          answers: list[list[Entity]] = answers) -> list[list[Entity]]:
            found = pool.predict_batch(texts)
            answers.extend(found)
            return found

        began = time.monotonic()
        overall = evaluate_on_msra(predict_batch, args.limit)["ALL"]
        reference_f1 = overall.f1 if reference_f1 is None else reference_f1
        reference = answers if reference is None else reference
        print(f"| {backend} | {dtype} | {overall.precision:.4f} | {overall.recall:.4f} | {overall.f1:.4f} | "
              f"{(overall.f1 - reference_f1) * 100:+.2f} | {agreement(reference, answers):.2%} | "
              f"{time.monotonic() - began:.0f} |", flush=True)
        pool.close()


if __name__ == "__main__":
    main()
