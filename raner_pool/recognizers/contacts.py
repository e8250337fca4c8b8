"""Contact details for 内容审核 (content moderation), off by default and each named in `extra_types`: PHONE
(mainland mobiles and landlines), EMAIL, URL and ID_CARD (mainland resident ID, its checksum and birth date
verified). Their `value` is the normalised form: E.164 numbers, lower-cased domains, URLs with a scheme."""

from __future__ import annotations

import re
from datetime import date, datetime

from raner_pool.entities import Entity

NOT_DIGIT_BEFORE = r"(?<![0-9A-Za-z])"
NOT_DIGIT_AFTER = r"(?![0-9A-Za-z])"
MOBILE = re.compile(NOT_DIGIT_BEFORE + r"(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})" + NOT_DIGIT_AFTER)
LANDLINE = re.compile(NOT_DIGIT_BEFORE + r"(?:\+?86[- ]?)?\(?0(\d{2,3})\)?[- ]?(\d{7,8})" + NOT_DIGIT_AFTER)
EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
URL = re.compile(r"(?:https?://|www\.)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+(?::\d{1,5})?(?:[/?#][^\s\u3000-\u303f\uff00-\uffef"
                 r"\u4e00-\u9fff<>\"'）)\]]*)?", re.IGNORECASE)
ID_NUMBER = re.compile(NOT_DIGIT_BEFORE + r"[1-9]\d{16}[0-9Xx]" + NOT_DIGIT_AFTER)
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"
TRAILING_PUNCTUATION = ".,;:!?"


class PhoneRecognizer:
    """PHONE: 13812345678, +86 138-1234-5678, 010-12345678; value {"e164": "+8613812345678"}."""

    type = "PHONE"

    def cue(self, text: str) -> bool:
        return sum(ch.isdigit() for ch in text) >= 10

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = [Entity("PHONE", m.start(), m.end(), m.group(), 1.0, {"e164": "+86" + "".join(m.groups())}, "rule")
                 for m in MOBILE.finditer(text)]
        for m in LANDLINE.finditer(text):
            if not any(e.start < m.end() and m.start() < e.end for e in found):
                found.append(Entity("PHONE", m.start(), m.end(), m.group(), 1.0,
                                    {"e164": "+86" + "".join(m.groups())}, "rule"))
        return found


class EmailRecognizer:
    """EMAIL; value {"address": local part as written, domain lower-cased}."""

    type = "EMAIL"

    def cue(self, text: str) -> bool:
        return "@" in text

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for m in EMAIL.finditer(text):
            local, _, domain = m.group().rpartition("@")
            found.append(Entity("EMAIL", m.start(), m.end(), m.group(), 1.0, {"address": f"{local}@{domain.lower()}"},
                                "rule"))
        return found


class UrlRecognizer:
    """URL: http(s)://... and www....; value {"url"} with a scheme and a lower-case host; trailing punctuation is
    left out of the span."""

    type = "URL"

    def cue(self, text: str) -> bool:
        lowered = text.lower()
        return "http" in lowered or "www." in lowered

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for m in URL.finditer(text):
            end = m.end()
            while end > m.start() and text[end - 1] in TRAILING_PUNCTUATION:
                end -= 1
            span = text[m.start() : end]
            url = span if "://" in span else "http://" + span
            scheme, _, rest = url.partition("://")
            host, slash, path = rest.partition("/")
            value = {"url": f"{scheme.lower()}://{host.lower()}{slash}{path}"}
            found.append(Entity("URL", m.start(), end, span, 1.0, value, "rule"))
        return found


class IdCardRecognizer:
    """ID_CARD: an 18-character mainland resident ID whose check character and birth date are valid; value
    {"id": upper-cased, "region": its first 6 digits, "birth_date": ISO date}."""

    type = "ID_CARD"

    def cue(self, text: str) -> bool:
        return sum(ch.isdigit() for ch in text) >= 17

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for m in ID_NUMBER.finditer(text):
            number = m.group().upper()
            birth = _birth_date(number)
            if birth is None or not valid_id_checksum(number):
                continue
            value = {"id": number, "region": number[:6], "birth_date": birth.isoformat()}
            found.append(Entity("ID_CARD", m.start(), m.end(), m.group(), 1.0, value, "rule"))
        return found


def valid_id_checksum(number: str) -> bool:
    """GB 11643-1999: the 18th character is the ISO 7064 MOD 11-2 check of the first 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(number[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == number[17].upper()


def _birth_date(number: str) -> date | None:
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        return None
    return born if 1900 <= born.year <= date.today().year else None
