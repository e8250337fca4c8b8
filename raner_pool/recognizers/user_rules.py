"""Users' own vocabulary: dictionary files (terms matched by Aho-Corasick, longest leftmost first) and pattern files
(regular expressions with a time limit), each entry with a type, an optional id and an optional `override` (it then
wins over an overlapping model entity; see merge.py). Bad files fail with the file and line named.

Dictionary files, TSV (`term<TAB>type[<TAB>id[<TAB>override]]`, `#` comments) or JSONL
(`{"term": ..., "type": ..., "id": ..., "override": true}`); pattern files the same with `pattern` for `term`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from raner_pool.entities import Entity
from raner_pool.errors import RaNERError

log = logging.getLogger(__name__)
TYPE_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,31}")
"""An entity type a user may name: upper case, like the model's (PER) and ours (MONEY)."""
PATTERN_TIMEOUT_S = 0.05
"""The longest one pattern may search one text: a pattern that backtracks without bound gives up, never hangs."""


class RuleFileError(RaNERError):
    """A dictionary or pattern file that cannot be read; the message names the file and the line."""


@dataclass(frozen=True)
class UserEntry:
    """One line of a dictionary or pattern file."""

    text: str
    """The term, or the regular expression."""
    type: str
    id: str | None
    override: bool
    where: str
    """file:line, for messages."""


def read_entries(path: Path, text_field: str) -> list[UserEntry]:
    """The entries of a TSV or JSONL (.jsonl, .json, .ndjson) rule file; `RuleFileError` names the bad line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise RuleFileError(f"cannot read {path}: {error}") from None
    jsonl = path.suffix.lower() in (".jsonl", ".json", ".ndjson")
    entries = []
    for number, line in enumerate(lines, 1):
        where = f"{path}:{number}"
        if not line.strip() or (not jsonl and line.lstrip().startswith("#")):
            continue
        fields = _json_fields(line, where, text_field) if jsonl else _tsv_fields(line, where)
        text, kind, entry_id, override = fields
        if not text:
            raise RuleFileError(f"{where}: the {text_field} is empty")
        if not TYPE_NAME.fullmatch(kind):
            raise RuleFileError(f"{where}: type {kind!r} must be upper-case letters, digits or _ (like PER, DRUG)")
        entries.append(UserEntry(text, kind, entry_id, override, where))
    return entries


def _tsv_fields(line: str, where: str) -> tuple[str, str, str | None, bool]:
    fields = line.split("\t")
    if len(fields) < 2 or len(fields) > 4:
        raise RuleFileError(f"{where}: expected 2 to 4 tab-separated fields (text, type, id, override), "
                            f"got {len(fields)}")
    override = len(fields) == 4 and fields[3].strip().lower() in ("override", "true", "1", "yes")
    if len(fields) == 4 and not override and fields[3].strip().lower() not in ("", "false", "0", "no"):
        raise RuleFileError(f"{where}: the 4th field must be 'override' or empty, not {fields[3]!r}")
    entry_id = fields[2].strip() if len(fields) >= 3 and fields[2].strip() else None
    return fields[0].strip(), fields[1].strip(), entry_id, override


def _json_fields(line: str, where: str, text_field: str) -> tuple[str, str, str | None, bool]:
    try:
        record: Any = json.loads(line)
    except json.JSONDecodeError as error:
        raise RuleFileError(f"{where}: not valid JSON ({error.msg})") from None
    if not isinstance(record, dict):
        raise RuleFileError(f"{where}: expected a JSON object")
    text, kind, entry_id, override = (record.get(text_field), record.get("type"), record.get("id"),
                                      record.get("override", False))
    if not isinstance(text, str) or not isinstance(kind, str):
        raise RuleFileError(f"{where}: {text_field!r} and 'type' must be strings")
    if entry_id is not None and not isinstance(entry_id, str | int):
        raise RuleFileError(f"{where}: 'id' must be a string or a number")
    if not isinstance(override, bool):
        raise RuleFileError(f"{where}: 'override' must be true or false")
    return text, kind, None if entry_id is None else str(entry_id), override


def files_digest(paths: Sequence[Path]) -> str:
    """A short hash of the rule files' contents: part of a model's version, so an edited file is a new version."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path).encode())
        try:
            digest.update(Path(path).read_bytes())
        except OSError as error:
            raise RuleFileError(f"cannot read {path}: {error}") from None
    return digest.hexdigest()[:16]


class DictionaryRecognizer:
    """Every term of the dictionary files, longest leftmost match first (an Aho-Corasick automaton: pyahocorasick,
    built once; matching only reads it, so the threads of a pool share it)."""

    type = "DICTIONARY"

    def __init__(self, paths: Sequence[Path]) -> None:
        import ahocorasick

        self._automaton = ahocorasick.Automaton()
        self.types: set[str] = set()
        for path in paths:
            for entry in read_entries(Path(path), "term"):
                self._automaton.add_word(entry.text, (len(entry.text), entry.type, entry.id, entry.override))
                self.types.add(entry.type)
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def cue(self, text: str) -> bool:
        return not self._empty

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for last, (length, kind, entry_id, override) in self._automaton.iter_long(text):
            start = last + 1 - length
            found.append(Entity(kind, start, last + 1, text[start : last + 1], 1.0,
                                {"id": entry_id, "override": override}, "dictionary"))
        return found


class PatternRecognizer:
    """Every match of the pattern files' regular expressions (the `regex` package, each search bounded by
    PATTERN_TIMEOUT_S); a pattern that times out on a text is skipped for it, and logged by the caller."""

    type = "PATTERN"

    def __init__(self, paths: Sequence[Path]) -> None:
        import regex

        self._patterns: list[tuple[Any, UserEntry]] = []
        for path in paths:
            for entry in read_entries(Path(path), "pattern"):
                try:
                    compiled = regex.compile(entry.text)
                except regex.error as error:
                    raise RuleFileError(f"{entry.where}: not a valid regular expression ({error})") from None
                if compiled.search("") is not None:
                    raise RuleFileError(f"{entry.where}: the pattern matches the empty string")
                self._patterns.append((compiled, entry))
        self.types = {entry.type for _, entry in self._patterns}

    def cue(self, text: str) -> bool:
        return bool(self._patterns)

    def recognize(self, text: str, reference: datetime) -> list[Entity]:
        found = []
        for compiled, entry in self._patterns:
            try:
                matches = list(compiled.finditer(text, timeout=PATTERN_TIMEOUT_S))
            except TimeoutError:
                log.warning("pattern %s took over %s s on a text of %d characters; skipped for it", entry.where,
                            PATTERN_TIMEOUT_S, len(text))
                continue
            found += [Entity(entry.type, m.start(), m.end(), m.group(), 1.0,
                             {"id": entry.id, "override": entry.override}, "pattern")
                      for m in matches if m.end() > m.start()]
        return found
