import itertools

import pytest

from raner_pool.windows import plan_sentence_windows, plan_windows


def check_cover(counts: list[int], max_tokens: int, overlap: int) -> None:
    windows = plan_windows(counts, max_tokens, overlap)
    assert windows[0].start == 0 and windows[-1].end == len(counts)
    owned = [i for w in windows for i in range(w.own_start, w.own_end)]
    assert owned == list(range(len(counts))), "every character is owned by exactly one window, in order"
    for w in windows:
        assert sum(counts[w.start : w.end]) <= max_tokens
        assert w.start <= w.own_start <= w.own_end <= w.end
    for left, right in itertools.pairwise(windows):
        assert right.start < left.end, "neighbours overlap"
        shared = left.end - right.start
        assert min(left.end - left.own_end, right.own_start - right.start) >= shared // 2, "cut mid-overlap"


def test_short_text_is_one_window():
    assert len(plan_windows([1] * 10, 510, 64)) == 1


@pytest.mark.parametrize("n", [511, 1000, 5000, 12345])
def test_long_texts_are_covered(n: int):
    check_cover([1] * n, 510, 64)


def test_characters_with_several_subtokens():
    check_cover([1, 3, 2, 1, 1, 4] * 50, 32, 8)


def test_tiny_budget_still_progresses():
    check_cover([1] * 50, 3, 5)


def test_sentence_windows_score_each_sentence_alone():
    text = "马云在杭州。“好！”他说\n\n刘德华在香港；张学友在澳门"
    windows = plan_sentence_windows(text, [0 if ch.isspace() else 1 for ch in text], 510, 64)
    sentences = [text[w.start : w.end] for w in windows]
    assert sentences == ["马云在杭州。", "“好！”", "他说\n\n", "刘德华在香港；张学友在澳门"]
    assert all((w.own_start, w.own_end) == (w.start, w.end) for w in windows)


def test_a_long_sentence_is_windowed_within_itself():
    text = "短句。" + "长" * 1000 + "。尾"
    counts = [1] * len(text)
    windows = plan_sentence_windows(text, counts, 510, 64)
    assert text[windows[0].start : windows[0].end] == "短句。" and text[windows[-1].start :] == "尾"
    owned = [i for w in windows for i in range(w.own_start, w.own_end)]
    assert owned == list(range(len(text))) and all(sum(counts[w.start : w.end]) <= 510 for w in windows)
    assert all(w.start >= 3 and w.end <= len(text) - 1 for w in windows[1:-1]), "no window crosses 。"


def test_leading_whitespace_joins_the_first_sentence():
    windows = plan_sentence_windows("\n\n马云。", [0, 0, 1, 1, 1], 510, 64)
    assert [(w.start, w.end) for w in windows] == [(0, 5)]
