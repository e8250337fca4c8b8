"""Choose what to annotate next: a corpus ordered by the model's uncertainty, most uncertain first, each text with
its pre-annotations, as JSONL or doccano's import format (`raner-pool rank`).

A text's uncertainty is 1 minus the lowest probability, over its characters, of the tag the best CRF path gives it
(`NEREngine.with_confidence`): an unsure entity and a close second-best path anywhere both raise it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError
from raner_pool.pool import RaNERModelPool


@dataclass(frozen=True)
class RankedText:
    text: str
    entities: list[Entity]
    uncertainty: float
    line: int


def read_texts(path: Path) -> list[str]:
    """One text a line; a JSONL file's `text` fields (file and line named when one has none)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise RaNERError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if not any(line.strip() for line in lines):
        raise RaNERError(f"{path}: the file is empty")
    if not lines[0].lstrip().startswith("{"):
        return lines
    texts = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise RaNERError(f"{path}:{number}: not valid JSON ({error.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise RaNERError(f"{path}:{number}: expected an object with a 'text' string")
        texts.append(record["text"])
    return texts


def rank_texts(pool: RaNERModelPool, texts: list[str], batch: int = 64) -> list[RankedText]:
    """Every text with its entities (the extra types' included) and uncertainty, most uncertain first (ties in
    corpus order)."""
    ranked: list[RankedText] = []
    for offset in range(0, len(texts), batch):
        chunk = texts[offset : offset + batch]
        with pool.checkout() as engine:
            scored = engine.with_confidence(chunk)
        found = pool.with_rules(chunk, [entities for entities, _ in scored])
        ranked.extend(RankedText(text, entities, round(1.0 - confidence, 6), offset + i + 1)
                      for i, (text, entities, (_, confidence)) in enumerate(zip(chunk, found, scored, strict=True)))
    return sorted(ranked, key=lambda r: (-r.uncertainty, r.line))


def write_ranked(ranked: list[RankedText], output: Path, output_format: str) -> None:
    """JSONL (`text`, `entities`, `uncertainty`, `line`) or doccano's import (`text`, `label: [[start, end,
    type]]`), written beside and renamed into place."""
    partial = output.with_name(f".{output.name}.partial")
    with open(partial, "w", encoding="utf-8") as out:
        for item in ranked:
            record: dict[str, Any]
            if output_format == "doccano":
                record = {"text": item.text, "label": [[e.start, e.end, e.type] for e in item.entities]}
            else:
                record = {"text": item.text, "entities": [e.to_dict() for e in item.entities],
                          "uncertainty": item.uncertainty, "line": item.line}
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    partial.replace(output)
