"""Users' dictionaries at scale: build a 100,000-entry TSV dictionary, time loading it (the Aho-Corasick automaton)
and matching it over 1 MB of text, and count the matches.

    python bench/dictionaries.py [--entries 100000] [--megabytes 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool.recognizers.user_rules import DictionaryRecognizer  # noqa: E402

CHARS = "".join(chr(0x4E00 + i) for i in range(0, 3000, 3))
"""A thousand CJK characters to build terms and filler text from."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--megabytes", type=float, default=1.0)
    args = parser.parse_args()
    rng = random.Random(0)
    terms = {"".join(rng.choices(CHARS, k=rng.randint(3, 6))) for _ in range(args.entries * 2)}
    terms_list = sorted(terms)[: args.entries]
    pieces, size = [], 0
    while size < args.megabytes * 1_000_000:  # filler with a dictionary term every ~20 characters
        piece = "".join(rng.choices(CHARS, k=rng.randint(10, 30))) + rng.choice(terms_list)
        pieces.append(piece)
        size += len(piece.encode("utf-8"))
    text = "".join(pieces)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "terms.tsv"
        path.write_text("".join(f"{term}\tTERM\t{i}\n" for i, term in enumerate(terms_list)), encoding="utf-8")
        began = time.perf_counter()
        recognizer = DictionaryRecognizer([path])
        loaded = time.perf_counter() - began
    began = time.perf_counter()
    matches = recognizer.recognize(text, datetime.now())
    matched = time.perf_counter() - began
    size = len(text.encode("utf-8")) / 1e6
    print(f"{len(terms_list):,} entries loaded in {loaded:.2f} s (goal < 5 s)")
    print(f"{size:.2f} MB of text ({len(text):,} characters) matched in {matched:.2f} s (goal < 1 s): "
          f"{len(matches):,} matches")


if __name__ == "__main__":
    main()
