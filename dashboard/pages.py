"""The page routes: the dashboard page (after login), the login form, logout, Chart.js, and the open /health."""

from __future__ import annotations

import logging
import time

from flask import Blueprint, Response, redirect, render_template, request, send_file

from dashboard import auth
from dashboard.http import authorized, json_response, same_origin
from dashboard.state import state

logger = logging.getLogger(__name__)

bp = Blueprint("pages", __name__)

OPEN_ENDPOINTS = frozenset({"pages.health", "pages.login", "pages.login_post", "pages.logout", "pages.chartjs",
                            "static"})


@bp.get("/health")
def health():
    """The process answers (says nothing else: it is open)."""
    return json_response({"status": "ok"})


@bp.get("/")
def index():
    if not authorized():
        return redirect("/login", code=303)
    return render_template("index.html")


@bp.get("/login")
def login():
    if authorized():
        return redirect("/", code=303)
    return render_template("login.html", message=None)


@bp.post("/login")
def login_post():
    st = state()
    if not same_origin():
        return render_template("login.html", message="This form only accepts posts from its own page."), 403
    client = request.remote_addr or "?"
    if st.throttle.blocked(client):
        return render_template("login.html", message="Too many failed attempts: wait a minute."), 429
    if not auth.valid_token(st.settings.token, request.form.get("token", "")):
        st.throttle.failed(client)
        logger.warning("dashboard: failed login from %s", client)
        return render_template("login.html", message="That is not the dashboard's token."), 401
    resp = redirect("/", code=303)
    secure = st.settings.cookie_secure == "on" or (st.settings.cookie_secure == "auto" and request.is_secure)
    resp.set_cookie(auth.COOKIE, auth.make_session(st.settings.token, time.time(), st.settings.session_seconds),
                    max_age=st.settings.session_seconds, httponly=True, samesite="Strict", secure=secure, path="/")
    return resp


@bp.post("/logout")
def logout():
    if not same_origin():
        return json_response({"error": "cross-origin logout refused"}, 403)
    resp = redirect("/login", code=303)
    resp.delete_cookie(auth.COOKIE, path="/", httponly=True, samesite="Strict")
    return resp


@bp.get("/vendor/chart.min.js")
def chartjs() -> Response:
    """Chart.js from Debian's libjs-chart.js, served from its installed path."""
    return send_file(state().chartjs, mimetype="text/javascript", max_age=300)
