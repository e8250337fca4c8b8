"""Users' annotated files in every format the trainer reads: the same examples from each, the format found from
the content, and every problem refused with the file and line (or task id) named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raner_pool.training import DataError, Span, read_examples
from raner_pool.training.readers import detect_format

TEXT = "华为Mate60在北京发布。"
SPANS = (Span(0, 2, "BRAND"), Span(2, 8, "PRODUCT"), Span(9, 11, "LOC"))
EMPTY = "今天下雨。"


def conll(tags: list[str]) -> str:
    lines = [f"{char} {tag}" for char, tag in zip(TEXT, tags, strict=True)]
    return "\r\n".join([*lines, "", *(f"{c}\tO" for c in EMPTY), ""])


BMES = ["B-BRAND", "E-BRAND", "B-PRODUCT", "M-PRODUCT", "M-PRODUCT", "M-PRODUCT", "M-PRODUCT", "E-PRODUCT", "O",
        "B-LOC", "E-LOC", "O", "O", "O"]
BIOES = [t.replace("M-", "I-") for t in BMES]
BIO = [t.replace("M-", "I-").replace("E-", "I-") for t in BMES]

NER_JSONL = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
    {"text": TEXT, "entities": [{"start": s.start, "end": s.end, "type": s.type, "span": TEXT[s.start:s.end],
                                 "prob": 0.9} for s in SPANS]},
    {"text": EMPTY, "entities": []},
])
DOCCANO = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
    {"id": 1, "text": TEXT, "label": [[s.start, s.end, s.type] for s in SPANS]},
    {"id": 2, "text": EMPTY, "label": []},
])
DOCCANO_ENTITIES = "\n".join(json.dumps(r, ensure_ascii=False) for r in [
    {"id": 1, "text": TEXT, "entities": [{"id": i, "start_offset": s.start, "end_offset": s.end, "label": s.type}
                                         for i, s in enumerate(SPANS)], "relations": []},
    {"id": 2, "text": EMPTY, "entities": [], "relations": []},
])


def region(span: Span, text: str = TEXT) -> dict[str, object]:
    return {"id": f"r{span.start}", "from_name": "label", "to_name": "text", "type": "labels",
            "value": {"start": span.start, "end": span.end, "text": text[span.start:span.end], "labels": [span.type]}}


LABEL_STUDIO = json.dumps([
    {"id": 7, "data": {"text": TEXT}, "annotations": [
        {"id": 1, "was_cancelled": False, "created_at": "2026-12-01T10:00:00Z", "result": [region(SPANS[0])]},
        {"id": 2, "was_cancelled": False, "created_at": "2026-12-02T10:00:00Z",
         "result": [*(region(s) for s in SPANS), {"type": "choices", "value": {"choices": ["ok"]}}]},
        {"id": 3, "was_cancelled": True, "created_at": "2026-12-03T10:00:00Z", "result": []},
    ]},
    {"id": 8, "data": {"text": EMPTY}, "annotations": [{"id": 4, "result": [], "created_at": "2026-12-01"}]},
    {"id": 9, "data": {"text": "没有标注"}, "annotations": [], "predictions": [{"result": []}]},
], ensure_ascii=False)

FORMS = {"bmes.txt": conll(BMES), "bioes.txt": conll(BIOES), "bio.txt": conll(BIO), "ner.jsonl": NER_JSONL,
         "doccano.jsonl": DOCCANO, "doccano-entities.jsonl": DOCCANO_ENTITIES, "export.json": LABEL_STUDIO}
EXPECTED_FORMAT = {"bmes.txt": "conll", "bioes.txt": "conll", "bio.txt": "conll", "ner.jsonl": "jsonl",
                   "doccano.jsonl": "doccano", "doccano-entities.jsonl": "doccano", "export.json": "label-studio"}


@pytest.mark.parametrize("name", list(FORMS))
def test_every_format_reads_to_the_same_examples(name: str, tmp_path: Path):
    path = tmp_path / name
    path.write_text(FORMS[name], encoding="utf-8")
    assert detect_format(path, FORMS[name]) == EXPECTED_FORMAT[name]
    examples = read_examples(path)
    assert [(e.text, e.spans) for e in examples] == [(TEXT, SPANS), (EMPTY, ())]
    assert examples[0].where.startswith(str(path))


def test_label_studio_uses_the_newest_annotation_that_was_not_cancelled(tmp_path: Path):
    path = tmp_path / "export.json"
    path.write_text(LABEL_STUDIO, encoding="utf-8")
    first = read_examples(path)[0]
    assert first.spans == SPANS  # annotation 2 (the newest kept), not 1 (older) nor 3 (cancelled)
    assert first.where == f"{path}: task 7"


BAD_INPUTS = {
    "offsets out of range": ("bad.jsonl", '{"text": "马云", "entities": [{"start": 0, "end": 5, "type": "PER"}]}',
                             ":1: entity 1 (PER) has offsets 0-5, out of range"),
    "span text does not match": (
        "bad.jsonl", '{"text": "马云在杭州", "entities": []}\n'
                     '{"text": "马云在杭州", "entities": [{"start": 0, "end": 2, "type": "PER", "span": "杭州"}]}',
        ":2: entity 1 (PER) says its text is '杭州' but offsets 0-2 hold '马云'"),
    "overlapping spans": ("bad.jsonl", '{"text": "华为Mate60", "label": [[0, 2, "BRAND"], [1, 8, "PRODUCT"]]}',
                          ":1: entities overlap: BRAND 0-2 ('华为') and PRODUCT 1-8"),
    "unknown tag scheme": ("bad.txt", "马 B-PER\n云 E-PER\n\n杭 X-LOC\n州 Y-LOC\n", ":4: unknown tag 'X-LOC'"),
    "empty file": ("bad.jsonl", "\n  \n", ": the file is empty"),
    "not JSON": ("bad.jsonl", '{"text": "a", "entities": []}\n{"text": oops}', ":2: not valid JSON"),
    "no text field": ("bad.jsonl", '{"entities": []}', ":1: no 'text' field"),
    "two characters on a line": ("bad.txt", "马云 B-PER\n", ":1: '马云' is not one character"),
    "Label Studio span text": (
        "bad.json", json.dumps([{"id": 42, "data": {"text": "马云在杭州"}, "annotations": [{"result": [
            {"type": "labels", "value": {"start": 3, "end": 5, "text": "马云", "labels": ["LOC"]}}]}]}],
            ensure_ascii=False),
        ": task 42: entity 1 (LOC) says its text is '马云'"),
    "doccano offsets not integers": ("bad.jsonl", '{"text": "马云", "label": [["0", 2, "PER"]]}',
                                     ":1: entity 1 has offsets '0', 2: not integers"),
}


@pytest.mark.parametrize("problem", list(BAD_INPUTS))
def test_every_bad_input_is_refused_naming_the_file_and_line(problem: str, tmp_path: Path):
    name, content, message = BAD_INPUTS[problem]
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_examples(path)
    assert str(error.value).startswith(str(path))
    assert message in str(error.value)


def test_a_forced_format_wins_over_detection(tmp_path: Path):
    path = tmp_path / "data.txt"
    path.write_text(NER_JSONL, encoding="utf-8")
    assert len(read_examples(path, "jsonl")) == 2
    with pytest.raises(DataError, match="unknown format 'csv'"):
        read_examples(path, "csv")
