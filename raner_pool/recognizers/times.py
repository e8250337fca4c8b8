"""TIME: dates, times, relative expressions, durations, ranges and recurring times, by jionlp's time extractor,
with our span conventions on top (README, "Entity types") and values as ISO 8601 intervals.

jionlp keeps per-call state on its extractor objects, so each `TimeRecognizer` owns its own and is used by one
thread at a time; the reference time is passed on every call (jionlp's default is its import time).
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, timedelta
from typing import Any

from raner_pool.entities import Entity
from raner_pool.recognizers.jionlp_import import jionlp
from raner_pool.timezones import zone_name

LEADING = ("截至", "截止", "直到", "自从", "始于", "自", "从", "于", "在", "到", "至")
"""Prepositions jionlp keeps at the start of a span; they are not part of the time."""
TRAILING = ("开始", "以来", "前后", "左右", "起", "来")
"""Words jionlp keeps at the end of a span: since, around, starting; not part of the time."""
BEFORE_AFTER = re.compile(r"(?:[点时分日号底初]|周[一二三四五六日天]|星期[一二三四五六日天]|"
                          r"点[零〇一二三四五六七八九十0-9半刻]{1,3})(之前|以前|之后|以后|前|后)$")
"""下午5点前, 每月1日前, 下周五前, 七点五十前, 月底之前: "before/after" a clock time or a day bounds it and is not
part of it (三年前 is a time of its own and keeps its 前)."""
NOT_TIMES = {"现在", "目前", "当前", "此时", "如今"}
""""Now" words jionlp reads as the reference moment; they name no time of their own."""
NOT_AFTER_WORDS = re.compile(r"年(产|收|销|均|增|化|营|度)")
"""后年 in 投产后年产值 is 后 + 年产值 (after ... the annual output), not the year after next."""
NUMBERED = re.compile(r"[0-9０-９一二三四五六七八九十]+号")
NUMBERED_THINGS = set("楼线床门房车机位桌口院馆厅台窗码")
"""jionlp reads 2号 in 2号线 and 1号 in 1号楼 as days of the month."""
SEASONS_AND_FESTIVALS = re.compile(r"(春|夏|秋|冬)(季|天)?|春节|元旦|元宵|清明|端午|七夕|中秋|重阳|国庆|五一|除夕")
EVENT_AFTER = re.compile(r"^[\u4e00-\u9fff]{0,8}?(论坛|奥运会|运动会|残奥会|峰会|达沃斯|博览会|交易会|联赛|锦标赛|"
                         r"招聘会|联欢晚会|晚会|大会|会议|学期|档|攻势|新品|大促|特卖|系列|交会|车展|展会|书展|航展)")
"""A season or festival word followed by one of these is part of an event's name (冬季达沃斯论坛), not a time."""
PERIODS = re.compile(r"(?:本|上|下|今|明|去|前|上半|下半)?财年|(?:第[一二三四1-4])财季|(?:本|上|下|这|今)学期")
"""Fiscal years and quarters and school terms (本财年, 第三财季, 这学期): times whose bounds depend on a calendar
the text does not give, so their value is the kind alone."""
RELATIVE_MONTH_WEEK = re.compile(r"(上|下|这|本)(个)?(月|周|星期|礼拜)(?!末|底|初)")
"""What jionlp 1.5 fails to parse ("下个月"): resolved here."""
CUE = re.compile(r"[0-9０-９零〇一二两三四五六七八九十百年月日号天周时点分秒"
                 r"今明昨前后去上下本春夏秋冬晚早午夜季旬初底末节]")
DELTA_UNITS = (("year", "Y"), ("month", "M"), ("day", "D"))
DELTA_TIME_UNITS = (("hour", "H"), ("minute", "M"), ("second", "S"))
KINDS = {"time_point": "point", "time_span": "span", "time_delta": "duration", "time_period": "recurring"}
NOT_A_TIME_CANDIDATE = re.compile(r"[百千万]分|[0-9０-９]*[.．][0-9０-９]+$")
"""Candidate strings jionlp would grid-search in vain, each parse attempt ~0.07 ms: percent vocabulary (百分之二十,
百分点) and decimals (2.8 of 2.8亿美元). Skipping them spares the TIME rule most of its cost."""


