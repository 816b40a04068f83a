"""The OpenAPI 3.1 description of the risk API (tests validate real responses against these schemas)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from credit_core import fields as appfields
from risk_api import features, ids
from risk_api.scoring import MAX_REASONS, RISK_BANDS
from risk_api.settings import DEFAULT_MAX_BATCH, DEFAULT_MAX_BODY_BYTES, MAX_HEADER_FIELD_BYTES, MAX_HEADER_FIELDS, MAX_REQUEST_LINE

logger = logging.getLogger(__name__)

_MONTH = "^[0-9]{4}-(0[1-9]|1[0-2])$"
_KIND_SCHEMA = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "percent": {"type": "number"},
    "term": {"type": "integer", "enum": [36, 60]}, "emp_length": {"type": "integer", "minimum": 0, "maximum": 10},
    "grade": {"type": "string", "enum": list(appfields.GRADES)}, "text": {"type": "string"},
    "month": {"type": "string", "pattern": _MONTH},
}
# An id is a JSON integer, or a string of ASCII digits without a leading zero (up to 18 digits: every such string
# is within range; a larger id is sent as an integer).
_ID_IN = {"oneOf": [{"type": "integer", "minimum": ids.MIN_ID, "maximum": ids.MAX_ID},
                    {"type": "string", "pattern": ids.ID_PATTERN}, {"type": "null"}],
          "description": "application id, echoed back exactly as sent"}


def _number_schema(f: appfields.Field) -> dict[str, Any]:
    s = dict(_KIND_SCHEMA[f.kind])
    if f.kind in ("int", "float", "percent"):
        if f.minimum is not None:
            s["exclusiveMinimum" if f.exclusive_minimum else "minimum"] = f.minimum
        hi = features.MAX_INPUT if f.maximum is None else f.maximum
        s["exclusiveMaximum" if f.exclusive_maximum else "maximum"] = hi
    return s


def _applicant_schema() -> dict[str, Any]:
    props: dict[str, Any] = {"id": _ID_IN}
    for name in features.SOURCES:
        f = appfields.FIELDS_BY_NAME[name]
        s = _number_schema(f)
        if name not in features.REQUIRED_SOURCES:
            s = {"oneOf": [s, {"type": "null"}]}
        props[name] = s
    return {"type": "object",
            "description": "a cleaned applicant record (credit_core.fields.clean_record output); keys the model "
                           "does not use are ignored. An input outside the range the model was trained on is "
                           "scored clipped to that range, with an *_OUT_OF_RANGE reason (declined too when "
                           "RISK_OUT_OF_RANGE=decline).",
            "properties": props, "required": sorted(features.REQUIRED_SOURCES),
            "not": {"required": ["applicants"]}}


_ERROR_DETAIL = {"type": "object", "required": ["field", "reason"], "additionalProperties": False,
                 "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}
_ID = {"type": ["integer", "string", "null"]}


def _schemas(max_batch: int) -> dict[str, Any]:
    return {
        "Applicant": _applicant_schema(),
        "Batch": {"type": "object", "required": ["applicants"],
                  "description": "each item is scored on its own: an item that is not a valid Applicant gets an "
                                 "ApplicantError entry in the results, the others are scored",
                  "properties": {"applicants": {"type": "array", "minItems": 1, "maxItems": max_batch,
                                                "description": "Applicant objects (RISK_MAX_BATCH at most)"}}},
        "Reason": {"type": "object", "required": ["code", "feature", "text", "contribution"],
                   "additionalProperties": False,
                   "properties": {"code": {"type": "string"}, "feature": {"type": "string"},
                                  "text": {"type": "string"},
                                  "contribution": {"type": "number", "minimum": 0,
                                                   "description": "log-odds added by this feature relative to "
                                                                  "the training reference (> 0); 0 for an "
                                                                  "*_OUT_OF_RANGE reason, which says the input "
                                                                  "was outside the training range and clipped"}}},
        "Score": {"type": "object", "additionalProperties": False,
                  "required": ["id", "probability_of_default", "risk_band", "decision", "reasons", "model_version"],
                  "properties": {"id": _ID,
                                 "probability_of_default": {"type": "number", "minimum": 0, "maximum": 1},
                                 "risk_band": {"type": "string", "enum": [name for _, name in RISK_BANDS]},
                                 "decision": {"type": "string", "enum": ["approve", "decline"]},
                                 "reasons": {"type": "array", "maxItems": MAX_REASONS,
                                             "items": {"$ref": "#/components/schemas/Reason"}},
                                 "model_version": {"type": "string"}}},
        "ApplicantError": {"type": "object", "required": ["id", "error"], "additionalProperties": False,
                           "properties": {"id": _ID, "error": _ERROR_DETAIL}},
        "BatchResult": {"type": "object", "required": ["model_version", "threshold", "results"],
                        "additionalProperties": False,
                        "properties": {"model_version": {"type": "string"},
                                       "threshold": {"type": "number", "minimum": 0, "maximum": 1,
                                                     "description": "probability at or above which the "
                                                                    "decision is decline"},
                                       "results": {"type": "array", "items": {"oneOf": [
                                           {"$ref": "#/components/schemas/Score"},
                                           {"$ref": "#/components/schemas/ApplicantError"}]}}}},
        "Error": {"type": "object", "required": ["error"], "additionalProperties": False,
                  "properties": {"error": _ERROR_DETAIL}},
        "Health": {"type": "object", "required": ["status", "model_version"], "additionalProperties": False,
                   "properties": {"status": {"enum": ["ok", "degraded"],
                                             "description": "degraded: the artifact at RISK_MODEL_PATH could not "
                                                            "be loaded; model_version keeps serving (details: "
                                                            "GET /api/v1/admin/status)"},
                                  "model_version": {"type": "string"}}},
        "ReloadStatus": {"type": "object", "additionalProperties": False,
                         "required": ["model_version", "loaded_at", "reloads", "watch_seconds", "reload_ok"],
                         "properties": {"model_version": {"type": "string"}, "loaded_at": {"type": "string"},
                                        "reloads": {"type": "integer", "minimum": 0},
                                        "watch_seconds": {"type": "number", "minimum": 0},
                                        "reload_ok": {"type": "boolean"}}},
        "AdminStatus": {"type": "object", "additionalProperties": False,
                        "required": ["model_version", "loaded_at", "reloads", "watch_seconds", "reload_ok",
                                     "last_error", "model_path"],
                        "properties": {"model_version": {"type": "string"}, "loaded_at": {"type": "string"},
                                       "reloads": {"type": "integer", "minimum": 0},
                                       "watch_seconds": {"type": "number", "minimum": 0},
                                       "reload_ok": {"type": "boolean"},
                                       "last_error": {"type": ["string", "null"]},
                                       "model_path": {"type": "string"}}},
        "ModelCard": {"type": "object", "additionalProperties": False,
                      "required": ["model_version", "format", "created_at", "features", "coefficients",
                                   "decision_threshold", "threshold_source", "out_of_range", "risk_bands", "report",
                                   "training", "data", "reload"],
                      "properties": {
                          "model_version": {"type": "string"}, "format": {"type": "string"},
                          "created_at": {"type": "string"},
                          "features": {"type": "array", "items": {"type": "string"}},
                          "coefficients": {"type": "object", "required": ["intercept", "numeric", "categorical"],
                                           "properties": {"intercept": {"type": "number"},
                                                          "numeric": {"type": "array"},
                                                          "categorical": {"type": "array"}}},
                          "decision_threshold": {"type": "number", "minimum": 0, "maximum": 1},
                          "threshold_source": {"enum": ["model", "RISK_THRESHOLD"]},
                          "out_of_range": {"enum": ["flag", "decline"]},
                          "risk_bands": {"type": "array", "items": {
                              "type": "object", "required": ["band", "below"],
                              "properties": {"band": {"type": "string"}, "below": {"type": ["number", "null"]}}}},
                          "report": {"type": "object", "required": ["metrics", "holdout", "counts", "rows_train",
                                                                    "rows_holdout"]},
                          "training": {"type": "object"}, "data": {"type": "object"},
                          "reload": {"$ref": "#/components/schemas/ReloadStatus"}}},
        "Reload": {"type": "object", "additionalProperties": False,
                   "required": ["model_version", "previous_version", "changed", "loaded_at"],
                   "properties": {"model_version": {"type": "string"}, "previous_version": {"type": "string"},
                                  "changed": {"type": "boolean"}, "loaded_at": {"type": "string"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


# What any route can answer (JSON, the Error shape), and what the protected ones add.
_COMMON = {
    "404": _json("Error", "no such route"),
    "405": {**_json("Error", "method not allowed for this route"),
            "headers": {"Allow": {"description": "the methods this route takes", "schema": {"type": "string"}}}},
    "414": _json("Error", f"request line longer than {MAX_REQUEST_LINE} bytes"),
    "431": _json("Error", f"more than {MAX_HEADER_FIELDS} header fields, or one longer than "
                          f"{MAX_HEADER_FIELD_BYTES} bytes"),
}
_AUTH = {"401": {**_json("Error", "missing or wrong bearer token"),
                 "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}}}}


def _op(summary: str, responses: dict[str, Any], *, security: str | None = None, **extra) -> dict[str, Any]:
    op = {"summary": summary, **extra, "responses": {**responses, **(_AUTH if security else {}), **_COMMON}}
    if security:
        op["security"] = [{security: []}]
    return op


@lru_cache(maxsize=1)
def spec(max_batch: int = DEFAULT_MAX_BATCH, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> dict[str, Any]:
    """The document for a server with these limits (RISK_MAX_BATCH, RISK_MAX_BODY_BYTES): it states what it enforces."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Risk API", "version": "1",
                 "description": "Probability of default, decision and reason codes for loan applicants, from a "
                                "logistic regression scored with numpy from a JSON artifact. Every error is "
                                "JSON: {\"error\": {\"field\", \"reason\"}}."},
        "components": {"schemas": _schemas(max_batch),
                       "securitySchemes": {
                           "bearer": {"type": "http", "scheme": "bearer", "description": "RISK_API_TOKEN"},
                           "adminBearer": {"type": "http", "scheme": "bearer",
                                           "description": "RISK_ADMIN_TOKEN (admin routes exist only when it is "
                                                          "set, see RISK_ADMIN_ROUTES)"}}},
        "paths": {
            "/api/v1/score": {"post": _op(
                f"Score one applicant, or a batch of up to {max_batch:,}", security="bearer", operationId="score",
                requestBody={"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Batch"}, {"$ref": "#/components/schemas/Applicant"}]}}}},
                responses={
                    "200": {"description": "a single applicant's score, or a batch's results in input order "
                                           "(bad applicants get an error entry)",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/BatchResult"},
                                {"$ref": "#/components/schemas/Score"}]}}},
                            "links": {"ModelThatScored": {
                                "operationId": "modelCard",
                                "description": "the model card of the model that answered (model_version)"}}},
                    "400": {"description": "body not JSON, not an object, no applicants, too many, or (single "
                                           "applicant) a bad field",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Error"},
                                {"$ref": "#/components/schemas/ApplicantError"}]}}}},
                    "413": _json("Error", f"body larger than {max_body_bytes} bytes (RISK_MAX_BODY_BYTES), "
                                          "whatever the framing (Content-Length or chunked)")})},
            "/api/v1/model": {"get": _op("The model card", {"200": _json("ModelCard", "the model in use")},
                                         security="bearer", operationId="modelCard")},
            "/api/v1/admin/reload": {"post": _op(
                "Load RISK_MODEL_PATH now (the file is also watched every RISK_MODEL_WATCH_SECONDS)",
                {"200": {**_json("Reload", "the model now in use"),
                         "links": {"ReloadStatus": {"operationId": "adminStatus",
                                                    "description": "the reload status after this reload"},
                                   "Health": {"operationId": "health",
                                              "description": "the public health after this reload"}}},
                 "422": _json("Error", "the artifact is unusable; the old model keeps serving")},
                security="adminBearer", operationId="adminReload")},
            "/api/v1/admin/status": {"get": _op(
                "Where the model was loaded from, when, and why the last reload failed",
                {"200": _json("AdminStatus", "reload details")}, security="adminBearer",
                operationId="adminStatus")},
            "/health": {"get": _op("Liveness and the model version", {"200": _json("Health", "serving")},
                                   operationId="health")},
            "/metrics": {"get": _op(
                "Prometheus metrics: requests by route, scores and decisions by model version, the model's "
                "training score distribution (no auth: counts only)",
                {"200": {"description": "the Prometheus text exposition format",
                         "content": {"text/plain": {"schema": {"type": "string"}}}}},
                operationId="metrics")},
            "/openapi.json": {"get": _op("This document", {"200": {
                "description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
                operationId="openapi")},
        },
    }
