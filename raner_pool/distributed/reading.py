"""Input files (text, JSONL, Parquet) as a Ray Dataset of rows {path, line, text, error}, read on the cluster."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from raner_pool.errors import RaNERError

if TYPE_CHECKING:
    import pyarrow as pa
    from ray.data import Dataset

INPUT_FORMATS = ("text", "jsonl", "parquet")
OUTPUT_FORMATS = ("jsonl", "parquet", "doccano")
"""doccano: its import JSONL (`text`, `label: [[start, end, type]]`), written by the single-machine annotate."""
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def text_error(column: str, value: object) -> str:
    """Why `value` of `column` cannot be annotated: missing or not a string."""
    if value is None:
        return f"{column!r} is missing"
    return f"{column!r} is not a string but {type(value).__name__}"


def input_format(path: Path) -> str:
    """"jsonl" (.jsonl, .ndjson, .json), "parquet" (.parquet, .pq), or "text": one text per line."""
    return {"jsonl": "jsonl", "parquet": "parquet"}.get(SUFFIX_FORMATS.get(path.suffix.lower(), ""), "text")


def read_files(
    paths: Sequence[Path], column: str = "text", block_rows: int = 256, block_chars: int = 65_536, read_tasks: int = 2
) -> Dataset:
    """A Dataset of rows {path, line, `column`, error} from text, JSONL and Parquet files, read on the cluster
    (one read task per file, `read_tasks` at once; every node must see the paths). `line` counts from 1 (a
    Parquet file's row number); blocks hold at most `block_rows` rows and `block_chars` characters. A row that
    cannot be read (a JSONL line that is not a JSON object, a text that is not a string) has `column` null and
    `error` saying why."""
    import ray
    from ray.data import TaskPoolStrategy

    for path in paths:
        check_readable(path)
    files = ray.data.from_items(
        [{"path": str(path), "format": input_format(path)} for path in paths], override_num_blocks=max(1, len(paths))
    )
    reader = functools.partial(_read_batch, column=column, block_rows=block_rows, block_chars=block_chars)
    # no CPU reserved (the actors hold them all), so bound the read tasks: each is a Python process of its own
    tasks = TaskPoolStrategy(size=max(1, min(len(paths), read_tasks)))
    return files.map_batches(reader, batch_size=1, batch_format="pyarrow", num_cpus=0, compute=tasks)


def check_readable(path: Path) -> None:
    if not path.is_file():
        raise RaNERError(f"input {path} does not exist or is not a file")
    if input_format(path) == "parquet":
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(path)
        except Exception as error:
            raise RaNERError(f"input {path} is not a readable Parquet file: {error}") from None


def _read_batch(files: pa.Table, column: str, block_rows: int, block_chars: int) -> Iterator[pa.Table]:
    for path, fmt in zip(files.column("path").to_pylist(), files.column("format").to_pylist(), strict=True):
        rows = {"text": _text_rows, "jsonl": _jsonl_rows, "parquet": _parquet_rows}[fmt](Path(path), column)
        yield from _blocks(path, column, rows, block_rows, block_chars)


def _blocks(
    path: str, column: str, rows: Iterator[tuple[int, str | None, str | None]], block_rows: int, block_chars: int
) -> Iterator[pa.Table]:
    import pyarrow as pa

    lines: list[int] = []
    texts: list[str | None] = []
    errors: list[str | None] = []
    chars = 0

    def block() -> pa.Table:
        return pa.table({
            "path": pa.array([path] * len(lines), type=pa.string()),
            "line": pa.array(lines, type=pa.int64()),
            column: pa.array(texts, type=pa.string()),
            "error": pa.array(errors, type=pa.string()),
        })

    for line, text, error in rows:
        lines.append(line)
        texts.append(text)
        errors.append(error)
        chars += len(text or "")
        if len(lines) >= block_rows or chars >= block_chars:
            yield block()
            lines, texts, errors, chars = [], [], [], 0
    if lines:
        yield block()


def _text_rows(path: Path, column: str) -> Iterator[tuple[int, str | None, str | None]]:
    """Lines exactly as `Path.read_text().splitlines()` cuts them (blank lines included), streamed."""
    number = 0
    with open(path, encoding="utf-8", errors="surrogateescape") as lines:
        for physical in lines:
            for text in physical.splitlines():
                number += 1
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    yield number, None, f"line {number} is not valid UTF-8"
                    continue
                yield number, text, None


def _jsonl_rows(path: Path, column: str) -> Iterator[tuple[int, str | None, str | None]]:
    """One row per non-blank line: `column` of its JSON object; `line` is the line number in the file."""
    with open(path, encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, None, f"line {number} is not valid JSON: {error.msg}"
                continue
            if not isinstance(record, dict):
                yield number, None, f"line {number} is not a JSON object"
            elif column not in record:
                yield number, None, f"no {column!r} field"
            elif not isinstance(record[column], str):
                yield number, None, text_error(column, record[column])
            else:
                yield number, record[column], None


def _parquet_rows(path: Path, column: str) -> Iterator[tuple[int, str | None, str | None]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    source = pq.ParquetFile(path)
    if column not in source.schema_arrow.names:
        for number in range(1, source.metadata.num_rows + 1):
            yield number, None, f"no {column!r} column"
        return
    kind = source.schema_arrow.field(column).type
    number = 0
    for batch in source.iter_batches(batch_size=1024, columns=[column]):
        values = batch.column(0)
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            values = values.to_pylist()
            for value in values:
                number += 1
                yield number, None, text_error(column, value) if value is not None else f"{column!r} is missing"
            continue
        for value in values.to_pylist():
            number += 1
            yield (number, value, None) if value is not None else (number, None, text_error(column, None))