class TimeRecognizer:
    """TIME entities with {start, end, grain, kind} (durations: {duration, kind}; recurring: {every, start, end,
    grain, kind}), resolved against the reference time given to each call."""

    type = "TIME"

    def __init__(self) -> None:
        self._extractor = _Extractor()
        self._parser = jionlp().gadget.time_parser.TimeParser()

    def cue(self, text: str) -> bool:
        return CUE.search(text) is not None

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        base = reference.replace(tzinfo=None)  # jionlp reads a wall clock; the zone is put back on the values
        found: list[Entity] = []
        for item in self._extractor(text, time_base=base, with_parsing=True, ret_all=True):
            start, end = trimmed = _trim(text, *item["offset"])
            if end <= start or _in_event_name(text, start, end) or _not_a_time(text, start, end):
                continue
            detail = item["detail"] if trimmed == tuple(item["offset"]) else self._parse(text[start:end], base)
            found.append(Entity("TIME", start, end, text[start:end], 1.0, _value(detail or item["detail"], reference),
                                "rule"))
        found += _relative_months_and_weeks(text, reference, found)
        found += _periods(text, found)
        return sorted(found, key=lambda e: e.start)


    def _parse(self, span: str, base: datetime) -> dict[str, Any] | None:
        """jionlp's reading of a span we trimmed (前年起 -> 前年: the year, not the time since)."""
        try:
            parsed: dict[str, Any] = self._parser(span, time_base=base)
        except Exception:  # jionlp raises ValueError and others on strings it cannot read
            return None
        return parsed


class _Extractor(jionlp().ner.TimeExtractor):  # type: ignore[misc]  # jionlp is untyped
    """jionlp's extractor without the candidates that cannot be a time (NOT_A_TIME_CANDIDATE)."""

    def extract_time_candidates(self, text: str) -> list[dict[str, Any]]:
        candidates: list[dict[str, Any]] = super().extract_time_candidates(text)
        return [c for c in candidates if not NOT_A_TIME_CANDIDATE.match(c["time_candidate"])]


def _is_punctuation(char: str) -> bool:
    """Any Unicode punctuation or space: jionlp sometimes keeps the one next to a span, opening or closing
    (通知：从下周一, 他说，”从7月1日起: the closing quote of the sentence before)."""
    return char.isspace() or unicodedata.category(char).startswith("P")


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while end - start > 1 and _is_punctuation(text[start]):
        start += 1
    while end - start > 1 and _is_punctuation(text[end - 1]):
        end -= 1
    for word in LEADING:
        if text.startswith(word, start) and end - start > len(word):
            start += len(word)
            break
    for word in TRAILING:
        if text.endswith(word, start, end) and end - start > len(word):
            end -= len(word)
            break
    bounded = BEFORE_AFTER.search(text, start, end)
    if bounded is not None and bounded.start(1) > start:
        end = bounded.start(1)
    if text.endswith("年", start, end) and text.startswith("度", end):  # jionlp reads 本年度 as 本年
        end += 1
    return start, end


def _not_a_time(text: str, start: int, end: int) -> bool:
    """jionlp's readings inside percent vocabulary (百分点, 百分之: "hundred minutes") and numbered things."""
    if text.startswith("百分", start) or text[start:end] in NOT_TIMES:
        return True
    if text[start:end] == "后年" and NOT_AFTER_WORDS.match(text, end - 1):
        return True
    return NUMBERED.fullmatch(text, start, end) is not None and text[end : end + 1] in NUMBERED_THINGS


def _in_event_name(text: str, start: int, end: int) -> bool:
    return SEASONS_AND_FESTIVALS.fullmatch(text, start, end) is not None and EVENT_AFTER.match(text[end:]) is not None


