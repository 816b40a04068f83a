"""GET /api/v1/model: the model card."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app

from risk_api.auth import require_token
from risk_api.http import json_response
from risk_api.scoring import RISK_BANDS, Model

logger = logging.getLogger(__name__)

bp = Blueprint("model", __name__)


def model_card(model: Model) -> dict:
    a = model.artifact
    threshold = current_app.config["THRESHOLD"]
    store = current_app.extensions["risk_model_store"]
    return {
        "model_version": model.version,
        "format": a["format"],
        "created_at": a["created_at"],
        "features": a["features"],
        "coefficients": {"intercept": a["intercept"], "numeric": a["numeric"], "categorical": a["categorical"]},
        "decision_threshold": model.threshold if threshold is None else threshold,
        "threshold_source": "model" if threshold is None else "RISK_THRESHOLD",
        "out_of_range": current_app.config["OUT_OF_RANGE"],
        "risk_bands": [{"band": name, "below": None if edge == float("inf") else edge} for edge, name in RISK_BANDS],
        "report": a["report"],
        "training": a["training"],
        "data": a["data"],
        "reload": store.public_status(),
    }


@bp.get("/api/v1/model")
@require_token("api")
def card():
    return json_response(model_card(current_app.extensions["risk_model_store"].current()))
