"""Entity types beyond the model's: TIME, MONEY, PERCENT and TITLE by rules, merged with the model's entities,
with the span conventions and values README's "Entity types" documents, on the library path."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from raner_pool import Entity, RaNERError, RaNERModelPool
from raner_pool.cache import LRUCache
from raner_pool.evaluation import evaluate_extra_types
from raner_pool.recognizers import EXTRA_TYPES, RuleSet
from raner_pool.recognizers.merge import UNSURE, is_calendar_date, merge

DATA = Path(__file__).parent / "data"
SHANGHAI = ZoneInfo("Asia/Shanghai")
REFERENCE = datetime(2024, 3, 15, 10, 0, tzinfo=SHANGHAI)  # a Friday
DESIGN_SENTENCE = "2023年11月2日晚上8点，腾讯总裁刘炽平在深圳宣布追加投资2.8亿美元，营收同比增长百分之二十。"


@pytest.fixture(scope="module")
def rules() -> RuleSet:
    return RuleSet(EXTRA_TYPES)


def found(rules: RuleSet, text: str, model: list[Entity] | None = None) -> list[tuple[str, str, Any]]:
    return [(e.type, e.span, e.value) for e in rules.apply(text, model or [], REFERENCE) if e.source == "rule"]


def spans(rules: RuleSet, text: str, kind: str) -> list[str]:
    return [span for t, span, _ in found(rules, text) if t == kind]


def test_the_design_sentence_gives_all_four_types_with_values(default_pool: RaNERModelPool):
    entities = default_pool.predict(DESIGN_SENTENCE, reference_time=REFERENCE)
    by_span = {e.span: e for e in entities}
    assert {(e.type, e.span) for e in entities} >= {("TIME", "2023年11月2日晚上8点"), ("ORG", "腾讯"),
                                                    ("TITLE", "总裁"), ("MONEY", "2.8亿美元"),
                                                    ("PERCENT", "百分之二十")}
    assert by_span["2023年11月2日晚上8点"].value == {"kind": "point", "start": "2023-11-02T20:00:00+08:00",
                                                 "end": "2023-11-02T20:59:59+08:00", "grain": "hour",
                                                 "timezone": "Asia/Shanghai"}
    assert by_span["2.8亿美元"].value == {"amount": "280000000", "currency": "USD", "approx": None}
    assert by_span["百分之二十"].value == {"fraction": 0.2, "approx": None}
    assert by_span["总裁"].value is None and by_span["腾讯"].value is None
    assert {e.source for e in entities if e.type in EXTRA_TYPES} == {"rule"}
    assert {e.source for e in entities if e.type not in EXTRA_TYPES} == {"model"}
    assert all(e.span == DESIGN_SENTENCE[e.start : e.end] for e in entities)


@pytest.mark.parametrize(("text", "expected"), [
    ("自前年起，公司开始转型。", ["前年"]),
    ("从去年开始，他就住在上海。", ["去年"]),
    ("每周一上午10点开始例会。", ["每周一上午10点"]),
    ("两年来，他一直在北京。", ["两年"]),
    ("主任让我们今天下午5点前把报告交上去。", ["今天下午5点"]),
    ("冬季达沃斯论坛将于下个月举行。", ["下个月"]),
    ("春节联欢晚会很精彩。", []),
    ("2020年至2022年间，销量翻了一番。", ["2020年至2022年"]),
    ("央行宣布将存款准备金率下调0.5个百分点。", []),
    ("我们坐地铁2号线过去。", []),
    ("通知：从下周一开始，早上七点五十前到校，下周五前交费。", ["下周一", "早上七点五十", "下周五"]),
    ("该公司本财年利润大增，交易在本年度内完成，新工厂投产后年产值翻番。", ["本财年", "本年度"]),
    ("现在春季广交会开幕了。", []),
    ("“这是最后一次延期，”从7月1日起，新规正式施行。", ["7月1日"]),
    ("他说：「下周三」见，（从明年起）执行。", ["下周三", "明年"]),
])
def test_time_spans_follow_the_conventions(rules: RuleSet, text: str, expected: list[str]):
    assert spans(rules, text, "TIME") == expected


def test_time_values_are_intervals_durations_and_recurrences_against_the_reference(rules: RuleSet):
    values = {span: value for kind, span, value in found(rules, "前天签约，下个月交付，工期六个月，每天早上7点点名。")
              if kind == "TIME"}
    assert values["前天"] == {"kind": "point", "start": "2024-03-13T00:00:00+08:00",
                            "end": "2024-03-13T23:59:59+08:00", "grain": "day", "timezone": "Asia/Shanghai"}
    assert values["下个月"] == {"kind": "span", "start": "2024-04-01T00:00:00+08:00",
                             "end": "2024-04-30T23:59:59+08:00", "grain": "month", "timezone": "Asia/Shanghai"}
    assert values["六个月"] == {"kind": "duration", "duration": "P6M"}
    assert values["每天早上7点"]["kind"] == "recurring" and values["每天早上7点"]["every"] == "P1D"


@pytest.mark.parametrize(("text", "span", "value"), [
    ("公司今年营收近3亿元。", "3亿元", {"amount": "300000000", "currency": "CNY", "approx": "under"}),
    ("签下逾20亿美元的订单。", "20亿美元", {"amount": "2000000000", "currency": "USD", "approx": "over"}),
    ("奖金高达7.5万元。", "7.5万元", {"amount": "75000", "currency": "CNY", "approx": "over"}),
    ("他们投入人民币三十亿元。", "人民币三十亿元", {"amount": "3000000000", "currency": "CNY", "approx": None}),
    ("合同金额50亿元人民币。", "50亿元人民币", {"amount": "5000000000", "currency": "CNY", "approx": None}),
    ("一杯奶茶7.5港币。", "7.5港币", {"amount": "7.5", "currency": "HKD", "approx": None}),
    ("售价￥99，包邮。", "￥99", {"amount": "99", "currency": "CNY", "approx": None}),
    ("工程款3亿元左右。", "3亿元", {"amount": "300000000", "currency": "CNY", "approx": "about"}),
    ("打车花了86块，不贵。", "86块", {"amount": "86", "currency": "CNY", "approx": None}),
    ("营业收入1,200万元，同比持平。", "1,200万元", {"amount": "12000000", "currency": "CNY", "approx": None}),
    ("年终奖约两万五千块。", "两万五千块", {"amount": "25000", "currency": "CNY", "approx": "about"}),
])
def test_money_is_amount_and_currency_with_approximation_words_outside(rules: RuleSet, text: str, span: str,
                                                                      value: dict[str, Any]):
    assert [(s, v) for kind, s, v in found(rules, text) if kind == "MONEY"] == [(span, value)]


def test_consecutive_amounts_and_measure_words(rules: RuleSet):
    assert spans(rules, "近3亿元，逾20亿美元，高达7.5万元。", "MONEY") == ["3亿元", "20亿美元", "7.5万元"]
    assert spans(rules, "桌上有3块蛋糕。", "MONEY") == []


@pytest.mark.parametrize(("text", "span", "fraction", "approx"), [
    ("市场份额12%。", "12%", 0.12, None),
    ("股价下跌0.3%。", "0.3%", 0.003, None),
    ("营收同比增长百分之二十。", "百分之二十", 0.2, None),
    ("利率为百分之三点五。", "百分之三点五", 0.035, None),
    ("增长近30％。", "30％", 0.3, "under"),
])
def test_percent_values_are_fractions(rules: RuleSet, text: str, span: str, fraction: float, approx: str | None):
    assert [(s, v) for kind, s, v in found(rules, text) if kind == "PERCENT"] == [
        (span, {"fraction": fraction, "approx": approx})]


@pytest.mark.parametrize(("text", "titles"), [
    ("腾讯总裁刘炽平出席。", ["总裁"]),
    ("法国总统马克龙访华。", ["总统"]),
    ("常务副市长和首席财务官都到了。", ["常务副市长", "首席财务官"]),
    ("执行董事兼副总裁王强宣布。", ["执行董事", "副总裁"]),
    ("该公司财务总监被罚款。", ["财务总监"]),
    ("总之，长江很长。", []),
    ("法国驻华大使和首席战略官出席，副主任医师和党委书记也到了。",
     ["驻华大使", "首席战略官", "副主任医师", "党委书记"]),
    ("在例行记者会上，董事会和委员会都表了态。", []),
])
def test_titles_are_the_position_with_its_rank_words(rules: RuleSet, text: str, titles: list[str]):
    assert spans(rules, text, "TITLE") == titles


def test_contact_types_are_off_by_default_and_normalised_when_named():
    from raner_pool.recognizers import CONTACT_TYPES
    from raner_pool.recognizers.contacts import valid_id_checksum

    assert not set(CONTACT_TYPES) & set(EXTRA_TYPES)
    text = ("请联系：13812345678 或 +86 139-1234-5678，座机010-12345678，邮箱 Zhang.San@Example.COM，"
            "官网 https://www.Example.com/a?b=1。身份证11010519491231002X，错号110105194912310021。")
    assert valid_id_checksum("11010519491231002X") and not valid_id_checksum("110105194912310021")
    found = [(e.type, e.span, e.value) for e in RuleSet(CONTACT_TYPES).apply(text, [], REFERENCE)]
    assert found == [
        ("PHONE", "13812345678", {"e164": "+8613812345678"}),
        ("PHONE", "+86 139-1234-5678", {"e164": "+8613912345678"}),
        ("PHONE", "010-12345678", {"e164": "+861012345678"}),
        ("EMAIL", "Zhang.San@Example.COM", {"address": "Zhang.San@example.com"}),
        ("URL", "https://www.Example.com/a?b=1", {"url": "https://www.example.com/a?b=1"}),
        ("ID_CARD", "11010519491231002X", {"id": "11010519491231002X", "region": "110105",
                                           "birth_date": "1949-12-31"}),
    ]
    assert [e for e in RuleSet(EXTRA_TYPES).apply(text, [], REFERENCE) if e.type in CONTACT_TYPES] == []


def test_the_model_wins_overlaps_and_rule_types_never_overlap_each_other():
    model = [Entity("ORG", 0, 4, "国庆中心", 0.9)]
    rule = [Entity("TIME", 0, 2, "国庆", 1.0, None, "rule"), Entity("MONEY", 5, 9, "3亿元多", 1.0, None, "rule"),
            Entity("PERCENT", 6, 8, "x", 1.0, None, "rule"), Entity("TITLE", 9, 11, "总裁", 1.0, None, "rule")]
    merged = merge(model, rule)
    assert [(e.type, e.start, e.end) for e in merged] == [("ORG", 0, 4), ("MONEY", 5, 9), ("TITLE", 9, 11)]


def test_extra_types_can_be_chosen_or_turned_off_and_unknown_ones_are_refused(tiny_model_dir: Path):
    with RaNERModelPool("default", pool_size=1, extra_types=("MONEY",)) as pool:
        types = {e.type for e in pool.predict(DESIGN_SENTENCE)}
        assert "MONEY" in types and not types & {"TIME", "PERCENT", "TITLE"}
        assert pool.entity_types == ["PER", "LOC", "ORG", "MONEY"]
    with RaNERModelPool(tiny_model_dir, pool_size=1, extra_types=()) as pool:
        assert all(e.source == "model" for e in pool.predict(DESIGN_SENTENCE))
    with pytest.raises(RaNERError, match="unknown extra type 'DATE'"):
        RaNERModelPool(tiny_model_dir, pool_size=1, extra_types=("DATE",))


def test_relative_times_follow_the_reference_and_never_come_from_the_cache():
    with RaNERModelPool("default", pool_size=1, cache=LRUCache(100)) as pool:
        def tomorrow(reference: datetime) -> str:
            [time] = [e for e in pool.predict("明天开会", reference_time=reference) if e.type == "TIME"]
            assert time.value is not None
            return str(time.value["start"])
        assert tomorrow(REFERENCE) == "2024-03-16T00:00:00+08:00"
        assert tomorrow(REFERENCE + timedelta(days=1)) == "2024-03-17T00:00:00+08:00"  # a cache hit for the model
        assert pool.cache is not None and pool.cache.hits >= 1
        naive = tomorrow(datetime(2024, 3, 15, 23, 30))  # a naive reference is a wall clock in the pool's zone
        assert naive == "2024-03-16T00:00:00+08:00"
        with pytest.raises(TypeError, match="reference_time must be a datetime"):
            pool.predict("明天", reference_time="2024-03-15")  # type: ignore[arg-type]


def test_32_threads_give_the_entities_one_thread_gives(tiny_model_dir: Path):
    texts = [json.loads(line)["text"] for line in (DATA / "extra_types.jsonl").read_text(encoding="utf-8").splitlines()]
    with RaNERModelPool(tiny_model_dir, pool_size=4) as pool:
        expected = [pool.predict(text, reference_time=REFERENCE) for text in texts]

        def caller(offset: int) -> list[list[Entity]]:
            order = texts[offset:] + texts[:offset]
            results = [pool.predict(text, reference_time=REFERENCE) for text in order]
            return results[len(texts) - offset:] + results[: len(texts) - offset]

        with ThreadPoolExecutor(max_workers=32) as executor:
            for results in executor.map(caller, range(0, 32 * 5, 5)):
                assert results == expected


def test_a_calendar_date_replaces_only_model_entities_the_model_is_unsure_of():
    date = Entity("TIME", 8, 19, "二〇二三年七月二十八日", 1.0, None, "rule")
    unsure = Entity("PER", 7, 10, "于二〇", 0.72)
    assert merge([unsure], [date]) == [date]
    sure = replace(unsure, prob=0.95)
    assert merge([sure], [date]) == [sure]
    assert merge([unsure], [replace(date, span="明年七月二十八日")]) == [unsure]  # no year named: the model wins


def test_the_model_s_own_entities_are_the_same_with_the_extra_types_on(default_pool: RaNERModelPool):
    from raner_pool.corpus import load_msra

    texts = [s.text for s in load_msra("test", 500)]
    with RaNERModelPool("default", pool_size=1, extra_types=()) as plain:
        off = plain.predict_batch(texts)
    on = default_pool.predict_batch(texts)
    for with_rules, alone in zip(on, off, strict=True):  # the merge costs a model entity only to a dated TIME
        kept = [e for e in with_rules if e.source == "model"]
        assert all(e in alone for e in kept)
        dates = [e for e in with_rules if is_calendar_date(e)]
        for lost in (e for e in alone if e not in kept):
            assert lost.prob < UNSURE and any(d.start < lost.end and lost.start < d.end for d in dates)


@pytest.mark.parametrize("name", ["extra_types.jsonl", "extra_types_holdout.jsonl"])
def test_scores_on_the_hand_written_sentences_meet_the_goals(default_pool: RaNERModelPool, name: str):
    """The goals, on the two sets the rules were refined against (README also reports a third, held out, which
    is not asserted: a test on it would be tuning on it)."""
    scores, values = evaluate_extra_types(default_pool.predict_batch, DATA / name, EXTRA_TYPES)
    goals = {"TIME": 0.90, "MONEY": 0.95, "PERCENT": 0.95, "TITLE": 0.85}
    assert {t: round(scores[t].f1, 3) for t in goals if scores[t].f1 < goals[t]} == {}
    assert {t: v.accuracy for t, v in values.items() if v.accuracy < 0.95} == {}
