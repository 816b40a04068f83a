"""The OpenAPI 3.1 description of the risk API (tests validate real responses against these schemas)."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from applicant_api import fields as appfields
from risk_api import features
from risk_api.scoring import MAX_REASONS, RISK_BANDS
from risk_api.settings import DEFAULT_MAX_BATCH

logger = logging.getLogger(__name__)

_KIND_SCHEMA = {
    "int": {"type": "integer"}, "float": {"type": "number"}, "percent": {"type": "number"},
    "term": {"type": "integer", "enum": [36, 60]}, "emp_length": {"type": "integer", "minimum": 0, "maximum": 10},
    "grade": {"type": "string", "enum": list(appfields.GRADES)}, "text": {"type": "string"},
    "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "sub_grade": {"type": "string"},
}


def _applicant_schema() -> dict[str, Any]:
    props: dict[str, Any] = {"id": {"type": ["integer", "string"], "description": "application id, echoed back"}}
    for name in features.SOURCES:
        f = appfields.FIELDS_BY_NAME[name]
        s = dict(_KIND_SCHEMA[f.kind])
        if name not in features.REQUIRED_SOURCES:
            s["type"] = [s["type"], "null"]
            if "enum" in s:
                s["enum"] = s["enum"] + [None]
        props[name] = s
    return {"type": "object", "description": "a cleaned applicant record (applicant_api.fields.clean_record "
                                             "output); keys the model does not use are ignored",
            "properties": props, "required": sorted(features.REQUIRED_SOURCES), "additionalProperties": True}


_ERROR_DETAIL = {"type": "object", "required": ["field", "reason"], "additionalProperties": False,
                 "properties": {"field": {"type": "string"}, "reason": {"type": "string"}}}
_ID = {"type": ["integer", "string", "null"]}


def _schemas() -> dict[str, Any]:
    return {
        "Applicant": _applicant_schema(),
        "Batch": {"type": "object", "required": ["applicants"],
                  "properties": {"applicants": {"type": "array", "minItems": 1, "maxItems": DEFAULT_MAX_BATCH,
                                                "items": {"$ref": "#/components/schemas/Applicant"}}}},
        "Reason": {"type": "object", "required": ["code", "feature", "text", "contribution"],
                   "additionalProperties": False,
                   "properties": {"code": {"type": "string"}, "feature": {"type": "string"},
                                  "text": {"type": "string"},
                                  "contribution": {"type": "number", "exclusiveMinimum": 0,
                                                   "description": "log-odds added by this feature relative to "
                                                                  "the training reference"}}},
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
        "Health": {"type": "object", "required": ["status", "model_version", "loaded_at", "last_reload_error"],
                   "additionalProperties": False,
                   "properties": {"status": {"const": "ok"}, "model_version": {"type": "string"},
                                  "loaded_at": {"type": "string"},
                                  "last_reload_error": {"type": ["string", "null"]}}},
        "ModelCard": {"type": "object", "additionalProperties": False,
                      "required": ["model_version", "format", "created_at", "features", "coefficients",
                                   "decision_threshold", "threshold_source", "risk_bands", "report", "training",
                                   "data", "reload"],
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
                          "risk_bands": {"type": "array", "items": {
                              "type": "object", "required": ["band", "below"],
                              "properties": {"band": {"type": "string"}, "below": {"type": ["number", "null"]}}}},
                          "report": {"type": "object", "required": ["metrics", "holdout", "counts", "rows_train",
                                                                    "rows_holdout"]},
                          "training": {"type": "object"}, "data": {"type": "object"},
                          "reload": {"type": "object"}}},
        "Reload": {"type": "object", "additionalProperties": False,
                   "required": ["model_version", "previous_version", "changed", "loaded_at"],
                   "properties": {"model_version": {"type": "string"}, "previous_version": {"type": "string"},
                                  "changed": {"type": "boolean"}, "loaded_at": {"type": "string"}}},
    }


def _json(schema_ref: str, description: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema_ref}"}}}}


_ERRORS = {"401": _json("Error", "missing or wrong bearer token")}


@lru_cache(maxsize=1)
def spec() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Risk API", "version": "1",
                 "description": "Probability of default, decision and reason codes for loan applicants, from a "
                                "logistic regression scored with numpy from a JSON artifact."},
        "components": {"schemas": _schemas(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "RISK_API_TOKEN (admin routes: "
                                                                     "RISK_ADMIN_TOKEN if set)"}}},
        "paths": {
            "/api/v1/score": {"post": {
                "summary": "Score one applicant, or a batch of up to 10,000",
                "security": [{"bearer": []}],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                    {"$ref": "#/components/schemas/Batch"}, {"$ref": "#/components/schemas/Applicant"}]}}}},
                "responses": {
                    "200": {"description": "a single applicant's score, or a batch's results in input order "
                                           "(bad applicants get an error entry)",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/BatchResult"},
                                {"$ref": "#/components/schemas/Score"}]}}}},
                    "400": {"description": "body not JSON, not an object, no applicants, too many, or (single "
                                           "applicant) a bad field",
                            "content": {"application/json": {"schema": {"oneOf": [
                                {"$ref": "#/components/schemas/Error"},
                                {"$ref": "#/components/schemas/ApplicantError"}]}}}},
                    "413": _json("Error", "body larger than RISK_MAX_BODY_BYTES"),
                    **_ERRORS}}},
            "/api/v1/model": {"get": {"summary": "The model card", "security": [{"bearer": []}],
                                      "responses": {"200": _json("ModelCard", "the model in use"), **_ERRORS}}},
            "/api/v1/admin/reload": {"post": {
                "summary": "Load RISK_MODEL_PATH now (the file is also watched every RISK_MODEL_WATCH_SECONDS)",
                "security": [{"bearer": []}],
                "responses": {"200": _json("Reload", "the model now in use"),
                              "422": _json("Error", "the artifact is unusable; the old model keeps serving"),
                              **_ERRORS}}},
            "/health": {"get": {"summary": "Liveness and the model version",
                                "responses": {"200": _json("Health", "serving")}}},
            "/openapi.json": {"get": {"summary": "This document",
                                      "responses": {"200": {"description": "OpenAPI 3.1"}}}},
        },
    }
