"""`raner-pool rank`: a corpus ordered by the model's uncertainty, most uncertain first, pre-annotated, as JSONL or
doccano's import format; the uncertainty is the least sure character's, so it agrees with the entities' probs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raner_pool.cli import main

TEXTS = [
    "阿里巴巴集团创始人马云在杭州出席了技术峰会。",
    "今天天气很好。",
    "始祖鸟Alpha SV、李宁超轻21、鸿星尔克疾影2代横评，看完再下单！",
    "据说，刘德华平时生活在香港，但是他喜欢去北京钓鱼。",
    "这款咖啡不是禾谷田官方出品的，请大家注意辨别。",
]


def test_rank_orders_by_uncertainty_and_pre_annotates(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "next.jsonl"
    assert main(["rank", str(corpus), "--top", "3", "-o", str(out)]) == 0
    assert "3 of 5 texts" in capsys.readouterr().err
    ranked = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(ranked) == 3
    uncertainties = [r["uncertainty"] for r in ranked]
    assert uncertainties == sorted(uncertainties, reverse=True) and all(0 <= u <= 1 for u in uncertainties)
    for record in ranked:
        assert record["text"] == TEXTS[record["line"] - 1]
        for entity in record["entities"]:
            assert record["text"][entity["start"] : entity["end"]] == entity["span"]
            if entity["source"] == "model":  # an entity as unsure as p leaves the text at least 1 - p uncertain
                assert record["uncertainty"] >= 1 - entity["prob"] - 1e-6

    jsonl = tmp_path / "corpus.jsonl"
    jsonl.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in TEXTS), encoding="utf-8")
    everything, doccano = tmp_path / "all.jsonl", tmp_path / "next.doccano.jsonl"
    assert main(["rank", str(jsonl), "--top", "10", "-o", str(everything)]) == 0
    assert main(["rank", str(jsonl), "--top", "10", "-o", str(doccano), "--output-format", "doccano"]) == 0
    full = [json.loads(line) for line in everything.read_text(encoding="utf-8").splitlines()]
    records = [json.loads(line) for line in doccano.read_text(encoding="utf-8").splitlines()]
    assert [r["text"] for r in full][:3] == [r["text"] for r in ranked] and full[-1]["text"] == TEXTS[1]
    assert [r["text"] for r in records] == [r["text"] for r in full]
    assert [r["label"] for r in records] == [[[e["start"], e["end"], e["type"]] for e in r["entities"]] for r in full]
    assert all(set(r) == {"text", "label"} for r in records)


@pytest.mark.parametrize(("content", "message"), [
    ("", "the file is empty"),
    ('{"text": "a"}\n{"body": "b"}\n', ":2: expected an object with a 'text' string"),
    ('{"text": "a"}\n{oops\n', ":2: not valid JSON"),
])
def test_rank_refuses_bad_input_naming_the_line(content: str, message: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]):
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(content, encoding="utf-8")
    assert main(["rank", str(corpus), "-o", str(tmp_path / "out.jsonl")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.jsonl").exists()
