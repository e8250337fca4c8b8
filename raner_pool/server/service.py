"""What every route shares: pick the model, enforce its limits, run the work on a pool instance, record metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar

from anyio import to_thread
from fastapi import Request

from raner_pool.engine import NEREngine
from raner_pool.entities import Entity
from raner_pool.errors import PoolBusy, PoolClosed, PoolTimeout
from raner_pool.model_specs import ModelSpec
from raner_pool.pool import RaNERModelPool
from raner_pool.registry import ModelRegistry, UnknownModel
from raner_pool.reload import ModelUnavailable
from raner_pool.server.errors import APIError
from raner_pool.server.metrics import ServerMetrics
from raner_pool.timezones import pick_timezone, reference_in, zone_name

T = TypeVar("T")


class Service:
    """The registry and the metrics of one app, and the one path by which requests reach a model."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models
        self.metrics = ServerMetrics(models)

    def model(self, request: Request, name: str | None) -> ModelSpec:
        """The spec a request names, or a 404 listing the known names."""
        try:
            spec = self.models.resolve(name)
        except UnknownModel as error:
            raise APIError(404, "model_not_found", str(error), param="model") from None
        request.state.model = spec.name
        return spec

    @staticmethod
    def reference(spec: ModelSpec, reference_time: datetime | None = None, timezone: str | None = None) -> datetime:
        """The moment a request's relative times are resolved against, as a wall clock in the zone its times are
        read in: the request's `timezone`, else the model's, else the process's (raner_pool.timezones)."""
        return reference_in(pick_timezone(timezone, spec.timezone), reference_time)

    def run(self, request: Request, spec: ModelSpec, texts: Sequence[str], work: Callable[[RaNERModelPool], T]) -> T:
        """Check the texts against the model's limits, then run `work` on its serving pool (see `serving`)."""
        with self.serving(request, spec, texts) as pool:
            return work(pool)

    @contextmanager
    def serving(self, request: Request, spec: ModelSpec, texts: Sequence[str]) -> Iterator[RaNERModelPool]:
        """The model's serving pool, leased for the block (whose version the request records, for
        X-Model-Version), once the texts are within the model's limits; pool refusals in the block become
        503/429. Works around an `await` too: the lease lasts until the awaited answer is in."""
        if len(texts) > spec.max_batch_texts:
            raise APIError(413, "too_many_texts",
                           f"texts has {len(texts)} items; the limit is {spec.max_batch_texts}", param="texts")
        for index, text in enumerate(texts):
            if len(text) > spec.max_text_chars:
                where = "text" if len(texts) == 1 else f"texts[{index}]"
                raise APIError(413, "text_too_long",
                               f"{where} has {len(text)} characters; the limit is {spec.max_text_chars}", param=where)
        try:
            with self.models.lease(spec.name) as pool:
                request.state.model_version = pool.version
                request.state.texts = len(texts)
                yield pool
        except ModelUnavailable as error:
            if error.failure:
                raise APIError(503, "model_unavailable", str(error)) from None
            raise APIError(503, "model_loading", str(error), retry_after=5) from None
        except UnknownModel as error:  # removed by a reload since the request resolved it
            raise APIError(404, "model_not_found", str(error), param="model") from None
        except PoolTimeout:
            raise APIError(503, "pool_timeout", f"no instance of {spec.name!r} became free within "
                           f"{spec.request_timeout_s} s; retry later", retry_after=1) from None
        except PoolBusy:
            raise APIError(429, "queue_full", f"too many requests are waiting for {spec.name!r} "
                           f"(max_waiting={spec.max_waiting}); retry later", retry_after=1) from None
        except PoolClosed:
            raise APIError(503, "shutting_down", "the server is shutting down", retry_after=1) from None
        except APIError:
            raise
        except Exception:
            self.metrics.inference_errors.labels(spec.name).inc()
            raise

    def on_engine(
        self, request: Request, spec: ModelSpec, texts: Sequence[str], work: Callable[[NEREngine], T]
    ) -> T:
        """Run `work` on one checked-out instance of the model, within its deadline."""
        return self.run(request, spec, texts, lambda pool: self._checked_out(pool, spec, work))

    def _checked_out(self, pool: RaNERModelPool, spec: ModelSpec, work: Callable[[NEREngine], T]) -> T:
        asked = time.perf_counter()
        with pool.checkout(timeout=spec.request_timeout_s) as engine:
            self.metrics.queue_wait.labels(spec.name).observe(time.perf_counter() - asked)
            self.metrics.batch_size.labels(spec.name).observe(1)
            return work(engine)

    async def entities(
        self, request: Request, spec: ModelSpec, texts: Sequence[str], reference: datetime | None = None,
        types: Collection[str] | None = None,
    ) -> list[list[Entity]]:
        """Entities of each text (of `types` only, when given), times read in the zone of `reference` (from
        `reference`; default: now, in the model's zone) and relative ones resolved against it: awaited from the
        shared micro-batches, so no thread waits per request; on a worker thread when the pool cannot take
        submissions (batching off, or a result cache to consult)."""
        reference = reference if reference is not None else self.reference(spec)
        with self.serving(request, spec, texts) as pool:
            if pool.submits:
                results = await self._submitted(pool, spec, texts, reference)
            else:
                results = await to_thread.run_sync(self._blocking_entities, pool, spec, texts, reference)
        return results if types is None else [[e for e in found if e.type in types] for found in results]

    @staticmethod
    async def _submitted(
        pool: RaNERModelPool, spec: ModelSpec, texts: Sequence[str], reference: datetime
    ) -> list[list[Entity]]:
        answer = asyncio.wrap_future(pool.submit(texts, reference_time=reference, timezone=zone_name(reference)))
        try:
            return await asyncio.wait_for(answer, spec.request_timeout_s)
        except TimeoutError:  # wait_for has cancelled the call (withdrawn if still queued)
            raise PoolTimeout(f"no result within {spec.request_timeout_s} s") from None

    def _blocking_entities(
        self, pool: RaNERModelPool, spec: ModelSpec, texts: Sequence[str], reference: datetime
    ) -> list[list[Entity]]:
        timezone = zone_name(reference)
        if spec.batching:
            return pool.predict_batch(texts, timeout=spec.request_timeout_s, reference_time=reference,
                                      timezone=timezone)
        found = self._checked_out(pool, spec, lambda engine: engine.predict_batch(texts))
        return pool.with_rules(texts, found, reference, timezone)

    def entity_types(self, spec: ModelSpec) -> list[str]:
        """The types the model's serving pool returns (none while it loads)."""
        pool = self.models.slot(spec.name).pool
        return pool.entity_types if pool is not None else []

    def check_types(self, spec: ModelSpec, types: list[str] | None) -> set[str] | None:
        """A request's `types` filter as a set, or a 422 naming the first type the model does not serve."""
        if types is None:
            return None
        served = self.entity_types(spec)
        for index, name in enumerate(types):
            if served and name not in served:
                raise APIError(422, "unknown_type", f"types[{index}] is {name!r}, which model {spec.name!r} does not "
                               f"serve; it serves {', '.join(served)}", param=f"types[{index}]")
        return set(types)


def entity_json(spec: ModelSpec, entity: Entity) -> dict[str, Any]:
    """An entity as /ner returns it: ModelScope's keys plus the type's colour."""
    return {**entity.to_dict(), "color": spec.color(entity.type)}


def hf_entity_json(entity: Entity) -> dict[str, Any]:
    """An entity in transformers' aggregated pipeline shape, with our value and source."""
    return {"entity_group": entity.type, "score": entity.prob, "word": entity.span, "start": entity.start,
            "end": entity.end, "value": entity.value, "source": entity.source}
