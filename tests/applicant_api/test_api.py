"""The applicant API over real HTTP against the session MariaDB: paging, lookups, POST, errors, auth."""

from __future__ import annotations

import random
import threading
import time

import pytest
import requests

from applicant_api import db
from applicant_api.app import create_app
from applicant_api.devserver import ServerThread
from credit_core.fields import FIELD_NAMES
from applicant_api.settings import ConfigError
from deploy.services import free_port
from tests.store import insert_rows, stored_ids

PAGE = "/api/v1/applicants"


def drain(api, after: int = 0, limit: int = 1000) -> tuple[list[dict], list[dict]]:
    """Follow next_after until an empty page; return (applicants, pages)."""
    seen, pages = [], []
    while True:
        body = api.get(PAGE, params={"after": after, "limit": limit}).json()
        pages.append(body)
        if not body["count"]:
            assert body["next_after"] is None
            return seen, pages
        seen.extend(body["applicants"])
        after = body["next_after"]


def test_paging_across_page_boundaries(api, store, applicant_factory, db_url):
    records = [applicant_factory(i) for i in range(1, 2346)]
    store(records)
    for limit in (1000, 7, 2345):
        seen, pages = drain(api, limit=limit)
        ids = [a["id"] for a in seen]
        assert ids == [r["id"] for r in records]            # every row, once, in insert order
        seqs = [a["seq"] for a in seen]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
        full_pages = [p for p in pages if p["count"] == limit]
        assert len(full_pages) == 2345 // limit
        for p in pages[:-1]:
            assert p["count"] == len(p["applicants"]) and p["next_after"] == p["applicants"][-1]["seq"]
    # A cursor in the middle starts right after it.
    middle = seen[1233]["seq"]
    body = api.get(PAGE, params={"after": middle, "limit": 3}).json()
    assert [a["id"] for a in body["applicants"]] == [1235, 1236, 1237]
    # Default limit is 500.
    assert api.get(PAGE).json()["count"] == 500


def test_page_waits_for_an_open_insert_instead_of_skipping_it(api, applicant_factory, db_url):
    slow, fast = db.connect(db_url), db.connect(db_url, autocommit=True)
    try:
        insert_rows(slow, [applicant_factory(i) for i in (1, 2, 3)], commit=False)   # seq 1-3, not committed
        insert_rows(fast, [applicant_factory(i) for i in (4, 5, 6)])                 # seq 4-6, committed first
        result: dict = {}
        reader = threading.Thread(target=lambda: result.update(api.get(PAGE, params={"limit": 10}).json()))
        reader.start()
        reader.join(0.5)
        assert reader.is_alive(), "the page was served while seq 1-3 were still being inserted"
        slow.commit()
        reader.join(10)
        assert [a["id"] for a in result["applicants"]] == [1, 2, 3, 4, 5, 6]
        # A rolled-back insert leaves a gap in seq, and the reader moves on.
        insert_rows(slow, [applicant_factory(7)], commit=False)
        insert_rows(fast, [applicant_factory(8)])
        slow.rollback()
        body = api.get(PAGE, params={"after": result["next_after"]}).json()
        assert [a["id"] for a in body["applicants"]] == [8]
    finally:
        slow.close()
        fast.close()


def test_paging_with_concurrent_inserts_skips_and_repeats_nothing(api, applicant_factory, db_url):
    writers, batches, batch_size = 4, 15, 40
    failures: list[BaseException] = []
    # Each round every writer inserts, then all commit in random order: later seqs often commit first.
    inserted = threading.Barrier(writers, timeout=30)

    def writer(w: int) -> None:
        rnd = random.Random(w)
        conn = db.connect(db_url)
        try:
            for b in range(batches):
                first = 1 + (w * batches + b) * batch_size
                insert_rows(conn, [applicant_factory(i) for i in range(first, first + batch_size)], commit=False)
                inserted.wait()
                time.sleep(rnd.uniform(0, 0.03))
                conn.commit()
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)
            inserted.abort()
        finally:
            conn.close()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    seen: list[int] = []
    after = 0
    while any(t.is_alive() for t in threads):
        body = api.get(PAGE, params={"after": after, "limit": 25}).json()
        if body["count"]:
            seen.extend(a["id"] for a in body["applicants"])
            after = body["next_after"]
    for t in threads:
        t.join()
    rest, _ = drain(api, after=after, limit=25)
    seen.extend(a["id"] for a in rest)
    assert not failures
    expected = stored_ids(db_url)
    assert len(expected) == writers * batches * batch_size
    assert len(seen) == len(set(seen)), "an applicant was served twice"
    assert seen == expected, "the reader skipped or reordered applicants"


