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

from raner_pool.distributed.actors import AnnotateConfig, annotate_dataset, annotate_with, chunks_by_chars
from raner_pool.distributed.files import FileJob, RunSummary, annotate_files, describe, plan_jobs
from raner_pool.distributed.reading import input_format, read_files

__all__ = [
    "AnnotateConfig",
    "FileJob",
    "RunSummary",
    "annotate_dataset",
    "annotate_files",
    "annotate_with",
    "chunks_by_chars",
    "describe",
    "input_format",
    "plan_jobs",
    "read_files",
]
