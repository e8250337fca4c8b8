"""Annotated data as users have it, one reader per format, the format found from the content:

- ``conll``: one ``char TAG`` per line (space or tab; extra middle columns ignored), a blank line between
  sentences, tags in BIO, BIOES/BILOU or BMES (MSRA's files, most Chinese NER corpora);
- ``jsonl``: what ``/ner`` returns, one ``{"text", "entities": [{"start", "end", "type"}]}`` a line;
- ``doccano``: its JSONL export, ``{"text", "label": [[start, end, "TYPE"]]}`` or, with relations on,
  ``{"text", "entities": [{"start_offset", "end_offset", "label"}]}``;
- ``label-studio``: its JSON export, a list of tasks with ``annotations[].result[]`` regions of type ``labels``;
  cancelled annotations are skipped and the newest remaining one of a task is used.

Offsets are code points (Python ``str`` indices), end exclusive, in every format.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from raner_pool.tagging import decode_spans, split_tag
from raner_pool.training.examples import DataError, Example, Span, checked_example

FORMATS = ("conll", "jsonl", "doccano", "label-studio")


def read_examples(path: Path, format: str | None = None) -> list[Example]:
    """Every example of `path`, checked; `DataError` (file and line) for the first problem or an empty file."""
    try:
        content = Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"{path}: cannot read it as UTF-8 text ({error})") from None
    if not content.strip():
        raise DataError(f"{path}: the file is empty")
    chosen = format or detect_format(path, content)
    if chosen not in READERS:
        raise DataError(f"{path}: unknown format {chosen!r}; use one of {', '.join(FORMATS)}")
    examples = list(READERS[chosen](path, content))
    if not examples:
        raise DataError(f"{path}: no annotated texts in it (read as {chosen})")
    return examples


def detect_format(path: Path, content: str) -> str:
    """The format of `content`: a JSON array is Label Studio's export, JSON lines are told apart by their keys,
    anything else is read as CoNLL."""
    stripped = content.lstrip()
    if stripped.startswith("["):
        return "label-studio"
    if not stripped.startswith("{"):
        return "conll"
    first_line = next(number for number, line in enumerate(content.splitlines(), 1) if line.strip())
    record = _json_line(path, first_line, stripped.splitlines()[0])
    if "annotations" in record:
        return "label-studio"
    entities = record.get("entities")
    if "label" in record or "labels" in record or (
        isinstance(entities, list) and entities and isinstance(entities[0], dict) and "start_offset" in entities[0]
    ):
        return "doccano"
    return "jsonl"


def _json_line(path: Path, number: int, line: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{number}: not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(record, dict):
        raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
    return record


def _json_lines(path: Path, content: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, line in enumerate(content.splitlines(), 1):
        if line.strip():
            yield f"{path}:{number}", _json_line(path, number, line)


def _field(record: dict[str, Any], key: str, where: str) -> Any:
    if key not in record:
        raise DataError(f"{where}: no {key!r} field (fields: {', '.join(map(repr, record)) or 'none'})")
    return record[key]


def _list_field(record: dict[str, Any], key: str, where: str, default: list[Any] | None = None) -> list[Any]:
    value = record.get(key, default) if default is not None else _field(record, key, where)
    if not isinstance(value, list):
        raise DataError(f"{where}: {key!r} must be a list, not {type(value).__name__}")
    return value


def read_ner_jsonl(path: Path, content: str) -> Iterator[Example]:
    """`/ner`'s own answers: `text`, and `entities` with `start`, `end`, `type` (and optionally `span`/`text`)."""
    for where, record in _json_lines(path, content):
        spans, quoted = [], []
        for entity in _list_field(record, "entities", where, default=[]):
            if not isinstance(entity, dict):
                raise DataError(f"{where}: each entity must be an object with start, end and type")
            spans.append(Span(_field(entity, "start", where), _field(entity, "end", where),
                              _field(entity, "type", where)))
            quoted.append(entity.get("span", entity.get("text")))
        yield checked_example(_field(record, "text", where), spans, where, quoted)


def read_doccano(path: Path, content: str) -> Iterator[Example]:
    """doccano's sequence-labelling export, in either of its shapes."""
    for where, record in _json_lines(path, content):
        spans = []
        if "entities" in record:
            for entity in _list_field(record, "entities", where):
                if not isinstance(entity, dict):
                    raise DataError(f"{where}: each entity must be an object with start_offset, end_offset, label")
                spans.append(Span(_field(entity, "start_offset", where), _field(entity, "end_offset", where),
                                  _field(entity, "label", where)))
        else:
            key = "label" if "label" in record else "labels"
            for item in _list_field(record, key, where, default=[]):
                if not (isinstance(item, list) and len(item) == 3):
                    raise DataError(f"{where}: each {key!r} item must be [start, end, \"TYPE\"], not {item!r}")
                spans.append(Span(item[0], item[1], item[2]))
        yield checked_example(_field(record, "text", where), spans, where)


