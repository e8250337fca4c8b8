"""The spaCy component `raner_ner` with the real spaCy: registered by entry point, the same entities as the pool,
aligned to jieba's words as well as to characters, existing entities kept, one call per batch in `nlp.pipe`, a
running server as the source, and its config kept by `to_disk` / `spacy.load`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import spacy
from spacy.tokens import Span

from raner_pool import Entity, RaNERModelPool
from raner_pool.integrations.spacy_component import set_entities

from .server_process import STOP_AT_ONCE, RunningServer, running_server

TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
    "😀马云🇨🇳在上海，2023年11月2日晚上8点见了刘德华。",
    "今天天气很好。",
]


def ents(doc: spacy.tokens.Doc) -> list[tuple[int, int, str]]:
    return [(e.start_char, e.end_char, e.label_) for e in doc.ents]


@pytest.fixture(scope="module")
def expected() -> list[list[Entity]]:
    with RaNERModelPool("default", pool_size=1) as pool:
        return pool.predict_batch(TEXTS)


def test_character_docs_get_the_pools_entities(expected: list[list[Entity]]):
    nlp = spacy.blank("zh")
    nlp.add_pipe("raner_ner", config={"model": "default"})
    for text, found in zip(TEXTS, expected, strict=True):
        doc = nlp(text)
        assert ents(doc) == [(e.start, e.end, e.type) for e in found]
        for span, entity in zip(doc.ents, found, strict=True):
            assert (span._.raner_prob, span._.raner_value, span._.raner_source) == (entity.prob, entity.value,
                                                                                     entity.source)
    assert any(e.source == "rule" for found in expected for e in found)  # TIME, with its value, came through


def test_jieba_words_are_expanded_to_cover_each_entity(expected: list[list[Entity]]):
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    nlp.add_pipe("raner_ner")
    for doc, found in zip(nlp.pipe(TEXTS), expected, strict=True):
        assert doc.ents, doc.text if found else None
        for span in doc.ents:  # each span is whole words covering one entity of the pool
            assert any(span.start_char <= e.start and e.end <= span.end_char and span.label_ == e.type
                       for e in found)
        assert len(doc.ents) <= len(found)


def test_entities_already_there_are_kept():
    nlp = spacy.blank("zh")
    nlp.add_pipe("raner_ner")
    doc = nlp.make_doc(TEXTS[0])
    doc.ents = [Span(doc, 9, 11, label="FOUNDER")]  # 马云
    doc = nlp.get_pipe("raner_ner")(doc)
    assert ents(doc) == [(0, 6, "ORG"), (9, 11, "FOUNDER"), (12, 14, "LOC")]


def test_what_cannot_be_aligned_is_named_in_one_warning():
    nlp = spacy.blank("zh")
    doc = nlp.make_doc("马云在杭州")
    with pytest.warns(UserWarning, match="1 entities could not be aligned.*ORG '阿里' at 40-42"):
        set_entities(doc, [Entity("PER", 0, 2, "马云", 0.9), Entity("ORG", 40, 42, "阿里", 0.5)])
    assert ents(doc) == [(0, 2, "PER")]


def test_pipe_sends_one_batch_per_batch_size(expected: list[list[Entity]]):
    nlp = spacy.blank("zh")
    component = nlp.add_pipe("raner_ner", config={"batch_size": 3})
    calls: list[int] = []
    real = component._entities

    def counted(texts: list[str]) -> list[list[Entity]]:
        calls.append(len(texts))
        return real(texts)

    component._entities = counted  # type: ignore[method-assign]
    docs = list(nlp.pipe(TEXTS))
    assert calls == [3, 1]
    assert [ents(d) for d in docs] == [[(e.start, e.end, e.type) for e in found] for found in expected]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("spacy-server")
    config = root / "models.toml"
    config.write_text(f'{STOP_AT_ONCE}\n[models.news]\nmodel = "default"\n', encoding="utf-8")
    with running_server(config, root / "server.log", env={"RANER_POOL_API_KEYS": "spacy-key"}) as running:
        yield running


def test_a_running_server_is_a_source_and_to_disk_keeps_the_config(
    server: RunningServer, expected: list[list[Entity]], tmp_path: Path
):
    nlp = spacy.blank("zh")
    nlp.add_pipe("raner_ner", config={"url": server.url, "model": "news", "api_key": "spacy-key"})
    assert [ents(d) for d in nlp.pipe(TEXTS)] == [[(e.start, e.end, e.type) for e in f] for f in expected]
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    component = loaded.get_pipe("raner_ner")
    assert (component.url, component.model, component.api_key) == (server.url, "news", "spacy-key")
    assert ents(loaded(TEXTS[0])) == [(e.start, e.end, e.type) for e in expected[0]]
    nlp.get_pipe("raner_ner").api_key = "wrong"
    with pytest.raises(Exception, match="answered 401"):
        nlp(TEXTS[0])
