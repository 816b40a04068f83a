"""The risk API's model metrics: live scores' probability and decisions by model version, and the serving model's
training score distribution (read at scrape time, so it always names the model in use)."""

from __future__ import annotations

import logging
from typing import Any, Iterator, Sequence

from credit_core.metrics import observe_many, process_metrics
from risk_api.scoring import SCORE_BIN_EDGES

logger = logging.getLogger(__name__)

PROBABILITY = "credit_risk_score_probability"
DECISIONS = "credit_risk_decisions_total"
REFERENCE = "credit_risk_model_reference_share"
OUTCOMES = {"approve": "approved", "decline": "declined"}     # the results' decision -> the metric's outcome


def bin_label(edge: float) -> str:
    """A bin's label: its upper edge as the histogram's ``le`` reads ("0.1" .. "1.0")."""
    return f"{edge:.1f}"


def _families() -> tuple[Any, Any]:
    pm = process_metrics()
    return (pm.histogram(PROBABILITY, "Probability of default of each applicant scored, by model version",
                         ("model_version",), buckets=SCORE_BIN_EDGES),
            pm.counter(DECISIONS, "Applicants scored, by decision (approved, declined) and model version",
                       ("outcome", "model_version")))


def record_scores(results: Sequence[dict[str, Any]], model_version: str) -> None:
    """Count the scored results of one request (an applicant with an error is neither scored nor decided)."""
    probabilities: list[float] = []
    outcomes = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        p = result.get("probability_of_default")
        if p is None:
            continue
        probabilities.append(p)
        outcomes[result["decision"]] += 1
    if not probabilities:
        return
    try:
        histogram, decisions = _families()
        observe_many(histogram.labels(model_version), probabilities)
        for decision, n in outcomes.items():
            if n:
                decisions.labels(OUTCOMES[decision], model_version).inc(n)
    except Exception:                     # metrics never fail a scoring request
        logger.exception("could not record the scores' metrics")


class ModelReference:
    """Collector of credit_risk_model_reference_share{model_version,bin}: the serving model's training scores'
    share per bin. Computed when scraped from the model this process serves now, so after a hot swap it names
    the new version only (a gauge kept in the multiprocess files would keep every old version's shares)."""

    def __init__(self, store: Any):
        self.store = store

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        model = self.store.current()
        if model.score_reference is None:    # an artifact trained before the reference was stored
            return
        family = GaugeMetricFamily(REFERENCE, "Share of the serving model's training scores in each probability "
                                              "bin (bin = upper edge)", labels=("model_version", "bin"))
        for edge, share in zip(SCORE_BIN_EDGES, model.score_reference):
            family.add_metric([model.version, bin_label(edge)], share)
        yield family