def read_label_studio(path: Path, content: str) -> Iterator[Example]:
    """Label Studio's JSON export (a list of tasks); tasks with no usable annotation are not training data."""
    try:
        tasks = json.loads(content)
    except json.JSONDecodeError as error:
        raise DataError(f"{path}:{error.lineno}: not valid JSON ({error.msg})") from None
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise DataError(f"{path}: expected Label Studio's JSON export, a list of tasks")
    for index, task in enumerate(tasks):
        where = f"{path}: task {task.get('id', f'#{index + 1}') if isinstance(task, dict) else f'#{index + 1}'}"
        if not isinstance(task, dict):
            raise DataError(f"{where}: expected a task object")
        annotation = newest_annotation(_list_field(task, "annotations", where, default=[]))
        if annotation is None:
            continue
        yield label_studio_example(task, annotation, where)


def newest_annotation(annotations: list[Any]) -> dict[str, Any] | None:
    """The newest annotation that was not cancelled (by `updated_at`, then `created_at`, then list order)."""
    usable = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not usable:
        return None
    return max(enumerate(usable), key=lambda ia: (str(ia[1].get("updated_at") or ia[1].get("created_at") or ""),
                                                  ia[0]))[1]


def label_studio_example(task: dict[str, Any], annotation: dict[str, Any], where: str) -> Example:
    """One task's text (the data key its regions name, else `text`) and the `labels` regions of `annotation`."""
    data = _field(task, "data", where)
    if not isinstance(data, dict):
        raise DataError(f"{where}: 'data' must be an object")
    regions = [r for r in _list_field(annotation, "result", where, default=[])
               if isinstance(r, dict) and r.get("type") == "labels"]
    text_keys = [key for key, value in data.items() if isinstance(value, str)]
    key = "text" if "text" in data or len(text_keys) != 1 else text_keys[0]
    spans, quoted = [], []
    for region in regions:
        value = region.get("value") or {}
        labels = value.get("labels") or []
        if len(labels) != 1:
            raise DataError(f"{where}: region {region.get('id', '?')} has {len(labels)} labels; NER takes one")
        spans.append(Span(_field(value, "start", where), _field(value, "end", where), labels[0]))
        quoted.append(value.get("text"))
    return checked_example(_field(data, key, where), spans, where, quoted)


def read_conll(path: Path, content: str) -> Iterator[Example]:
    """Character-per-line files with BIO, BIOES or BMES tags; an unknown tag is refused with its line."""
    chars: list[str] = []
    tags: list[str] = []
    first_line = 1
    for number, line in enumerate(content.splitlines(), 1):
        fields = line.split()
        if not fields:
            if chars:
                yield _conll_example(chars, tags, f"{path}:{first_line}")
                chars, tags = [], []
            continue
        if not chars:
            first_line = number
        if len(fields) < 2:
            raise DataError(f"{path}:{number}: expected 'CHARACTER TAG', got {line.strip()!r}")
        char, tag = fields[0], fields[-1]
        if len(char) != 1:
            raise DataError(f"{path}:{number}: {char!r} is not one character; this format has one per line")
        if tag != "O" and split_tag(tag) is None:
            raise DataError(f"{path}:{number}: unknown tag {tag!r}: expected O or B-/I-/M-/E-/S-/L-/U-TYPE "
                            "(BIO, BIOES or BMES)")
        chars.append(char)
        tags.append(tag)
    if chars:
        yield _conll_example(chars, tags, f"{path}:{first_line}")


def _conll_example(chars: list[str], tags: list[str], where: str) -> Example:
    spans = [Span(s.start, s.end, s.type) for s in decode_spans(tags)]
    return checked_example("".join(chars), spans, where)


READERS: dict[str, Callable[[Path, str], Iterator[Example]]] = {
    "conll": read_conll,
    "jsonl": read_ner_jsonl,
    "doccano": read_doccano,
    "label-studio": read_label_studio,
}


def read_all(paths: list[Path], format: str | None = None) -> list[Example]:
    """The examples of every file, in order; the first problem in any of them stops the reading."""
    return [example for path in paths for example in read_examples(path, format)]
