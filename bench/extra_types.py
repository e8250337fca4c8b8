"""The extra types (TIME, MONEY, PERCENT, TITLE): exact-match precision, recall and F1 on the hand-written
sentences of tests/data (two sets the rules were refined against, and a held-out one), how often a matched value
is right, and what they cost: /ner on a 43-character sentence with them on and off, sequentially and at 16
clients, against one server holding the default model twice (extra_types on, and off).

    python bench/extra_types.py [--speed-only | --quality-only] [--seconds 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from raner_pool import RaNERModelPool  # noqa: E402
from raner_pool.evaluation import evaluate_extra_types, format_scores  # noqa: E402
from raner_pool.recognizers import EXTRA_TYPES  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402

DATA = ROOT / "tests" / "data"
SETS = {"refined against (first set)": DATA / "extra_types.jsonl",
        "refined against (second set, held out until 2026-12-02)": DATA / "extra_types_holdout.jsonl",
        "held out (third set)": DATA / "extra_types_fresh.jsonl"}
SENTENCE = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"
REGISTRY = """[server]
grace_s = 0
[models.on]
model = "default"
pool_size = 2
[models.off]
model = "default"
pool_size = 2
extra_types = []
"""


def quality() -> None:
    with RaNERModelPool("default", pool_size=1) as pool:
        for name, path in SETS.items():
            scores, values = evaluate_extra_types(pool.predict_batch, path, EXTRA_TYPES)
            print(f"\n{name}: {path.relative_to(ROOT)}\n")
            print(format_scores(scores))
            print("\n| type | values right | right / scored |\n| --- | --- | --- |")
            for value in values.values():
                print(f"| {value.type} | {value.accuracy:.4f} | {value.right} / {value.scored} |")


def requests_per_s(url: str, model: str, clients: int, seconds: float) -> float:
    done = [0] * clients
    stop = time.perf_counter() + seconds

    def client(index: int) -> None:
        with httpx.Client(base_url=url, timeout=30) as http:
            while time.perf_counter() < stop:
                response = http.post("/ner", json={"text": SENTENCE, "model": model})
                assert response.status_code == 200, response.text
                done[index] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def speed(seconds: float) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        config = Path(scratch) / "models.toml"
        config.write_text(REGISTRY, encoding="utf-8")
        port = free_port()
        command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port)]
        with launched(command, port, Path(scratch) / "server.log") as url:
            for model in ("on", "off"):
                requests_per_s(url, model, 4, 1.0)  # warm
            print(f"\n/ner, {len(SENTENCE)}-character sentence, {seconds:g} s each\n")
            print("| clients | types on (req/s) | types off (req/s) | on / off |\n| --- | --- | --- | --- |")
            for clients in (1, 16):
                on = requests_per_s(url, "on", clients, seconds)
                off = requests_per_s(url, "off", clients, seconds)
                print(f"| {clients} | {on:.0f} | {off:.0f} | {on / off:.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed-only", action="store_true")
    parser.add_argument("--quality-only", action="store_true")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    if not args.speed_only:
        quality()
    if not args.quality_only:
        speed(args.seconds)


if __name__ == "__main__":
    main()