def test_get_one_and_404(api, store, applicant_factory):
    store([applicant_factory(i) for i in (5, 6, 7)])
    resp = api.get(f"{PAGE}/6")
    assert resp.status_code == 200
    body = resp.json()
    expected = applicant_factory(6)
    assert {k: body[k] for k in FIELD_NAMES} == expected
    assert body["source"] == "api" and body["seq"] == 2 and body["created_at"].endswith("Z")
    missing = api.get(f"{PAGE}/8")
    assert missing.status_code == 404
    assert missing.json() == {"error": "applicant 8 not found"}
    assert api.get(f"{PAGE}/not-a-number").status_code == 400


def test_post_accepts_lendingclub_text_forms_and_source(api, applicant_factory):
    raw = applicant_factory(42, int_rate=" 12.39%", term=" 60 months", emp_length="10+ years",
                            issue_d="Dec-2014", revol_util="45.1%", bc_open_to_buy="", source="office-7")
    resp = api.post(PAGE, json=raw)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["created"] == 1 and created["applicants"][0]["id"] == 42
    body = api.get(f"{PAGE}/42").json()
    assert (body["int_rate"], body["term"], body["emp_length"], body["issue_d"], body["revol_util"],
            body["bc_open_to_buy"], body["source"]) == (12.39, 60, 10, "2014-12", 45.1, 0, "office-7")


