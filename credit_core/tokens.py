"""The bearer tokens a service and its clients share, each declared once (secrets: environment only)."""

from __future__ import annotations

import logging

from credit_core.config import Spec

logger = logging.getLogger(__name__)

# No defaults: a token never lives in the repository.
APPLICANT_API_TOKEN = Spec("APPLICANT_API_TOKEN", None, secret=True,
                           doc="bearer token of the applicant API (the API checks it, the producer sends it)")
RISK_API_TOKEN = Spec("RISK_API_TOKEN", None, secret=True,
                      doc="bearer token of the risk API's scoring routes (the API checks it, the workers send it)")
