"""PERCENT: 12%, 0.3%, 35％, 百分之二十, 百分之三点五; the value is the fraction (百分之二十 -> 0.2). Chinese
numerals are read by cn2an. "个百分点" (percentage points) is not a percent of anything and is left alone."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal

from raner_pool.entities import Entity
from raner_pool.recognizers.base import approx_around

NUMERAL = "零〇一二两三四五六七八九十百千万点"
PATTERN = re.compile(rf"(\d+(?:\.\d+)?)\s?[%％]|百分之([{NUMERAL}\d.]+)")
CUE = re.compile(r"[%％]|百分之")


class PercentRecognizer:
    """PERCENT entities with {fraction, approx}."""

    type = "PERCENT"

    def __init__(self) -> None:
        import cn2an

        self._cn2an = cn2an.cn2an

    def cue(self, text: str) -> bool:
        return CUE.search(text) is not None

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for match in PATTERN.finditer(text):
            digits, numeral = match.groups()
            try:
                number = Decimal(digits) if digits else Decimal(str(self._cn2an(numeral, "smart")))
            except (ValueError, ArithmeticError):  # cn2an: "百分之点" and other non-numbers
                continue
            start, end, approx = approx_around(text, match.start(), match.end())
            fraction = round(float(number / 100), 10)
            found.append(Entity("PERCENT", start, end, text[start:end], 1.0, {"fraction": fraction, "approx": approx},
                                "rule"))
        return found
