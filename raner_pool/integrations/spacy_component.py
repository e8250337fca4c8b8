"""A spaCy pipeline component, `raner_ner`, registered through the `spacy_factories` entry point (extra `spacy`):

    nlp = spacy.blank("zh")
    nlp.add_pipe("raner_ner", config={"model": "default"})                      # a pool in this process
    nlp.add_pipe("raner_ner", config={"url": "http://127.0.0.1:8000", "model": "news"})  # a running server

It sets `Doc.ents` (entities already there are kept; new ones that overlap them are dropped, and among themselves
`spacy.util.filter_spans` rules) and puts `prob`, `value` and `source` on `span._.raner_prob`, `span._.raner_value`
and `span._.raner_source`. Entities are aligned with `doc.char_span(..., alignment_mode="expand")`, so word
segmenters (jieba, pkuseg) work as well as spaCy's default character one; what cannot be aligned is named in one
warning per doc. `nlp.pipe` sends a batch at a time: one `predict_batch`, or one `/ner/batch` request.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans, minibatch

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError

EXTENSIONS = ("raner_prob", "raner_value", "raner_source")
for _name in EXTENSIONS:
    if not Span.has_extension(_name):
        Span.set_extension(_name, default=None)


class RaNERComponent:
    """Entities from a RaNER model, in-process or from a server, onto spaCy docs."""

    def __init__(self, name: str, model: str, url: str | None, api_key: str | None, batch_size: int,
                 timeout_s: float) -> None:
        self.name, self.model, self.url, self.api_key = name, model, url, api_key
        self.batch_size, self.timeout_s = batch_size, timeout_s
        self._pool: Any = None

    def _entities(self, texts: list[str]) -> list[list[Entity]]:
        if self.url:
            return self._from_server(texts)
        if self._pool is None:
            from raner_pool.pool import RaNERModelPool

            self._pool = RaNERModelPool(self.model, pool_size=1)
        found: list[list[Entity]] = self._pool.predict_batch(texts)
        return found

    def _from_server(self, texts: list[str]) -> list[list[Entity]]:
        import httpx

        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        body: dict[str, Any] = {"texts": texts}
        if self.model != "default":
            body["model"] = self.model
        response = httpx.post(f"{self.url.rstrip('/')}/ner/batch", json=body, headers=headers,  # type: ignore
                              timeout=self.timeout_s)
        if response.status_code != 200:
            raise RaNERError(f"raner_ner: {self.url} answered {response.status_code}: {response.text[:500]}")
        return [[Entity(e["type"], e["start"], e["end"], e["span"], e["prob"], e.get("value"), e.get("source",
                                                                                                        "model"))
                 for e in found] for found in response.json()["data"]]

    def __call__(self, doc: Doc) -> Doc:
        [entities] = self._entities([doc.text])
        return set_entities(doc, entities)

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        """`nlp.pipe`'s batches, cut to the component's `batch_size` (one model call or request each)."""
        for batch in minibatch(stream, size=min(batch_size or self.batch_size, self.batch_size)):
            docs = list(batch)
            yield from (set_entities(doc, found) for doc, found in
                        zip(docs, self._entities([d.text for d in docs]), strict=True))


def set_entities(doc: Doc, entities: list[Entity]) -> Doc:
    """`entities` onto `doc.ents`, keeping the entities already there; one warning for what cannot be aligned."""
    spans, misaligned = [], []
    for entity in entities:
        span = doc.char_span(entity.start, entity.end, label=entity.type, alignment_mode="expand")
        if span is None or not span.text.strip():
            misaligned.append(f"{entity.type} {entity.span!r} at {entity.start}-{entity.end}")
            continue
        span._.raner_prob, span._.raner_value, span._.raner_source = entity.prob, entity.value, entity.source
        spans.append(span)
    existing = list(doc.ents)
    taken = {i for span in existing for i in range(span.start, span.end)}
    new = filter_spans([s for s in spans if not taken.intersection(range(s.start, s.end))])
    doc.ents = sorted([*existing, *new], key=lambda s: s.start)
    if misaligned:
        warnings.warn(f"raner_ner: {len(misaligned)} entities could not be aligned to the tokens of a doc: "
                      f"{'; '.join(misaligned)}", stacklevel=2)
    return doc


@Language.factory("raner_ner", default_config={"model": "default", "url": None, "api_key": None, "batch_size": 64,
                                               "timeout_s": 60.0})
def make_raner_ner(nlp: Language, name: str, model: str, url: str | None, api_key: str | None, batch_size: int,
                   timeout_s: float) -> RaNERComponent:
    """The `raner_ner` factory: `model` is a served model's name with `url`, else a model for a pool here."""
    return RaNERComponent(name, model, url, api_key, batch_size, timeout_s)
