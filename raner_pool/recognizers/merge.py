"""The one overlap policy between the model's entities and the rules' (README, "Entity types"):

- the model's entities stay, whole: a rule entity that overlaps one is dropped (nothing splits a model entity),
  unless it comes from a user's dictionary or pattern entry marked `override`, which then replaces every model
  entity it overlaps;
- one exception, for what the model cannot read: a calendar date with its year (二〇二三年七月二十八日) replaces
  the model's entities it overlaps when the model is unsure of every one of them (prob < UNSURE): the model reads
  〇 and dates in Chinese numerals as names (PER 于二〇, LOC 二〇二);
- rule entities never overlap each other: overriding entries first, then the longer, then users' entries before
  the built-in types, then the type listed first in PRIORITY, then the earlier.
"""

from __future__ import annotations

import bisect
import re

from raner_pool.entities import Entity

PRIORITY = ("ID_CARD", "PHONE", "EMAIL", "URL", "MONEY", "PERCENT", "TIME", "TITLE")
SOURCE_ORDER = ("dictionary", "pattern", "rule")
UNSURE = 0.8
"""Below this probability a model entity gives way to a calendar date it overlaps."""
DATED = re.compile(r"[0-9０-９零〇○一二三四五六七八九]{4}年")


def overrides(entity: Entity) -> bool:
    """Whether a user's entry asked to win over the model."""
    return entity.source in ("dictionary", "pattern") and bool(entity.value and entity.value.get("override"))


def is_calendar_date(entity: Entity) -> bool:
    """A TIME that names its year (2023年11月2日, 二〇二二年九月)."""
    return entity.type == "TIME" and DATED.search(entity.span) is not None


def merge(model: list[Entity], rules: list[Entity]) -> list[Entity]:
    """The model's entities and the rule entities that fit beside them, in text order (n log n: a 1 MB text has
    hundreds of thousands of entities)."""
    def rank(entity: Entity) -> tuple[bool, int, int, int, int]:
        order = PRIORITY.index(entity.type) if entity.type in PRIORITY else len(PRIORITY)
        source = SOURCE_ORDER.index(entity.source) if entity.source in SOURCE_ORDER else len(SOURCE_ORDER)
        return (not overrides(entity), -(entity.end - entity.start), source, order, entity.start)

    ordered = sorted(rules, key=rank)
    winners = sorted(_fit([e for e in ordered if overrides(e)], [], []), key=lambda e: e.start)
    starts = [e.start for e in winners]
    ends = [e.end for e in winners]
    kept_model = [e for e in model if not _overlaps(starts, ends, e)]
    kept_model = _yield_to_dates(kept_model, [e for e in rules if is_calendar_date(e)])
    spans = sorted([*winners, *kept_model], key=lambda e: e.start)
    others = _fit([e for e in ordered if not overrides(e)], [e.start for e in spans], [e.end for e in spans])
    return sorted([*kept_model, *winners, *others], key=lambda e: (e.start, e.end))


def _yield_to_dates(model: list[Entity], dates: list[Entity]) -> list[Entity]:
    """The model's entities less those that overlap a calendar date whose overlapping model entities are all
    unsure (see the module doc)."""
    if not dates or not model:
        return model
    dropped: set[int] = set()
    for date in dates:
        touched = [i for i, e in enumerate(model) if e.start < date.end and date.start < e.end]
        if touched and all(model[i].prob < UNSURE for i in touched):
            dropped.update(touched)
    return [e for i, e in enumerate(model) if i not in dropped]


def _fit(candidates: list[Entity], starts: list[int], ends: list[int]) -> list[Entity]:
    """The candidates, in order, that overlap neither the taken spans (sorted `starts`/`ends`) nor each other."""
    kept = []
    for entity in candidates:
        if _overlaps(starts, ends, entity):
            continue
        at = bisect.bisect_right(starts, entity.start)
        starts.insert(at, entity.start)
        ends.insert(at, entity.end)
        kept.append(entity)
    return kept


def _overlaps(starts: list[int], ends: list[int], entity: Entity) -> bool:
    """Whether `entity` overlaps one of the non-overlapping spans given by sorted `starts` and `ends`."""
    at = bisect.bisect_right(starts, entity.start)
    return bool((at and ends[at - 1] > entity.start) or (at < len(starts) and starts[at] < entity.end))
