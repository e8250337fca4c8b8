"""File jobs (the CLI's `annotate --ray`): where each input's annotations go, the run on the cluster, and the
writers that rename an output into place only once it is complete."""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from raner_pool.distributed.actors import AnnotateConfig, annotate_with, entity_type
from raner_pool.distributed.reading import OUTPUT_FORMATS, SUFFIX_FORMATS, check_readable, input_format, read_files
from raner_pool.errors import RaNERError

if TYPE_CHECKING:
    import pyarrow as pa


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


def plan_jobs(inputs: Sequence[Path], output: Path, output_format: str | None = None) -> list[FileJob]:
    """Where each input's annotations go. One input: `output` is the file (inside it, if it is a directory).
    Several: `output` is a directory with one ``<input stem>.<jsonl|parquet>`` per input. The output format is
    `output_format`, else .parquet when `output` ends so, else JSONL."""
    if not inputs:
        raise RaNERError("no input files")
    if output_format is not None and output_format not in OUTPUT_FORMATS:
        raise RaNERError(f"unknown output format {output_format!r}; expected one of {OUTPUT_FORMATS}")
    if len(inputs) == 1 and not output.is_dir():
        fmt = output_format or ("parquet" if SUFFIX_FORMATS.get(output.suffix.lower()) == "parquet" else "jsonl")
        return [FileJob(inputs[0], output, input_format(inputs[0]), fmt)]
    fmt = output_format or "jsonl"
    jobs: dict[Path, FileJob] = {}
    for source in inputs:
        target = output / f"{source.stem}.{'jsonl' if fmt == 'doccano' else fmt}"
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
        check_readable(job.source)
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
