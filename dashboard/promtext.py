"""Prometheus text exposition -> a snapshot {sample name: {sorted labels: value}} of the series we use."""

from __future__ import annotations

import logging
import math
from typing import Iterable, Iterator, Mapping

from prometheus_client.parser import text_string_to_metric_families

logger = logging.getLogger(__name__)

Labels = tuple[tuple[str, str], ...]
Snapshot = dict[str, dict[Labels, float]]

KEPT_PREFIXES = ("credit_", "process_start_time_seconds")


def labels_of(**labels: str) -> Labels:
    """The sorted label tuple a snapshot uses: ``labels_of(stage="filter")``."""
    return tuple(sorted(labels.items()))


def parse(text: str, prefixes: Iterable[str] = KEPT_PREFIXES) -> Snapshot:
    """The samples of ``text`` whose names start with one of ``prefixes``; ValueError on malformed text.

    NaN samples are dropped (a gauge nobody set); the same series twice keeps the last value.
    """
    prefixes = tuple(prefixes)
    out: Snapshot = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(prefixes):
            continue
        for sample in family.samples:
            if not sample.name.startswith(prefixes) or math.isnan(sample.value):
                continue
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = float(sample.value)
    return out


def label(labels: Labels, name: str, default: str = "") -> str:
    """The value of label ``name`` in a series' labels."""
    for k, v in labels:
        if k == name:
            return v
    return default


def select(snapshot: Mapping[str, Mapping[Labels, float]], name: str) -> Iterator[tuple[Labels, float]]:
    """(labels, value) of every series named ``name``."""
    yield from snapshot.get(name, {}).items()


def total(snapshot: Mapping[str, Mapping[Labels, float]], name: str, **match: str) -> float | None:
    """The sum of the series named ``name`` whose labels include ``match``; None when there is none."""
    found = None
    for labels, value in select(snapshot, name):
        if all(label(labels, k) == v for k, v in match.items()):
            found = (found or 0.0) + value
    return found


def grouped(snapshot: Mapping[str, Mapping[Labels, float]], name: str, by: str | tuple[str, ...]) -> dict:
    """Sums of the series named ``name`` per value of label ``by`` (or per tuple of values of several labels)."""
    out: dict = {}
    for labels, value in select(snapshot, name):
        group = label(labels, by) if isinstance(by, str) else tuple(label(labels, b) for b in by)
        out[group] = out.get(group, 0.0) + value
    return out
