"""Issue 22's stop goal, measured: `serve --workers 4` with 16 long `/ner` requests in flight, stopped RUNS times
each by SIGTERM to the supervisor, SIGTERM to the whole process group and SIGINT to the group; prints how many of
the 16 were answered in each run. The scenario is tests/test_workers.py's (run there once per way).

    python loadtest/stop_signals.py [--runs 10] [--model default]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.test_workers import stop_while_serving  # noqa: E402

WAYS = (("SIGTERM to PID 1 (the supervisor)", signal.SIGTERM, False),
        ("SIGTERM to the process group", signal.SIGTERM, True),
        ("SIGINT to the process group", signal.SIGINT, True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    print("| signal | answered of 16, each run | runs with 16/16 |\n| --- | --- | --- |")
    for name, sig, to_group in WAYS:
        answered = []
        for _ in range(args.runs):
            with tempfile.TemporaryDirectory() as scratch:
                answers = stop_while_serving(Path(args.model), Path(scratch), sig, to_group, 16)
            answered.append(sum(status == 200 for status in answers))
        print(f"| {name} | {', '.join(map(str, answered))} | {sum(a == 16 for a in answered)} / {args.runs} |",
              flush=True)


if __name__ == "__main__":
    main()
