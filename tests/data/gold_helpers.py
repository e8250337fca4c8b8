"""What both gold-set scripts (make_extra_types.py, make_extra_types_holdout.py) share: the shorthands the
sentences are written in (TA/T/M/P/TI), the mechanical cross-checks of every hand-written value, and building and
writing the JSONL."""

from __future__ import annotations

import calendar
import itertools
import json
import re
from decimal import Decimal
from pathlib import Path

# --------------------------------------------------------------------------
# helpers that build the (type, span, occurrence, value) tuples
# --------------------------------------------------------------------------

def _bound(part: str, last: bool) -> str:
    """Expand a partial ISO stamp (YYYY, YYYY-MM, YYYY-MM-DD, YYYY-MM-DDTHH,
    YYYY-MM-DDTHH:MM) to its first (last=False) or last (last=True) second."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2}))?)?)?)?", part)
    assert m, part
    y, mo, d, h, mi = m.groups()
    y = int(y)
    mo_i = (12 if last else 1) if mo is None else int(mo)
    if d is None:
        d_i = calendar.monthrange(y, mo_i)[1] if last else 1
    else:
        d_i = int(d)
        assert 1 <= d_i <= calendar.monthrange(y, mo_i)[1], part
    h_i = (23 if last else 0) if h is None else int(h)
    mi_i = (59 if last else 0) if mi is None else int(mi)
    s_i = 59 if last else 0
    return f"{y:04d}-{mo_i:02d}-{d_i:02d}T{h_i:02d}:{mi_i:02d}:{s_i:02d}"


def iv(start: str, end: str | None = None) -> dict:
    """Interval value: first second of `start` .. last second of `end` (default: start)."""
    return {"start": _bound(start, False), "end": _bound(end or start, True)}


def TA(span, start, end=None, occ=0):
    """Absolute TIME (names the year) with its interval value."""
    return ("TIME", span, occ, iv(start, end))


def T(span, occ=0):
    """Relative / duration / recurring TIME: value null."""
    return ("TIME", span, occ, None)


def M(span, amount, currency, approx=None, occ=0):
    return ("MONEY", span, occ, {"amount": amount, "currency": currency, "approx": approx})


def P(span, fraction, approx=None, occ=0):
    return ("PERCENT", span, occ, {"fraction": fraction, "approx": approx})


def TI(span, occ=0):
    return ("TITLE", span, occ, None)


# --------------------------------------------------------------------------
# mechanical cross-checks of the hand-written values
# (parse_number also takes thousands separators; a year in Chinese digits names the year)
# --------------------------------------------------------------------------

_CN_DIGIT = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5,
             "六": 6, "七": 7, "八": 8, "九": 9}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}


def _cn_int(s: str) -> Decimal:
    total, section, num = Decimal(0), Decimal(0), Decimal(0)
    for ch in s:
        if ch in _CN_DIGIT:
            num = Decimal(_CN_DIGIT[ch])
        elif ch in _CN_UNIT:
            if num == 0 and ch == "十":
                num = Decimal(1)
            section += num * _CN_UNIT[ch]
            num = Decimal(0)
        elif ch == "万":
            total += (section + num) * 10000
            section, num = Decimal(0), Decimal(0)
        elif ch == "亿":
            total = (total + section + num) * 100000000
            section, num = Decimal(0), Decimal(0)
        else:
            raise ValueError(f"not a Chinese numeral: {s!r}")
    return total + section + num


def parse_number(s: str) -> Decimal:
    """Arabic digits (thousands separators allowed) with optional 万/亿 multipliers, or a
    Chinese numeral (with 点)."""
    if re.fullmatch(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?[万亿]*", s):
        s = s.replace(",", "")
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)([万亿]*)", s)
    if m:
        value = Decimal(m.group(1))
        for ch in m.group(2):
            value *= 10000 if ch == "万" else 100000000
        return value
    if "点" in s:
        whole, frac = s.split("点")
        digits = "".join(str(_CN_DIGIT[ch]) for ch in frac)
        return _cn_int(whole) + Decimal("0." + digits)
    return _cn_int(s)


def plain(d: Decimal) -> str:
    return format(d.normalize(), "f")


_CURRENCY_WORDS = [("新台币", "TWD"), ("美元", "USD"), ("$", "USD"), ("港元", "HKD"), ("港币", "HKD"),
                   ("欧元", "EUR"), ("英镑", "GBP"), ("日元", "JPY"), ("韩元", "KRW"), ("卢布", "RUB"),
                   ("澳元", "AUD"), ("加元", "CAD"), ("人民币", "CNY"), ("￥", "CNY"), ("块", "CNY"),
                   ("元", "CNY")]

_APPROX_BEFORE = [("将近", "under"), ("不到", "under"), ("不足", "under"), ("大约", "about"),
                  ("超过", "over"), ("高达", "over"), ("近", "under"), ("逾", "over"), ("超", "over"),
                  ("约", "about")]
_APPROX_AFTER = [("左右", "about"), ("上下", "about")]


def approx_from_context(text: str, start: int, end: int):
    for word, kind in _APPROX_AFTER:
        if text.startswith(word, end):
            return kind
    for word, kind in _APPROX_BEFORE:
        if text[:start].endswith(word):
            return kind
    return None


_CN_YEAR = r"[〇零一二三四五六七八九]{4}"


def span_years(span: str) -> list[str]:
    """The years a TIME span names, in order: "2022年" or "二〇二二年" -> "2022"."""
    years = []
    for m in re.finditer(r"(\d{4}|" + _CN_YEAR + r")年", span):
        y = m.group(1)
        years.append(y if y.isdigit() else "".join(str(_CN_DIGIT[ch]) for ch in y))
    return years


def single_date(span: str) -> str | None:
    """For a span that starts with a year in Chinese digits and names no range, the ISO
    prefix its value must start with ("二〇二三年七月二十八日" -> "2023-07-28"); else None."""
    m = re.match("(" + _CN_YEAR + r")年(?:([一二三四五六七八九十]+)月(?:([一二三四五六七八九十]+)日)?)?", span)
    if not m or "至" in span or "到" in span:
        return None
    out = span_years(m.group(0))[0]
    if m.group(2):
        out += f"-{int(_cn_int(m.group(2))):02d}"
        if m.group(3):
            out += f"-{int(_cn_int(m.group(3))):02d}"
    return out


def check_value(text: str, etype: str, span: str, start: int, end: int, value) -> None:
    where = f"{span!r} in {text!r}"
    if etype == "MONEY":
        currency = None
        rest = span
        for word, code in _CURRENCY_WORDS:
            if word in rest:
                currency = currency or code
                rest = rest.replace(word, "")
        assert currency == value["currency"], f"currency {value['currency']} vs {currency}: {where}"
        amount = plain(parse_number(rest))
        assert amount == value["amount"], f"amount {value['amount']} vs {amount}: {where}"
        assert re.fullmatch(r"[0-9]+(\.[0-9]*[1-9])?", value["amount"]), where
        assert value["approx"] == approx_from_context(text, start, end), f"approx: {where}"
    elif etype == "PERCENT":
        if span.startswith("百分之"):
            number = parse_number(span[3:])
        else:
            assert span[-1] in "%％", where
            number = parse_number(span[:-1])
        fraction = float(number / 100)
        assert abs(fraction - value["fraction"]) < 1e-12, f"fraction {value['fraction']} vs {fraction}: {where}"
        assert value["approx"] == approx_from_context(text, start, end), f"approx: {where}"
    elif etype == "TIME":
        if value is not None:
            years = span_years(span)
            assert years, f"absolute TIME without a year: {where}"
            single = single_date(span)
            if single is not None:
                assert value["start"].startswith(single), f"{value['start']} vs {single}: {where}"
            assert value["start"][:4] == years[0], where
            assert value["end"][:4] == years[-1], where
            assert value["start"] <= value["end"], where
        else:
            assert not span_years(span), f"TIME naming a year needs a value: {where}"
    elif etype == "TITLE":
        assert value is None, where
    else:
        raise AssertionError(f"unknown type {etype}: {where}")


def nth_find(text: str, span: str, occ: int) -> int:
    pos = -1
    for _ in range(occ + 1):
        pos = text.find(span, pos + 1)
        assert pos >= 0, f"span {span!r} (occurrence {occ}) not found in {text!r}"
    return pos


def build(sentences: list[tuple[str, list[tuple]]]) -> list[dict]:
    """Records with offsets found by str.find, every value cross-checked, no overlaps."""
    records = []
    seen_texts = set()
    for text, gold in sentences:
        assert text not in seen_texts, f"duplicate sentence {text!r}"
        seen_texts.add(text)
        assert 15 <= len(text) <= 80, f"length {len(text)}: {text!r}"
        entities = []
        for etype, span, occ, value in gold:
            start = nth_find(text, span, occ)
            end = start + len(span)
            assert text[start:end] == span
            check_value(text, etype, span, start, end, value)
            if etype == "PERCENT":
                value = {"fraction": round(float(value["fraction"]), 10), "approx": value["approx"]}
            entities.append({"type": etype, "start": start, "end": end, "span": span, "value": value})
        entities.sort(key=lambda e: (e["start"], e["end"]))
        for a, b in itertools.pairwise(entities):
            assert a["end"] <= b["start"], f"overlap {a['span']!r} / {b['span']!r} in {text!r}"
        records.append({"text": text, "entities": entities})
    return records


def write(out: Path, sentences: list[tuple[str, list[tuple]]]) -> None:
    """Build the records of `sentences` and write them to `out` as JSONL; print the counts."""
    records = build(sentences)
    with out.open("w", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for rec in records:
        for ent in rec["entities"]:
            counts[ent["type"]] = counts.get(ent["type"], 0) + 1
    print(f"wrote {len(records)} sentences to {out}: {counts}")
