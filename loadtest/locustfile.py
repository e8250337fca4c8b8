"""Load mix for raner-pool: /ner, /ner/batch and /v1/chat/completions with MSRA sentences and long articles.

    locust -f loadtest/locustfile.py --host http://127.0.0.1:8000
Set RANER_LOADTEST_ROUTES=ner to load /ner only (what the seed-style baseline server offers).
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

from raner_pool.corpus import load_msra

SENTENCES = [s.text for s in load_msra("test", 2000) if s.text]
ARTICLES = ["".join(SENTENCES[i : i + 30]) for i in range(0, 600, 30)]  # ~1,500 characters each
ONLY_NER = os.environ.get("RANER_LOADTEST_ROUTES") == "ner"


def some_text() -> str:
    """Nine in ten requests carry one sentence, one in ten a long article."""
    return random.choice(ARTICLES) if random.random() < 0.1 else random.choice(SENTENCES)


class NERUser(HttpUser):
    wait_time = between(0, 0.05)

    @task(6)
    def ner(self) -> None:
        self.client.post("/ner", json={"text": some_text()}, name="/ner")

    @task(2)
    def ner_batch(self) -> None:
        if ONLY_NER:
            return self.ner()
        self.client.post("/ner/batch", json={"texts": [random.choice(SENTENCES) for _ in range(8)]}, name="/ner/batch")
        return None

    @task(2)
    def chat(self) -> None:
        if ONLY_NER:
            return self.ner()
        body = {"model": "raner-default", "messages": [{"role": "user", "content": some_text()}]}
        self.client.post("/v1/chat/completions", json=body, name="/v1/chat/completions")
        return None
