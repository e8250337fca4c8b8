"""The actors: each loads one `RaNERModelPool` and annotates the Arrow batches Ray Data hands it."""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from raner_pool.distributed.reading import text_error
from raner_pool.errors import RaNERError

if TYPE_CHECKING:
    import pyarrow as pa
    from ray.data import Dataset


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
    timezone: str | None = None
    """The IANA zone TIME values are read in; None: each actor's process default (raner_pool.timezones)."""

    def __post_init__(self) -> None:
        for name in ("concurrency", "pool_size", "torch_threads", "batch_rows", "batch_chars"):
            if getattr(self, name) < 1:
                raise RaNERError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.num_cpus < 0:
            raise RaNERError(f"num_cpus must be 0 or more, got {self.num_cpus}")


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
                                   dtype=config.dtype, torch_threads=config.torch_threads, timezone=config.timezone)
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
