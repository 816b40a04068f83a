"""Prometheus plumbing for every process: its metrics (one process, or gunicorn's workers), exposition, hooks.

Single process (the producer, a dev server, tests): the metrics live in one registry of this process, exported
with the process, platform and gc collectors.

Several processes (gunicorn workers): prometheus-client's multiprocess mode. ``PROMETHEUS_MULTIPROC_DIR`` names a
folder where each worker keeps its values in memory-mapped files; a scrape, answered by any worker, merges every
file (counters and histograms summed over the workers, dead ones included). The launcher sets the variable
(``deploy.services.GunicornApp``: a folder per service under the run folder); the gunicorn configuration files'
hooks (``gunicorn_on_starting``, ``gunicorn_post_fork``, ``gunicorn_child_exit`` here) make one when it is missing,
empty it when gunicorn starts, and drop a dead worker's live gauges. prometheus-client picks its value store when
it is first imported; ``process_metrics`` picks again when the variable appeared later (a configuration file that
imported prometheus-client before gunicorn's ``on_starting`` set it), before it makes any metric, and makes its
metrics afresh when the mode changed, so the order of imports cannot silently leave a worker counting in private.
Under gunicorn the process_* series describe the gunicorn master (the service's long-lived process): a scrape is
answered by any worker, and one worker's CPU counter would jump between scrapes.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

logger = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"   # multiprocess mode's folder; unset: single-process mode
# The text format every Prometheus reads (generate_latest writes it; 0.0.4 is the content type of that format).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_OWNED_DIR_ENV = "CREDIT_METRICS_OWNED_DIR"  # set when gunicorn_on_starting made the folder (removed on exit)


def multiprocess_dir() -> str | None:
    """PROMETHEUS_MULTIPROC_DIR, or None (single-process mode)."""
    return os.environ.get(MULTIPROC_ENV) or None


def _sync_value_class(want_multiprocess: bool) -> None:
    """Make prometheus-client's value store match the mode before a metric is made (see the module docstring)."""
    from prometheus_client import values

    if bool(getattr(values.ValueClass, "_multiprocess", False)) != want_multiprocess:
        values.ValueClass = values.get_value_class()
        logger.info("prometheus-client value store switched to %s mode",
                    "multiprocess" if want_multiprocess else "single-process")


class ProcessMetrics:
    """The metrics of this process, made once by name (``counter``, ``histogram``, ``gauge``) in one registry."""

    def __init__(self, directory: str | None):
        from prometheus_client import CollectorRegistry

        if directory is not None:
            Path(directory).mkdir(parents=True, exist_ok=True)
        _sync_value_class(directory is not None)
        self.multiprocess_dir = directory
        self.registry = CollectorRegistry(auto_describe=True)
        self._metrics: dict[str, Any] = {}
        self._lock = threading.Lock()
        if directory is None:
            from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

            for default in (ProcessCollector, PlatformCollector, GCCollector):
                default(registry=self.registry)

    def _get(self, kind: type, name: str, documentation: str, labelnames: Sequence[str], **kwargs) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            with self._lock:
                metric = self._metrics.get(name)
                if metric is None:
                    metric = kind(name, documentation, labelnames=tuple(labelnames), registry=self.registry,
                                  **kwargs)
                    self._metrics[name] = metric
        if type(metric) is not kind or metric._labelnames != tuple(labelnames):
            raise ValueError(f"metric {name} exists already as a {type(metric).__name__} with labels "
                             f"{metric._labelnames}")
        return metric

    def counter(self, name: str, documentation: str, labelnames: Sequence[str] = ()) -> Any:
        from prometheus_client import Counter

        return self._get(Counter, name, documentation, labelnames)

    def histogram(self, name: str, documentation: str, labelnames: Sequence[str] = (),
                  buckets: Sequence[float] | None = None) -> Any:
        from prometheus_client import Histogram

        return self._get(Histogram, name, documentation, labelnames,
                         **({} if buckets is None else {"buckets": tuple(buckets)}))

    def gauge(self, name: str, documentation: str, labelnames: Sequence[str] = (),
              multiprocess_mode: str = "all") -> Any:
        """``multiprocess_mode`` says how the workers' values combine (prometheus-client's modes: livesum...)."""
        from prometheus_client import Gauge

        return self._get(Gauge, name, documentation, labelnames, multiprocess_mode=multiprocess_mode)

    def collector(self) -> Any:
        """What a scrape of this process exports: one registry, or every worker's files merged."""
        from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
        from prometheus_client.multiprocess import MultiProcessCollector

        if self.multiprocess_dir is None:
            return self.registry
        merged = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(merged, path=self.multiprocess_dir)
        ProcessCollector(pid=_service_pid, registry=merged)
        PlatformCollector(registry=merged)
        return merged


