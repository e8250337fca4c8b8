"""doccano both ways: `annotate --output-format doccano` writes its import JSONL (which `train` reads back), and its
auto-labeling ("Custom REST Request" with deploy/doccano/request.json and ner-mapping.jinja2) run by doccano's own
auto-labeling code (PyPI `auto-labeling-pipeline`) against a real server gives /ner's entities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from auto_labeling_pipeline.labels import SequenceLabels
from auto_labeling_pipeline.mappings import MappingTemplate
from auto_labeling_pipeline.models import CustomRESTRequestModel
from auto_labeling_pipeline.pipeline import pipeline
from auto_labeling_pipeline.postprocessing import PostProcessor

from raner_pool.cli import main
from raner_pool.training import read_examples

from .server_process import STOP_AT_ONCE, RunningServer, running_server

DOCCANO = Path(__file__).resolve().parents[1] / "deploy" / "doccano"
TEXTS = ["阿里巴巴集团创始人马云在杭州出席了技术峰会。", "😀马云🇨🇳在上海，2023年11月2日晚上8点见了刘德华。",
         "今天天气很好。"]
PROJECT_LABELS = {"PER": "人名", "LOC": "地名", "ORG": "机构名", "TIME": "时间"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("doccano-server")
    config = root / "models.toml"
    config.write_text(f'{STOP_AT_ONCE}\n[models.news]\nmodel = "default"\n', encoding="utf-8")
    with running_server(config, root / "server.log") as running:
        yield running


def test_doccanos_auto_labeling_code_calls_ner_with_the_documented_config(server: RunningServer):
    request = json.loads((DOCCANO / "request.json").read_text(encoding="utf-8"))
    request["url"] = f"{server.url}/ner"
    template = (DOCCANO / "ner-mapping.jinja2").read_text(encoding="utf-8")
    seen = 0
    for text in TEXTS:
        model = CustomRESTRequestModel(**json.loads(json.dumps(request)))  # its send() edits the body in place
        labels = pipeline(text, model, MappingTemplate(SequenceLabels, template), PostProcessor(PROJECT_LABELS))
        got = sorted((label["start_offset"], label["end_offset"], label["label"]) for label in labels.dict())
        found = httpx.post(f"{server.url}/ner", json={"text": text}).json()["data"]
        assert got == sorted((e["start"], e["end"], PROJECT_LABELS[e["type"]]) for e in found
                             if e["type"] in PROJECT_LABELS)
        seen += len(got)
    assert seen >= 6


def test_annotate_writes_doccanos_import_format_and_train_reads_it_back(tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(TEXTS) + "\n", encoding="utf-8")
    out = tmp_path / "pre-annotated.jsonl"
    assert main(["annotate", str(corpus), "-o", str(out), "--output-format", "doccano"]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [set(r) for r in records] == [{"text", "label"}] * len(TEXTS)
    assert [r["text"] for r in records] == TEXTS
    assert [1, 3, "PER"] in records[1]["label"]  # code points: the emoji is one
    examples = read_examples(out)  # found to be doccano's format from the content
    assert [[(s.start, s.end, s.type) for s in e.spans] for e in examples] == [
        [tuple(label) for label in r["label"]] for r in records]
