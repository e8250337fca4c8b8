"""HTTP /ner throughput and latency: raner-pool against the seed-style pipeline server, same FastAPI + uvicorn
stack, same sentences, 16 (or --callers) concurrent keep-alive clients, measured in one run.

    python bench/over_http.py [--model default] [--pool-size 2] [--callers 16] [--seconds 8]

Light httpx threads drive the load rather than locust, so the client takes little of the 2 cores.
"""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.run import Result, drive  # noqa: E402
from raner_pool.corpus import load_msra  # noqa: E402
from raner_pool.server.launch import free_port, launched  # noqa: E402


def measure(url: str, name: str, texts: list[str], callers: int, seconds: float) -> Result:
    local = threading.local()

    def post(text: str) -> object:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=60)
        response = local.client.post("/ner", json={"text": text})
        response.raise_for_status()
        return response.json()

    post(texts[0])
    result = drive(name, post, texts, callers, seconds)
    print(f"| {name} | {callers} | {result.rps:.1f} | {result.percentile(50):.0f} | {result.percentile(99):.0f} |",
          flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--pool-size", type=int, default=2)
    parser.add_argument("--callers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--out", type=Path, default=Path("artifacts/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    texts = [s.text for s in load_msra("test", 2000) if s.text]
    config = args.out / "http.toml"
    config.write_text(f'[models.raner-default]\nmodel = "{args.model}"\npool_size = {args.pool_size}\n')
    print("| server | clients | req/s | P50 ms | P99 ms |\n| --- | ---: | ---: | ---: | ---: |")
    results: dict[str, Result] = {}
    port = free_port()
    command = [sys.executable, "-m", "raner_pool.cli", "serve", "--config", str(config), "--port", str(port)]
    with launched(command, port, args.out / "http-raner.log") as url:
        results["ours"] = measure(url, f"raner-pool, pool_size={args.pool_size}", texts, args.callers, args.seconds)
    port = free_port()
    command = [sys.executable, str(ROOT / "loadtest" / "seed_server.py"), "--port", str(port),
               "--pool-size", str(args.pool_size), "--model", args.model]
    with launched(command, port, args.out / "http-seed.log") as url:
        results["seed"] = measure(url, f"seed-style, pool of {args.pool_size} pipelines", texts, args.callers,
                                  args.seconds)
    ours, seed = results["ours"], results["seed"]
    print(f"\nraner-pool / seed-style: {ours.rps / seed.rps:.1f}x requests/s, "
          f"P99 {ours.percentile(99) / seed.percentile(99):.2f}x")


if __name__ == "__main__":
    main()