class _Collectors:
    """Several collectors read as one (what generate_latest takes)."""

    def __init__(self, collectors: Iterable[Any]):
        self._collectors = list(collectors)

    def collect(self):
        for collector in self._collectors:
            yield from collector.collect()


_processes: dict[str | None, ProcessMetrics] = {}
_processes_lock = threading.Lock()
_gunicorn_master: dict[str, int] = {}


def process_metrics() -> ProcessMetrics:
    """This process's metrics for the mode PROMETHEUS_MULTIPROC_DIR selects now."""
    directory = multiprocess_dir()
    found = _processes.get(directory)
    if found is None:
        with _processes_lock:
            found = _processes.get(directory)
            if found is None:
                found = _processes[directory] = ProcessMetrics(directory)
    return found


def exposition(extra: Iterable[Any] = ()) -> bytes:
    """The text exposition of this process (all workers under gunicorn), plus the ``extra`` collectors' metrics
    (read at scrape time from the answering process)."""
    from prometheus_client import generate_latest

    return generate_latest(_Collectors([process_metrics().collector(), *extra]))


def observe_many(histogram: Any, amounts: Sequence[float]) -> None:
    """``histogram.observe(a)`` for every amount, with one write per bucket rather than per amount (a 10,000
    applicant batch otherwise costs 20,000 locked writes to the multiprocess files)."""
    import bisect

    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for amount in amounts:              # another prometheus-client layout: the public way
            histogram.observe(amount)
        return
    counts = [0] * len(bounds)
    added = 0.0
    for amount in amounts:
        counts[bisect.bisect_left(bounds, amount)] += 1   # the first bucket with amount <= bound, as observe()
        added += amount
    for value, n in zip(buckets, counts):
        if n:
            value.inc(n)
    if amounts:
        total.inc(added)


# -- gunicorn hooks (called from the services' gunicorn configuration files) --------------------------------------

def gunicorn_on_starting(server: Any = None) -> str:
    """In the gunicorn master before any worker: PROMETHEUS_MULTIPROC_DIR set (a private temporary folder when the
    launcher gave none: several workers without it would each count alone) and emptied of the previous run's
    files, so counts start at zero and no dead process's gauge survives a restart. Returns the folder."""
    directory = multiprocess_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="credit-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        os.environ[_OWNED_DIR_ENV] = directory
        logger.info("%s was not set: the workers' metrics live in %s", MULTIPROC_ENV, directory)
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    removed = 0
    for stale in path.glob("*.db"):       # only prometheus-client's files: the folder may hold others
        stale.unlink(missing_ok=True)
        removed += 1
    if removed:
        logger.info("removed %d metric files of a previous run from %s", removed, directory)
    return directory


def gunicorn_post_fork(server: Any = None, worker: Any = None) -> None:
    """In each new worker: remember the master (its process_* series are the service's)."""
    _gunicorn_master["pid"] = os.getppid()


def gunicorn_child_exit(server: Any = None, worker: Any = None) -> None:
    """In the master when a worker exited (or was killed): its live gauges are dropped; its counters stay."""
    directory = multiprocess_dir()
    pid = getattr(worker, "pid", None)
    if directory is None or pid is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)


def gunicorn_on_exit(server: Any = None) -> None:
    """In the master at shutdown: remove the folder gunicorn_on_starting made (a launcher's folder stays)."""
    owned = os.environ.get(_OWNED_DIR_ENV)
    if owned and owned == multiprocess_dir():
        shutil.rmtree(owned, ignore_errors=True)


def gunicorn_hooks(service: str) -> dict[str, Callable[..., Any]]:
    """A Flask service's gunicorn server hooks by gunicorn's names: the folder made and emptied (on_starting), each
    worker counted among the live ones under ``service`` (post_fork), a dead worker's live gauges dropped
    (child_exit), a folder it made removed (on_exit). prometheus-client is imported only inside them."""
    def post_fork(server: Any, worker: Any) -> None:
        from credit_core.http_metrics import worker_started

        worker_started(service)

    return {"on_starting": gunicorn_on_starting, "post_fork": post_fork, "child_exit": gunicorn_child_exit,
            "on_exit": gunicorn_on_exit}


def _service_pid() -> int | str:
    return _gunicorn_master.get("pid") or "self"