def _value(detail: dict[str, Any], reference: datetime) -> dict[str, Any] | None:
    kind = KINDS.get(detail.get("type", ""), "point")
    moment = detail.get("time")
    if kind == "duration" and isinstance(moment, dict):
        return {"kind": kind, "duration": _iso_duration(moment)}
    if kind == "recurring" and isinstance(moment, dict):
        first = (moment.get("point") or {}).get("time")
        value: dict[str, Any] = {"kind": kind, "every": _iso_duration(moment.get("delta") or {})}
        if isinstance(first, list) and len(first) == 2:
            value.update(_interval(first, reference))
        return value
    if isinstance(moment, list) and len(moment) == 2 and all(isinstance(m, str) for m in moment):
        return {"kind": kind, **_interval(moment, reference)}
    return {"kind": kind}


def _interval(bounds: list[str], reference: datetime) -> dict[str, Any]:
    """ISO 8601 start and end (the last second, inclusive) in the reference's zone, the grain they span, and the
    zone's name (its offset alone would not say which zone, nor hold across a daylight-saving change)."""
    start, end = (_moment(b, reference) for b in bounds)
    value: dict[str, Any] = {"start": start and start.isoformat(), "end": end and end.isoformat()}
    if start is not None and end is not None:
        value["grain"] = _grain(start, end)
    value["timezone"] = zone_name(reference)
    return value


def _moment(bound: str, reference: datetime) -> datetime | None:
    """One bound in the reference's zone; None for an open one (jionlp writes "-inf"/"inf": 截至去年 has no start)."""
    try:
        return datetime.fromisoformat(bound).replace(tzinfo=reference.tzinfo)
    except ValueError:
        return None


def _grain(start: datetime, end: datetime) -> str:
    seconds = (end - start).total_seconds() + 1
    for grain, limit in (("second", 1), ("minute", 60), ("hour", 3600), ("day", 86400), ("week", 7 * 86400),
                         ("month", 31 * 86400), ("quarter", 92 * 86400), ("year", 366 * 86400)):
        if seconds <= limit:
            return grain
    return "years"


def _iso_duration(delta: dict[str, Any]) -> str:
    """{"year": 2} -> "P2Y", {"hour": 1.5} -> "PT1.5H"."""
    def number(value: Any) -> str:
        return f"{float(value):g}"

    days = "".join(f"{number(delta[k])}{u}" for k, u in DELTA_UNITS if delta.get(k))
    if delta.get("week") and not delta.get("day"):
        days += f"{number(float(delta['week']) * 7)}D"
    clock = "".join(f"{number(delta[k])}{u}" for k, u in DELTA_TIME_UNITS if delta.get(k))
    return "P" + days + ("T" + clock if clock else "") if days or clock else "P0D"


def _relative_months_and_weeks(text: str, reference: datetime, found: list[Entity]) -> list[Entity]:
    """上个月, 下个月, 本月, 下周, 这个星期...: the ones jionlp left out, as month or week intervals."""
    extra = []
    for match in RELATIVE_MONTH_WEEK.finditer(text):
        if _overlapping(found, match.start(), match.end()):
            continue
        shift = {"上": -1, "下": 1}.get(match.group(1), 0)
        day = reference.replace(hour=0, minute=0, second=0, microsecond=0)
        if match.group(3) == "月":
            month_index = day.year * 12 + day.month - 1 + shift
            first = day.replace(year=month_index // 12, month=month_index % 12 + 1, day=1)
            following = first.replace(year=(month_index + 1) // 12, month=(month_index + 1) % 12 + 1)
        else:
            first = day - timedelta(days=day.weekday()) + timedelta(weeks=shift)
            following = first + timedelta(weeks=1)
        last = following - timedelta(seconds=1)
        value = {"kind": "span", "start": first.isoformat(), "end": last.isoformat(), "grain": _grain(first, last),
                 "timezone": zone_name(reference)}
        extra.append(Entity("TIME", match.start(), match.end(), match.group(), 1.0, value, "rule"))
    return extra


def _periods(text: str, found: list[Entity]) -> list[Entity]:
    """本财年, 第三财季, 这学期 (PERIODS) where jionlp found nothing."""
    return [Entity("TIME", m.start(), m.end(), m.group(), 1.0, {"kind": "span"}, "rule")
            for m in PERIODS.finditer(text) if not _overlapping(found, m.start(), m.end())]


def _overlapping(found: list[Entity], start: int, end: int) -> bool:
    return any(e.start < end and start < e.end for e in found)
