"""The seed documents' server design, for comparison only: N ModelScope pipelines in a queue.Queue, one request
per check-out, behind the same FastAPI + uvicorn stack as raner-pool.

    python loadtest/seed_server.py --port 8001 --pool-size 4 [--model default]
"""

from __future__ import annotations

import argparse
import queue
import time
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from raner_pool.hub import resolve_model_dir


class NERRequest(BaseModel):
    text: str


def create_app(model: str, pool_size: int) -> FastAPI:
    from modelscope.pipelines import pipeline

    model_dir = str(resolve_model_dir(model))
    idle: queue.Queue[Any] = queue.Queue()
    for _ in range(pool_size):
        idle.put(pipeline("named-entity-recognition", model=model_dir, device="cpu"))
    app = FastAPI(title="seed-style baseline")

    @app.post("/ner")
    def ner(body: NERRequest) -> dict[str, Any]:
        began = time.perf_counter()
        instance = idle.get()
        try:
            output = instance(body.text)["output"] if body.text else []
        finally:
            idle.put(instance)
        data = [{"type": d["type"], "start": int(d["start"]), "end": int(d["end"]), "span": d["span"],
                 "prob": float(d["prob"])} for d in output]
        return {"success": True, "data": data, "elapsed_ms": (time.perf_counter() - began) * 1000}

    @app.get("/ready")
    def ready() -> dict[str, bool]:
        return {"ready": True}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    parser.add_argument("--pool-size", type=int, default=4)
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(create_app(args.model, args.pool_size), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
