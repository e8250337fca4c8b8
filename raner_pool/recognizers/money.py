"""MONEY: number + unit + currency word as written (2.8亿美元, 人民币三十亿元, ￥99), by jionlp's money extractor
plus the symbol forms it misses; values carry the amount as a decimal string, the ISO 4217 currency and `approx`.
Approximation words (近, 逾, 高达, 约, 左右) stay out of the span and go into `approx`."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from raner_pool.entities import Entity
from raner_pool.recognizers.base import approx_around
from raner_pool.recognizers.jionlp_import import jionlp

CURRENCIES = (
    ("新台币", "TWD"), ("人民币", "CNY"), ("美元", "USD"), ("美金", "USD"), ("港元", "HKD"), ("港币", "HKD"),
    ("欧元", "EUR"), ("英镑", "GBP"), ("日元", "JPY"), ("韩元", "KRW"), ("卢布", "RUB"), ("澳元", "AUD"),
    ("加元", "CAD"), ("瑞郎", "CHF"), ("法郎", "CHF"), ("新加坡元", "SGD"), ("泰铢", "THB"), ("卢比", "INR"),
    ("US$", "USD"), ("HK$", "HKD"), ("$", "USD"), ("￥", "CNY"), ("¥", "CNY"), ("€", "EUR"), ("£", "GBP"),
    ("元", "CNY"), ("块", "CNY"),
)
"""Currency words and symbols as written, longest first where one contains another; 元 alone is the yuan."""
SYMBOL_AMOUNT = re.compile(r"(US\$|HK\$|[$￥¥€£])\s?(\d[\d,]*(?:\.\d+)?)(\s?[万亿]{1,2})?")
KUAI_AMOUNT = re.compile(r"(\d[\d,]*(?:\.\d+)?|[零〇一二两三四五六七八九十百千万亿]+)块(?:钱)?"
                         r"(?=[，。！？、,.!?；;\s]|$|钱)")
"""Spoken yuan (15块, 4,500块, 两万五千块, 86块钱) that jionlp does not read; 块 as a measure word (3块蛋糕) is
followed by its noun."""
CUE = re.compile(r"[元币镑郎铢比块$￥¥€£]|美金|卢布")
CLAUSE = re.compile(r"(?:[^，,；;、。！？!?\n]|(?<=\d),(?=\d{3}))+")
"""jionlp's extractor runs amounts together across commas (近3亿元，逾20亿美元): it reads one clause at a time (a
comma that separates thousands, 1,200万元, does not end one)."""
UNITS = {"万": Decimal(10_000), "亿": Decimal(100_000_000)}


class MoneyRecognizer:
    """MONEY entities with {amount, currency, approx}."""

    type = "MONEY"

    def __init__(self) -> None:
        import cn2an

        self._extractor = jionlp().ner.MoneyExtractor()
        self._cn2an = cn2an.cn2an

    def cue(self, text: str) -> bool:
        return CUE.search(text) is not None

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found: list[Entity] = []
        for clause in CLAUSE.finditer(text):
            if not self.cue(clause.group()):
                continue
            for item in self._extractor(clause.group(), with_parsing=True):
                start, end = (clause.start() + offset for offset in item["offset"])
                amount = _plain(item["detail"].get("num"))
                currency = _currency(text[start:end])
                if amount is None or currency is None:
                    continue
                entity = _entity(text, start, end, amount, currency)
                if entity is not None:
                    found.append(entity)
        for match in SYMBOL_AMOUNT.finditer(text):
            if any(e.start <= match.start() < e.end for e in found):
                continue
            number = Decimal(match.group(2).replace(",", ""))
            for unit in (match.group(3) or "").strip():
                number *= UNITS[unit]
            entity = _entity(text, match.start(), match.end(), _plain(str(number)) or "0",
                             _currency(match.group(1)) or "CNY")
            if entity is not None:
                found.append(entity)
        for match in KUAI_AMOUNT.finditer(text):
            if not any(e.start <= match.start() < e.end for e in found):
                amount = self._spoken_amount(match.group(1))
                entity = None if amount is None else _entity(text, match.start(), match.end(), amount, "CNY")
                if entity is not None:
                    found.append(entity)
        return sorted(found, key=lambda e: e.start)

    def _spoken_amount(self, number: str) -> str | None:
        """"4,500" -> "4500", "两万五千" -> "25000" (cn2an); None for what is not a number (万万)."""
        if number[0].isdigit():
            return _plain(number.replace(",", ""))
        try:
            return _plain(self._cn2an(number, "smart"))
        except (ValueError, ArithmeticError):
            return None


def _entity(text: str, start: int, end: int, amount: str, currency: str) -> Entity | None:
    start, end, approx = approx_around(text, start, end)
    while end > start and not text[end - 1].strip():
        end -= 1
    if end <= start:
        return None
    value: dict[str, Any] = {"amount": amount, "currency": currency, "approx": approx}
    return Entity("MONEY", start, end, text[start:end], 1.0, value, "rule")


def _currency(span: str) -> str | None:
    for word, code in CURRENCIES:
        if word in span:
            return code
    return None


def _plain(number: object) -> str | None:
    """"280000000.00" -> "280000000", "7.50" -> "7.5": a decimal string without exponent or trailing zeros."""
    try:
        value = Decimal(str(number))
    except (InvalidOperation, ValueError):
        return None
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
