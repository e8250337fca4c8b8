"""End to end on the shipped default model: real entities, MSRA quality, parity with ModelScope."""

from __future__ import annotations

from raner_pool import DEFAULT_MODEL_DIR, RaNERModelPool
from raner_pool.corpus import load_msra
from raner_pool.evaluation import evaluate_on_msra
from raner_pool.parity import compare_with_pipeline

from .test_cli import raner_pool


def test_the_readme_example(default_pool: RaNERModelPool):
    entities = default_pool.predict("阿里巴巴集团创始人马云在杭州出席了技术峰会。")
    assert [(e.type, e.start, e.end, e.span) for e in entities] == [
        ("ORG", 0, 6, "阿里巴巴集团"),
        ("PER", 9, 11, "马云"),
        ("LOC", 12, 14, "杭州"),
    ]
    assert all(0.5 < e.prob <= 1.0 for e in entities)


def test_quality_on_an_msra_test_sample(default_pool: RaNERModelPool):
    scores = evaluate_on_msra(default_pool.predict_batch, limit=500)
    assert scores["ALL"].gold > 500
    assert scores["ALL"].f1 > 0.85, scores["ALL"]


def test_parity_with_the_modelscope_pipeline(default_pool: RaNERModelPool):
    texts = [s.text for s in load_msra("test", 150)]
    report = compare_with_pipeline(DEFAULT_MODEL_DIR, texts, default_pool)
    assert report.compared == len(texts) and report.pipeline_failed == 0
    assert report.mismatches == []
    assert report.max_prob_gap < 1e-4


def test_long_text_entities_across_windows(default_pool: RaNERModelPool):
    sentence = "阿里巴巴集团创始人马云在杭州出席了技术峰会。"
    text = sentence * 60  # 1,320 characters: three windows of 510
    entities = default_pool.predict(text)
    assert len(entities) == 3 * 60
    for k in range(60):
        assert entities[3 * k + 1].start == k * len(sentence) + 9 and entities[3 * k + 1].span == "马云"


def test_eval_command_prints_the_table():
    result = raner_pool("eval", "--limit", "100")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("| type | precision | recall | F1 |")
    assert "| ALL |" in result.stdout and "| PER |" in result.stdout