def test_post_field_errors_are_400_and_store_nothing(api, applicant_factory, db_url):
    good = applicant_factory(1)
    bad_dti = applicant_factory(2, dti="12abc")
    bad_many = applicant_factory(3, grade="Q", annual_inc=-5)
    del bad_many["loan_amnt"]
    resp = api.post(PAGE, json=[good, bad_dti, bad_many])
    assert resp.status_code == 400
    body = resp.json()
    assert "nothing was stored" in body["error"]
    got = {(e["index"], e["field"]) for e in body["errors"]}
    assert got == {(1, "dti"), (2, "grade"), (2, "annual_inc"), (2, "loan_amnt")}
    assert all(e["reason"] for e in body["errors"])
    assert stored_ids(db_url) == []
    # Not an object, bad source, bad JSON, wrong content type, empty list.
    assert api.post(PAGE, json=[5]).json()["errors"] == [
        {"index": 0, "field": "$", "reason": "must be an object, got int"}]
    assert api.post(PAGE, json=applicant_factory(9, source="bad source!")).json()["errors"][0]["field"] == "source"
    bad_json = api.post(PAGE, data=b"{not json", headers={"Content-Type": "application/json"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.json()["error"]
    assert api.post(PAGE, data=b"id=1", headers={"Content-Type": "text/plain"}).status_code == 415
    assert api.post(PAGE, json=[]).status_code == 400
    too_big = api.post(PAGE, json=[good, applicant_factory(2**63, member_id=1, revol_bal=1.0)])   # beyond BIGINT
    assert too_big.status_code == 400
    assert [(e["index"], e["field"]) for e in too_big.json()["errors"]] == [(1, "id")]
    assert stored_ids(db_url) == []


def test_post_duplicates_are_409_and_nothing_half_written(api, store, applicant_factory, db_url):
    store([applicant_factory(10)])
    resp = api.post(PAGE, json=[applicant_factory(11), applicant_factory(10), applicant_factory(12)])
    assert resp.status_code == 409
    assert resp.json()["duplicates"] == [10]
    assert stored_ids(db_url) == [10]                       # 11 and 12 were rolled back with the failure
    within = api.post(PAGE, json=[applicant_factory(20), applicant_factory(21), applicant_factory(20)])
    assert within.status_code == 409 and within.json()["duplicates"] == [20]
    assert stored_ids(db_url) == [10]
    # The failed transactions left the pool usable.
    assert api.post(PAGE, json=[applicant_factory(11), applicant_factory(12)]).status_code == 201
    assert stored_ids(db_url) == [10, 11, 12]


def test_bad_query_parameters_are_400(api):
    for params, field in (({"limit": 5001}, "limit"), ({"limit": 0}, "limit"), ({"after": -1}, "after"),
                          ({"after": "x"}, "after"), ({"limit": "1.5"}, "limit")):
        resp = api.get(PAGE, params=params)
        assert resp.status_code == 400, params
        assert [e["field"] for e in resp.json()["errors"]] == [field]
    assert api.get(PAGE, params={"limit": 5000}).status_code == 200


def test_auth_is_required_everywhere_but_health(api, api_server):
    anonymous = requests.Session()
    for method, path in (("GET", PAGE), ("GET", f"{PAGE}/1"), ("POST", PAGE), ("GET", "/openapi.json")):
        resp = anonymous.request(method, api_server.url + path, json={}, timeout=10)
        assert resp.status_code == 401, path
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        assert "error" in resp.json()
        wrong = anonymous.request(method, api_server.url + path, json={}, timeout=10,
                                  headers={"Authorization": "Bearer wrong-token-123"})
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid bearer token"
    assert anonymous.get(api_server.url + "/health", timeout=10).json() == {"status": "ok", "database": "ok"}


def test_app_refuses_to_start_without_token_unless_auth_is_explicitly_off(mariadb, db_url, monkeypatch):
    monkeypatch.delenv("APPLICANT_API_TOKEN", raising=False)
    monkeypatch.delenv("APPLICANT_API_AUTH", raising=False)
    with pytest.raises(ConfigError, match="APPLICANT_API_TOKEN"):
        create_app({"MYSQL_URL": mariadb.url})
    with pytest.raises(ConfigError):
        create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_AUTH": "maybe"})
    monkeypatch.setenv("APPLICANT_API_AUTH", "off")
    app = create_app({"MYSQL_URL": mariadb.url})
    with ServerThread(app) as srv:
        resp = requests.get(srv.url + PAGE, timeout=10)
        assert resp.status_code == 200 and resp.json() == {"applicants": [], "next_after": None, "count": 0}
        assert "security" not in requests.get(srv.url + "/openapi.json", timeout=10).json()
    app.extensions["applicant_api"].pool.close()


def test_request_size_limits_are_413_and_record_count_limit_400(mariadb, db_url, applicant_factory):
    app = create_app({"MYSQL_URL": mariadb.url, "APPLICANT_API_TOKEN": "size-test-token",
                      "APPLICANT_API_MAX_BODY": 4096, "APPLICANT_API_MAX_POST_RECORDS": 3})
    headers = {"Authorization": "Bearer size-test-token"}
    with ServerThread(app) as srv:
        big = requests.post(srv.url + PAGE, json=[applicant_factory(i) for i in range(1, 20)],
                            headers=headers, timeout=10)
        assert big.status_code == 413 and "4096 bytes" in big.json()["error"]
        many = requests.post(srv.url + PAGE, json=[{"id": i} for i in range(1, 5)], headers=headers, timeout=10)
        assert many.status_code == 400 and "at most 3" in many.json()["error"]   # a schema rule (maxItems)
        ok = requests.post(srv.url + PAGE, json=[applicant_factory(i) for i in (1, 2)], headers=headers, timeout=10)
        assert ok.status_code == 201
    app.extensions["applicant_api"].pool.close()
    assert stored_ids(db_url) == [1, 2]


def test_database_down_is_503_and_health_says_so():
    app = create_app({"MYSQL_URL": f"mysql://credit:x@127.0.0.1:{free_port()}/credit",
                      "APPLICANT_API_TOKEN": "down-test-token"})
    with ServerThread(app) as srv:
        health = requests.get(srv.url + "/health", timeout=10)
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        page = requests.get(srv.url + PAGE, headers={"Authorization": "Bearer down-test-token"}, timeout=10)
        assert page.status_code == 503 and page.headers["Retry-After"] == "1"
        assert "unavailable" in page.json()["error"]
