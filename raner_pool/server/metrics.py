"""Prometheus metrics of one server: request counts and latency, queue wait, batch sizes, pool gauges."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from raner_pool.pool import RaNERModelPool
from raner_pool.registry import ModelRegistry

log = logging.getLogger("raner_pool.server")
disable_created_metrics()  # the *_created series only double what a scraper already knows

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class PoolCollector(Collector):
    """Reads every pool's state at scrape time, so the gauges are never stale."""

    def __init__(self, models: ModelRegistry) -> None:
        self.models = models

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        size = GaugeMetricFamily("raner_pool_size", "Instances in the model's pool", labels=["model"])
        in_use = GaugeMetricFamily("raner_pool_in_use", "Instances checked out right now", labels=["model"])
        waiting = GaugeMetricFamily("raner_pool_waiting", "Requests waiting for an instance", labels=["model"])
        ready = GaugeMetricFamily("raner_model_ready", "1 when the model is loaded and warmed up", labels=["model"])
        info = GaugeMetricFamily("raner_model_info", "The version (content hash) each model serves",
                                 labels=["model", "version"])
        loads = CounterMetricFamily("raner_model_loads", "Pools that started serving (first load and reloads)",
                                    labels=["model"])
        failures = CounterMetricFamily("raner_model_load_failures", "Loads and reloads that failed", labels=["model"])
        hits = CounterMetricFamily("raner_cache_hits", "Texts answered from the result cache", labels=["model"])
        misses = CounterMetricFamily("raner_cache_misses", "Texts the result cache did not have", labels=["model"])
        errors = CounterMetricFamily("raner_cache_errors", "Cache reads or writes that failed (answers were "
                                     "computed anyway)", labels=["model"])
        for spec, slot in self.models.entries():
            name = spec.name
            pool = slot.pool
            ready.add_metric([name], 0 if pool is None else 1)
            loads.add_metric([name], slot.loads)
            failures.add_metric([name], slot.load_failures)
            if pool is not None:
                info.add_metric([name, pool.version], 1)
                stats = pool.stats()
                size.add_metric([name], stats.size)
                in_use.add_metric([name], stats.in_use)
                waiting.add_metric([name], stats.waiting)
                if pool.cache is not None:
                    hits.add_metric([name], pool.cache.hits)
                    misses.add_metric([name], pool.cache.misses)
                    errors.add_metric([name], pool.cache.errors)
        yield from (size, in_use, waiting, ready, info, loads, failures, hits, misses, errors)


class PoolSampler:
    """With several worker processes: copies this worker's `PoolCollector` readings into multiprocess gauges and
    counters every `interval_s`, so a scrape of any worker sums the pools of all (gauges of live workers only)."""

    LIVE_MIN = frozenset({"raner_model_ready"})
    LIVE_MAX = frozenset({"raner_model_info"})

    def __init__(self, models: ModelRegistry, interval_s: float = 1.0) -> None:
        self.collector = PoolCollector(models)
        self.interval_s = interval_s
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._counted: dict[tuple[str, tuple[str, ...]], float] = {}
        self._seen: dict[str, set[tuple[str, ...]]] = {}
        threading.Thread(target=self._run, name="raner-metrics", daemon=True).start()

    def _run(self) -> None:
        while True:
            try:
                self.sample()
            except Exception:  # a metrics hiccup must never stop the sampler
                log.exception("sampling the pools for /metrics failed")
            time.sleep(self.interval_s)

    def sample(self) -> None:
        for family in self.collector.collect():
            seen = self._seen.setdefault(family.name, set())
            now: set[tuple[str, ...]] = set()
            for sample in family.samples:
                labels = tuple(sample.labels.values())
                now.add(labels)
                if family.type == "gauge":
                    self._gauge(family, list(sample.labels)).labels(*labels).set(sample.value)
                else:
                    counted = self._counted.get((family.name, labels), 0.0)
                    # a reloaded model's new pool counts from 0 again: all it counted is new
                    delta = sample.value - counted if sample.value >= counted else sample.value
                    self._counter(family, list(sample.labels)).labels(*labels).inc(delta)
                    self._counted[(family.name, labels)] = sample.value
            if family.type == "gauge":
                for gone in seen - now:  # a removed model, an old version: no longer reported by this worker
                    self._gauges[family.name].labels(*gone).set(0)
            seen |= now

    def _gauge(self, family: Metric, labels: list[str]) -> Gauge:
        if family.name not in self._gauges:
            name = family.name
            mode: Literal["livemin", "livemax", "livesum"] = (
                "livemin" if name in self.LIVE_MIN else "livemax" if name in self.LIVE_MAX else "livesum"
            )
            self._gauges[name] = Gauge(name, family.documentation, labels, registry=None, multiprocess_mode=mode)
        return self._gauges[family.name]

    def _counter(self, family: Metric, labels: list[str]) -> Counter:
        if family.name not in self._counters:
            self._counters[family.name] = Counter(family.name, family.documentation, labels, registry=None)
        return self._counters[family.name]


class ServerMetrics:
    """The collectors one app records into, in a registry of its own (several apps may share a process). With
    several worker processes (PROMETHEUS_MULTIPROC_DIR set) every worker writes to shared files and a scrape of
    any one of them reports the whole server."""

    def __init__(self, models: ModelRegistry) -> None:
        multiprocess_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        own = None if multiprocess_dir else CollectorRegistry()
        self.registry = own or CollectorRegistry()
        self.requests = Counter(
            "raner_requests", "HTTP requests by route, model and status", ["route", "model", "status"],
            registry=own,
        )
        self.request_duration = Histogram(
            "raner_request_duration_seconds", "Time from request to response", ["route"],
            buckets=LATENCY_BUCKETS, registry=own,
        )
        self.queue_wait = Histogram(
            "raner_queue_wait_seconds", "Time a request waited for a free pool instance", ["model"],
            buckets=LATENCY_BUCKETS, registry=own,
        )
        self.batch_size = Histogram(
            "raner_batch_size", "Requests served by one forward pass (micro-batch)", ["model"],
            buckets=BATCH_BUCKETS, registry=own,
        )
        self.inference_errors = Counter(
            "raner_inference_errors", "Engine calls that raised", ["model"], registry=own
        )
        self.slow_clients = Counter(
            "raner_slow_clients_closed", "Connections closed for sending their headers or body too slowly",
            ["phase"], registry=own,
        )
        if multiprocess_dir:
            multiprocess.MultiProcessCollector(self.registry, path=multiprocess_dir)
            PoolSampler(models)
        else:
            self.registry.register(PoolCollector(models))

    def watch_pool(self, model: str, pool: RaNERModelPool) -> None:
        """Record the batch size and queue waits of every shared batch `pool` runs."""
        def record(calls: int, waits: list[float]) -> None:
            self.batch_size.labels(model).observe(calls)
            for wait in waits:
                self.queue_wait.labels(model).observe(wait)

        pool.add_batch_listener(record)
