"""GET /openapi.json: the OpenAPI 3.1 description of this API, built from the field definitions."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, current_app

from applicant_api.api import MAX_ID, MAX_SEQ, MIN_ID
from credit_core.fields import FIELDS, GRADES, MAX_INT, MAX_TEXT, Field
from applicant_api.gunicorn_conf import limit_request_field_size, limit_request_fields, limit_request_line
from applicant_api.input_schema import applicant_input_schema, number_range
from applicant_api.jsonio import dumps, raw_json_response
from applicant_api.settings import DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT, Settings

logger = logging.getLogger(__name__)

bp = Blueprint("openapi", __name__)

API_VERSION = "1.0.0"
_MONTH_PATTERN = "^[0-9]{4}-(0[1-9]|1[0-2])$"
_REF = "#/components/schemas/"


def _stored_schema(field: Field) -> dict[str, Any]:
    """The schema of a field as the API returns it (cleaned, canonical JSON types)."""
    kind = field.kind
    if kind == "int":
        schema = {"type": "integer", **number_range(field), "maximum": MAX_INT}
    elif kind in ("float", "percent"):
        schema = {"type": "number", **number_range(field)}
        if kind == "percent":
            schema["description"] = "percent as a number (12.39 means 12.39%)"
    elif kind == "term":
        schema = {"type": "integer", "enum": [36, 60], "description": "months"}
    elif kind == "emp_length":
        schema = {"type": "integer", "minimum": 0, "maximum": 10, "description": "years; 10 means 10+"}
    elif kind == "grade":
        schema = {"type": "string", "enum": list(GRADES)}
    elif kind == "sub_grade":
        schema = {"type": "string", "pattern": "^[A-G][1-5]$"}
    elif kind == "month":
        schema = {"type": "string", "pattern": _MONTH_PATTERN, "description": "YYYY-MM"}
    elif kind == "text":
        schema = {"type": "string", "maxLength": MAX_TEXT}
    else:
        raise AssertionError(f"unknown field kind {kind!r}")
    if not field.required and field.default is None:
        schema["type"] = [schema["type"], "null"]
        if "enum" in schema:
            schema["enum"] = schema["enum"] + [None]
    return schema


def _error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description,
                           "content": {"application/json": {"schema": {"$ref": _REF + "Error"}}}}
    if headers:
        out["headers"] = headers
    return out


_ALLOW = {"Allow": {"description": "the methods this path supports", "required": True,
                    "schema": {"type": "string"}}}
_CHALLENGE = {"WWW-Authenticate": {"description": "Bearer realm", "required": True, "schema": {"type": "string"}}}
_RETRY = {"Retry-After": {"description": "seconds", "required": True, "schema": {"type": "string"}}}
# Answered by the HTTP server before the app (JSON all the same: devserver.JsonErrorRequestHandler, gunicorn_conf).
_SERVER_ERRORS = {
    "405": _error_response("this path does not support the method", _ALLOW),
    "414": _error_response(f"the request line is too long (gunicorn: over {limit_request_line} bytes)"),
    "431": _error_response(f"too many headers (over {limit_request_fields}) or one too long "
                           f"(gunicorn: over {limit_request_field_size} bytes)"),
}


def _json(description: str, schema_name: str) -> dict[str, Any]:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": _REF + schema_name}}}}


def build_spec(settings: Settings) -> dict[str, Any]:
    """The OpenAPI document for an app running with ``settings``."""
    field_names = [f.name for f in FIELDS]
    applicant = {
        "type": "object",
        "description": "An application record as stored: every field, plus its paging sequence, source and time.",
        "properties": {
            "seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ,
                    "description": "paging sequence (ascending insert order)"},
            **{f.name: _stored_schema(f) for f in FIELDS},
            "source": {"type": "string", "maxLength": 64},
            "created_at": {"type": "string", "format": "date-time", "description": "ISO 8601, UTC"},
        },
        "required": ["seq", *field_names, "source", "created_at"],
        "additionalProperties": False,
    }
    applicant_input = applicant_input_schema()
    field_error = {
        "type": "object",
        "properties": {
            "index": {"type": "integer", "minimum": 0, "description": "position in the posted list"},
            "field": {"type": "string", "description": "field name, or '$' for the whole record"},
            "reason": {"type": "string"},
        },
        "required": ["field", "reason"],
        "additionalProperties": False,
    }
    error = {
        "type": "object",
        "properties": {
            "error": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": _REF + "FieldError"}},
            "duplicates": {"type": "array", "items": {"type": "integer"},
                           "description": "409 only: the ids that exist already or repeat within the request"},
        },
        "required": ["error"],
        "additionalProperties": False,
    }
    page = {
        "type": "object",
        "properties": {
            "applicants": {"type": "array", "items": {"$ref": _REF + "Applicant"}, "maxItems": MAX_PAGE_LIMIT},
            "next_after": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_SEQ,
                           "description": "seq of the last applicant on this page (pass as `after` for the next "
                                          "page); null when the page is empty (keep your cursor and poll again)"},
            "count": {"type": "integer", "minimum": 0},
        },
        "required": ["applicants", "next_after", "count"],
        "additionalProperties": False,
    }
    created = {
        "type": "object",
        "properties": {
            "created": {"type": "integer", "minimum": 1},
            "applicants": {"type": "array", "items": {
                "type": "object",
                "properties": {"id": {"type": "integer", "minimum": MIN_ID, "maximum": MAX_ID},
                               "seq": {"type": "integer", "minimum": 1, "maximum": MAX_SEQ}},
                "required": ["id", "seq"], "additionalProperties": False}},
        },
        "required": ["created", "applicants"],
        "additionalProperties": False,
    }
    health = {
        "type": "object",
        "properties": {"status": {"type": "string", "enum": ["ok", "unavailable"]},
                       "database": {"type": "string"}},
        "required": ["status", "database"],
        "additionalProperties": False,
    }
    unauthorized = _error_response("missing or wrong bearer token", _CHALLENGE)
    unavailable = _error_response("the database is unavailable or busy; retry later", _RETRY)
    auth_responses = {"401": unauthorized} if settings.auth else {}
    common = {**auth_responses, **_SERVER_ERRORS}
    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Applicant API", "version": API_VERSION,
                 "description": "Loan applicants (LendingClub schema) stored in MySQL: keyset-paged reads for the "
                                "producer, lookups by id, and submission of new applications. Every error body "
                                "is JSON of the Error shape, including 404, 405 (with Allow), 413, 414 and 431. "
                                f"A POST body is at most {settings.max_body} bytes whatever its transfer encoding "
                                f"(chunked included) and holds at most {settings.max_post_records} applicants.",
                 "x-max-body-bytes": settings.max_body, "x-max-post-records": settings.max_post_records},
        "paths": {
            "/api/v1/applicants": {
                "get": {
                    "operationId": "listApplicants",
                    "summary": "A page of applicants with seq > after, in seq order",
                    "parameters": [
                        {"name": "after", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEQ, "default": 0},
                         "description": "cursor: return applicants with a larger seq (ASCII digits)"},
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_LIMIT,
                                    "default": DEFAULT_PAGE_LIMIT}},
                    ],
                    "responses": {"200": _json("a page", "Page"),
                                  "400": _error_response("bad query parameters (each with field and reason)"),
                                  **common, "503": unavailable,
                                  "default": _error_response("any other error")},
                },
                "post": {
                    "operationId": "createApplicants",
                    "summary": "Store one application or a list, all or nothing",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
                        {"$ref": _REF + "ApplicantInput"},
                        {"type": "array", "items": {"$ref": _REF + "ApplicantInput"}, "minItems": 1,
                         "maxItems": settings.max_post_records},
                    ]}}}},
                    "responses": {
                        "201": {**_json("stored; ids with their sequence numbers", "Created"),
                                "links": {"GetCreatedApplicant": {
                                    "operationId": "getApplicant",
                                    "parameters": {"id": "$response.body#/applicants/0/id"},
                                    "description": "the first stored applicant, by id"}}},
                        "400": _error_response("invalid JSON, more than the most applicants per request, or invalid "
                                               "fields (every error with index, field and reason); nothing stored"),
                        **common,
                        "409": _error_response("an id exists already or repeats in the request; nothing stored"),
                        "413": _error_response(f"body larger than {settings.max_body} bytes (declared or chunked)"),
                        "415": _error_response("the body is not JSON (Content-Type: application/json)"),
                        "503": unavailable,
                        "default": _error_response("any other error"),
                    },
                },
            },
            "/api/v1/applicants/{id}": {
                "get": {
                    "operationId": "getApplicant",
                    "summary": "One applicant by application id",
                    "parameters": [{"name": "id", "in": "path", "required": True,
                                    "schema": {"type": "integer", "minimum": MIN_ID, "maximum": MAX_ID},
                                    "description": "application id in ASCII digits"}],
                    "responses": {"200": _json("the applicant", "Applicant"),
                                  "400": _error_response("the id is not a whole number from "
                                                         f"{MIN_ID} to {MAX_ID} in ASCII digits"),
                                  **common,
                                  "404": _error_response("no applicant with this id"),
                                  "503": unavailable,
                                  "default": _error_response("any other error")},
                },
            },
            "/health": {
                "get": {
                    "operationId": "health",
                    "summary": "Liveness and database check (no authentication)",
                    "security": [],
                    "responses": {"200": _json("healthy", "Health"),
                                  **_SERVER_ERRORS,
                                  "503": {**_json("the database does not answer", "Health"), "headers": _RETRY}},
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics: request counts and durations by route (no authentication)",
                    "security": [],
                    "responses": {"200": {"description": "the Prometheus text exposition format",
                                          "content": {"text/plain": {"schema": {"type": "string"}}}},
                                  **_SERVER_ERRORS},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {"200": {"description": "the OpenAPI document",
                                          "content": {"application/json": {"schema": {"type": "object"}}}},
                                  **common},
                },
            },
        },
        "components": {
            "schemas": {"Applicant": applicant, "ApplicantInput": applicant_input, "Page": page,
                        "Created": created, "Error": error, "FieldError": field_error, "Health": health},
        },
    }
    if settings.auth:
        spec["components"]["securitySchemes"] = {"bearerAuth": {"type": "http", "scheme": "bearer"}}
        spec["security"] = [{"bearerAuth": []}]
    return spec


@bp.get("/openapi.json")
def openapi_json():
    state = current_app.extensions["applicant_api"]
    if state.spec_bytes is None:
        state.spec_bytes = dumps(build_spec(state.settings))
    return raw_json_response(state.spec_bytes)
