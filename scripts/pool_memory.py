"""Resident memory of a process holding a RaNERModelPool of size 1 and of size 4.

Each size is measured in a fresh subprocess: peak RSS after loading and serving
calls from as many threads as the pool has instances, so the figures do not leak into each other.

    python scripts/pool_memory.py [--model default]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys
from concurrent.futures import ThreadPoolExecutor
from raner_pool import RaNERModelPool
size = int(sys.argv[2])
pool = RaNERModelPool(sys.argv[1], pool_size=size)
texts = ["阿里巴巴集团创始人马云在杭州出席了技术峰会。" * 4] * 16
with ThreadPoolExecutor(size) as callers:  # every instance busy at once
    list(callers.map(lambda _: pool.predict_batch(texts), range(4 * size)))
print(json.dumps({"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def peak_rss_mb(model: str, pool_size: int) -> float:
    command = [sys.executable, "-c", CHILD, model, str(pool_size)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    one, four = peak_rss_mb(args.model, 1), peak_rss_mb(args.model, 4)
    print(f"peak RSS pool_size=1: {one:.0f} MB; pool_size=4: {four:.0f} MB; ratio {four / one:.3f}")


if __name__ == "__main__":
    main()
