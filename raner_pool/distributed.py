"""Annotate large corpora on a Ray cluster: a Ray Dataset mapped through an actor pool of `RaNERModelPool`s.

Ray is an optional extra (``pip install raner-pool[ray]``): nothing else in raner_pool imports this module, and
this module imports ray only inside its functions, so the core package loads without it.

    import ray
    from raner_pool.distributed import annotate_dataset
    ds = ray.data.from_items([{"text": "马云在杭州"}])
    annotate_dataset(ds, concurrency=2).take_all()   # rows gain entities, error, model_version, node_id

Each actor loads its pool once (in ``__init__``) and annotates the batches Ray hands it, cut into model calls
of at most `batch_chars` characters. A row whose text the model cannot take (missing, not a string, or a text
the model fails on) comes back with an ``error`` and no entities; it never fails the job. A killed actor is
restarted by Ray and its batch retried (`max_restarts`, `max_task_retries`), and Ray Data emits a batch's rows
only once its task has succeeded, so every input row is in the output exactly once.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from raner_pool.errors import RaNERError

if TYPE_CHECKING:
    import pyarrow as pa
    from ray.data import Dataset

INPUT_FORMATS = ("text", "jsonl", "parquet")
OUTPUT_FORMATS = ("jsonl", "parquet")
_SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True)
class AnnotateConfig:
    """What each actor loads and how work is cut up and retried: the knobs of `annotate_dataset`."""

    model: str = "default"
    """"default", a model dir every node can read, or a ModelScope id."""
    backend: str = "modelscope"
    dtype: str = "float32"
    column: str = "text"
    """The column (JSONL field, Parquet column) holding the text to annotate."""
    concurrency: int = 2
    """Actors, each holding one `RaNERModelPool`; a good start is one per node, or cores / torch_threads."""
    pool_size: int = 1
    """Engine instances per actor (1: the actor's batches run one after another)."""
    torch_threads: int = 1
    """Threads per forward pass in each actor; actors x threads should not exceed the cluster's cores."""
    num_cpus: float = 1.0
    """CPUs Ray reserves per actor (set it to torch_threads x pool_size so Ray does not oversubscribe a node)."""
    batch_rows: int = 256
    """Rows Ray hands an actor per call."""
    batch_chars: int = 16_384
    """Characters per model call inside an actor: long documents make smaller calls, so memory stays bounded."""
    max_restarts: int = 3
    """Times Ray restarts an actor whose process or node died."""
    max_task_retries: int = 3
    """Times Ray retries a batch whose actor died mid-batch."""

    def __post_init__(self) -> None:
        for name in ("concurrency", "pool_size", "torch_threads", "batch_rows", "batch_chars"):
            if getattr(self, name) < 1:
                raise RaNERError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_cpus < 0:
            raise RaNERError(f"num_cpus must be 0 or more, got {self.num_cpus}")


@dataclass(frozen=True)
class FileJob:
    """One input file and the output file its annotations go to."""

    source: Path
    output: Path
    input_format: str
    output_format: str


@dataclass
class RunSummary:
    """What a file job did: rows written, rows with errors, which nodes did the work, which weights."""

    model_version: str | None = None
    rows: int = 0
    errors: int = 0
    rows_per_node: dict[str, int] = field(default_factory=dict)
    written: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_json(self) -> str:
        """One JSON line: what the CLI prints to stderr at the end of a run."""
        return json.dumps(asdict(self), ensure_ascii=False)


def entity_type() -> pa.DataType:
    """The Arrow type of the `entities` column: a list of {type, start, end, span, prob}."""
    import pyarrow as pa

    return pa.list_(pa.struct([("type", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
                               ("span", pa.string()), ("prob", pa.float64())]))


def annotate_dataset(
    ds: Dataset,
    model: str = "default",
    backend: str = "modelscope",
    column: str = "text",
    concurrency: int = 2,
    *,
    dtype: str = "float32",
    pool_size: int = 1,
    torch_threads: int = 1,
    num_cpus: float = 1.0,
    batch_rows: int = 256,
    batch_chars: int = 16_384,
    max_restarts: int = 3,
    max_task_retries: int = 3,
) -> Dataset:
    """`ds` with `entities`, `error`, `model_version` and `node_id` columns added, computed by an actor pool
    (lazy: nothing runs until the dataset is consumed). The fields mean what `AnnotateConfig`'s do."""
    config = AnnotateConfig(model, backend, dtype, column, concurrency, pool_size, torch_threads, num_cpus,
                            batch_rows, batch_chars, max_restarts, max_task_retries)
    return annotate_with(ds, config)


def annotate_with(ds: Dataset, config: AnnotateConfig) -> Dataset:
    """`annotate_dataset` with the knobs in one `AnnotateConfig`."""
    from ray.data import ActorPoolStrategy

    with warnings.catch_warnings():
        # max_restarts and max_task_retries have no named parameter yet: they go as remote args (deprecated in 2.60)
        warnings.simplefilter("ignore")
        return ds.map_batches(
            _Annotator,
            fn_constructor_kwargs={"config": config},
            batch_size=config.batch_rows,
            batch_format="pyarrow",
            zero_copy_batch=True,
            compute=ActorPoolStrategy(size=config.concurrency),
            num_cpus=config.num_cpus,
            max_restarts=config.max_restarts,
            max_task_retries=config.max_task_retries,
        )


class _Annotator:
    """The actor: one `RaNERModelPool`, loaded once, annotating every batch Ray hands it."""

    def __init__(self, config: AnnotateConfig) -> None:
        import ray

        from raner_pool.pool import RaNERModelPool

        self.config = config
        self.pool = RaNERModelPool(config.model, pool_size=config.pool_size, backend=config.backend,
                                   dtype=config.dtype, torch_threads=config.torch_threads)
        self.node_id = ray.get_runtime_context().get_node_id()

    def __call__(self, batch: pa.Table) -> pa.Table:
        import pyarrow as pa

        column = self.config.column
        n = batch.num_rows
        errors: list[str | None] = (batch.column("error").to_pylist() if "error" in batch.column_names
                                    else [None] * n)
        if column in batch.column_names:
            values: list[Any] = batch.column(column).to_pylist()
        else:
            values = [None] * n
            errors = [e or f"no {column!r} column" for e in errors]
        entities: list[list[dict[str, Any]]] = [[] for _ in range(n)]
        todo: list[int] = []
        for i, value in enumerate(values):
            if errors[i] is None:
                if isinstance(value, str):
                    todo.append(i)
                else:
                    errors[i] = text_error(column, value)
        for chunk in chunks_by_chars([(i, values[i]) for i in todo], self.config.batch_chars):
            for i, result in zip(chunk, self._predict([values[i] for i in chunk]), strict=True):
                if isinstance(result, str):
                    errors[i] = result
                else:
                    entities[i] = result
        added = {
            "entities": pa.array(entities, type=entity_type()),
            "error": pa.array(errors, type=pa.string()),
            "model_version": pa.array([self.pool.version] * n, type=pa.string()),
            "node_id": pa.array([self.node_id] * n, type=pa.string()),
        }
        for name, array in added.items():
            if name in batch.column_names:
                batch = batch.set_column(batch.column_names.index(name), name, array)
            else:
                batch = batch.append_column(name, array)
        return batch

    def _predict(self, texts: list[str]) -> list[list[dict[str, Any]] | str]:
        """Entities of each text; where the batch fails, each text alone, and an error message for those that
        fail alone."""
        try:
            return [[e.to_dict() for e in found] for found in self.pool.predict_batch(texts)]
        except Exception as error:
            if len(texts) == 1:
                return [f"the model failed on this text: {type(error).__name__}: {error}"]
        return [result for text in texts for result in self._predict([text])]


def text_error(column: str, value: object) -> str:
    """Why `value` of `column` cannot be annotated: missing or not a string."""
    if value is None:
        return f"{column!r} is missing"
    return f"{column!r} is not a string but {type(value).__name__}"


def chunks_by_chars(items: Sequence[tuple[int, str]], budget: int) -> Iterator[list[int]]:
    """The indexes of `items`, in order, cut into runs of at most `budget` characters (a longer text alone)."""
    chunk: list[int] = []
    chars = 0
    for index, text in items:
        if chunk and chars + len(text) > budget:
            yield chunk
            chunk, chars = [], 0
        chunk.append(index)
        chars += len(text)
    if chunk:
        yield chunk


# ---------------------------------------------------------------- reading files


def input_format(path: Path) -> str:
    """"jsonl" (.jsonl, .ndjson, .json), "parquet" (.parquet, .pq), or "text": one text per line."""
    return {"jsonl": "jsonl", "parquet": "parquet"}.get(_SUFFIX_FORMATS.get(path.suffix.lower(), ""), "text")


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
        _check_readable(path)
    files = ray.data.from_items(
        [{"path": str(path), "format": input_format(path)} for path in paths], override_num_blocks=max(1, len(paths))
    )
    reader = functools.partial(_read_batch, column=column, block_rows=block_rows, block_chars=block_chars)
    # no CPU reserved (the actors hold them all), so bound the read tasks: each is a Python process of its own
    tasks = TaskPoolStrategy(size=max(1, min(len(paths), read_tasks)))
    return files.map_batches(reader, batch_size=1, batch_format="pyarrow", num_cpus=0, compute=tasks)


def _check_readable(path: Path) -> None:
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


# ---------------------------------------------------------------- file jobs (the CLI's `annotate --ray`)


def plan_jobs(inputs: Sequence[Path], output: Path, output_format: str | None = None) -> list[FileJob]:
    """Where each input's annotations go. One input: `output` is the file (inside it, if it is a directory).
    Several: `output` is a directory with one ``<input stem>.<jsonl|parquet>`` per input. The output format is
    `output_format`, else .parquet when `output` ends so, else JSONL."""
    if not inputs:
        raise RaNERError("no input files")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise RaNERError(f"unknown output format {output_format!r}; expected one of {OUTPUT_FORMATS}")
    if len(inputs) == 1 and not output.is_dir():
        fmt = output_format or ("parquet" if _SUFFIX_FORMATS.get(output.suffix.lower()) == "parquet" else "jsonl")
        return [FileJob(inputs[0], output, input_format(inputs[0]), fmt)]
    fmt = output_format or "jsonl"
    jobs: dict[Path, FileJob] = {}
    for source in inputs:
        target = output / f"{source.stem}.{fmt}"
        if target in jobs:
            raise RaNERError(f"inputs {jobs[target].source} and {source} would both write {target}: rename one")
        jobs[target] = FileJob(source, target, input_format(source), fmt)
    return list(jobs.values())


def annotate_files(
    inputs: Sequence[Path],
    output: Path,
    config: AnnotateConfig | None = None,
    *,
    address: str | None = None,
    output_format: str | None = None,
    skip_existing: bool = False,
    progress: bool = False,
) -> RunSummary:
    """Annotate every input file on a Ray cluster and write each one's output file, rows in input order, in
    the single-machine `annotate` format ({"line", "text", "entities"}, plus "error" for a bad row). `address`:
    "auto" or host:port joins a running cluster, None starts a local one. A file's output appears (by rename)
    only once complete, so a failed run leaves no half-written file and `skip_existing` resumes per file."""
    import ray
    from ray.data import DataContext

    config = config or AnnotateConfig()
    started = time.monotonic()
    summary = RunSummary()
    jobs = plan_jobs(inputs, output, output_format)
    if skip_existing:
        summary.skipped = [str(job.output) for job in jobs if job.output.exists()]
        jobs = [job for job in jobs if not job.output.exists()]
    if not jobs:
        return summary
    for job in jobs:
        _check_readable(job.source)
        job.output.parent.mkdir(parents=True, exist_ok=True)
    own_connection = not ray.is_initialized()
    if own_connection:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False,
                 runtime_env={"env_vars": _worker_env()})
    context = DataContext.get_current()
    saved = context.execution_options.preserve_order, context.enable_progress_bars, context.wait_for_min_actors_s
    context.execution_options.preserve_order = True
    context.enable_progress_bars = progress
    context.wait_for_min_actors_s = 600  # every actor has its model before work is handed out: an even spread
    try:
        rows = read_files([job.source for job in jobs], config.column, config.batch_rows,
                          max(config.batch_chars, 1))
        annotated = annotate_with(rows, config)
        by_source = {str(job.source): job for job in jobs}
        with _Writers(by_source, config.column) as writers:
            for batch in annotated.iter_batches(batch_size=None, batch_format="pyarrow"):
                writers.write(batch, summary)
            summary.written = writers.finish()
    finally:
        context.execution_options.preserve_order, context.enable_progress_bars, context.wait_for_min_actors_s = saved
        if own_connection:
            ray.shutdown()
    summary.seconds = round(time.monotonic() - started, 3)
    return summary


def _worker_env() -> dict[str, str]:
    """Environment the driver passes on to its workers: raner-pool's own settings."""
    return {name: value for name, value in os.environ.items() if name.startswith("RANER_POOL_")}


class _Writers:
    """One temp file per input being written; renamed into place when the rows of a later input arrive (order is
    preserved) or at the end; deleted if the run fails."""

    def __init__(self, jobs: dict[str, FileJob], column: str) -> None:
        self.jobs = jobs
        self.column = column
        self.open: dict[str, _Writer] = {}
        self.done: list[str] = []
        self.order = list(jobs)

    def __enter__(self) -> _Writers:
        return self

    def write(self, batch: pa.Table, summary: RunSummary) -> None:
        """Append a batch's rows to their files' temp files, in order."""
        paths = batch.column("path").to_pylist()
        lines = batch.column("line").to_pylist()
        texts = batch.column(self.column).to_pylist()
        entities = batch.column("entities").to_pylist()
        errors = batch.column("error").to_pylist()
        nodes = batch.column("node_id").to_pylist()
        if summary.model_version is None and batch.num_rows:
            summary.model_version = batch.column("model_version")[0].as_py()
        summary.rows += batch.num_rows
        summary.errors += sum(error is not None for error in errors)
        for node, count in Counter(nodes).items():
            summary.rows_per_node[node] = summary.rows_per_node.get(node, 0) + count
        for i, path in enumerate(paths):
            writer = self.open.get(path)
            if writer is None:
                self._finish_before(path)
                writer = self.open[path] = _Writer(self.jobs[path])
            writer.add(lines[i], texts[i], entities[i], errors[i])

    def _finish_before(self, path: str) -> None:
        """Every input before `path` is complete (rows come in input order): rename them into place."""
        for earlier in self.order[: self.order.index(path)]:
            if earlier in self.open:
                self.done.append(self.open.pop(earlier).commit())

    def finish(self) -> list[str]:
        """Rename every remaining file into place (inputs with no rows get an empty output)."""
        for path in self.order:
            writer = self.open.pop(path, None)
            if writer is None and str(self.jobs[path].output) not in self.done:
                writer = _Writer(self.jobs[path])
            if writer is not None:
                self.done.append(writer.commit())
        return self.done

    def __exit__(self, *exc_info: object) -> None:
        for writer in self.open.values():
            writer.discard()
        self.open.clear()


class _Writer:
    """The temp file of one output, JSONL or Parquet, rows checked to arrive in line order."""

    def __init__(self, job: FileJob) -> None:
        self.job = job
        self.temp = job.output.with_name(f".{job.output.name}.{os.getpid()}.tmp")
        self.last_line = 0
        self.rows: dict[str, list[Any]] = {"line": [], "text": [], "entities": [], "error": []}
        self.file: IO[str] | None = None
        self.parquet: Any = None
        if job.output_format == "jsonl":
            self.file = open(self.temp, "w", encoding="utf-8")  # noqa: SIM115  (closed in commit/discard)

    def add(self, line: int, text: str | None, entities: list[dict[str, Any]], error: str | None) -> None:
        """One output row."""
        if line <= self.last_line:
            raise RaNERError(f"{self.job.source}: line {line} came after line {self.last_line}; rows out of order")
        self.last_line = line
        if self.file is not None:
            record: dict[str, Any] = {"line": line, "text": text, "entities": entities}
            if error is not None:
                record["error"] = error
            self.file.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        for name, value in (("line", line), ("text", text), ("entities", entities), ("error", error)):
            self.rows[name].append(value)
        if len(self.rows["line"]) >= 4096:
            self._flush_parquet()

    def _flush_parquet(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pa.schema([("line", pa.int64()), ("text", pa.string()), ("entities", entity_type()),
                            ("error", pa.string())])
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.temp, schema)
        self.parquet.write_table(pa.table(self.rows, schema=schema))
        self.rows = {name: [] for name in self.rows}

    def commit(self) -> str:
        """Close the temp file and rename it to the output; returns the output path."""
        if self.file is not None:
            self.file.close()
        else:
            if self.rows["line"] or self.parquet is None:
                self._flush_parquet()
            self.parquet.close()
        os.replace(self.temp, self.job.output)
        return str(self.job.output)

    def discard(self) -> None:
        """Close and delete the temp file: no half-written output."""
        if self.file is not None:
            self.file.close()
        elif self.parquet is not None:
            self.parquet.close()
        self.temp.unlink(missing_ok=True)


def describe(summary: RunSummary) -> str:
    """A one-line human summary of a run, for the CLI."""
    nodes = len(summary.rows_per_node)
    rate = summary.rows / summary.seconds if summary.seconds else math.nan
    return (f"annotated {summary.rows} rows ({summary.errors} with errors) into {len(summary.written)} files "
            f"on {nodes} node(s) in {summary.seconds:.1f} s ({rate:.0f} rows/s); model {summary.model_version}; "
            f"skipped {len(summary.skipped)} existing")
