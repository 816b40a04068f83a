"""Fixtures for the producer tests: the applicant API over HTTP, settings (``db_url``: tests/conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from applicant_api.app import create_app
from applicant_api.devserver import ServerThread
from producer.settings import load_settings
from tests.producer.producer_testlib import API_TOKEN


@pytest.fixture(scope="module")
def api_app(mariadb):
    app = create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_TOKEN": API_TOKEN})
    yield app
    app.extensions["applicant_api"].pool.close()


@pytest.fixture(scope="module")
def api_server(api_app):
    with ServerThread(api_app) as srv:
        yield srv


@pytest.fixture
def topic() -> str:
    return f"applicants.raw.test-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings_for(broker, topic, tmp_path):
    """``settings_for(api_url, **overrides)``: producer settings for this test's topic and checkpoint."""
    def make(api_url: str, **overrides):
        values = dict(api_url=api_url, api_token=API_TOKEN, broker=broker.url, topic=topic,
                      checkpoint=str(tmp_path / "producer.checkpoint"), interval=0.2, backoff_start=0.1,
                      backoff_max=0.5, log_every=1.0)
        values.update(overrides)
        return load_settings(environ={}, **values)
    return make
