"""The dashboard's token scheme: a bearer token, or the signed session cookie its login form sets.

``Authorization: Bearer <DASHBOARD_TOKEN>`` (hmac.compare_digest) for clients; the page gets an HttpOnly,
SameSite=Strict cookie holding a session signed with a key derived from the token. The token never travels in
a URL and is never stored in the cookie."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import deque

logger = logging.getLogger(__name__)

COOKIE = "dashboard_session"
_KEY_LABEL = b"credit-risk dashboard session v1"
FAILED_LOGINS_PER_MINUTE = 10        # failed logins per client address per minute; more -> 429


def session_key(token: str) -> bytes:
    """The key sessions are signed with, derived from the token: a new token ends every session."""
    return hmac.new(token.encode(), _KEY_LABEL, hashlib.sha256).digest()


def make_session(token: str, now: float, lifetime: float) -> str:
    """A session cookie value: ``<expiry>.<nonce>.<HMAC of both>`` (no token, nothing secret in it)."""
    payload = f"{int(now + lifetime)}.{secrets.token_urlsafe(12)}"
    sig = hmac.new(session_key(token), payload.encode(), hashlib.sha256).hexdigest()
    return f"{payload}.{sig}"


def valid_session(token: str, value: str | None, now: float) -> bool:
    """True for a cookie value ``make_session`` signed with this token that has not expired."""
    if not value or len(value) > 200:
        return False
    payload, _, sig = value.rpartition(".")
    expiry, _, nonce = payload.partition(".")
    if not expiry.isascii() or not expiry.isdigit() or not nonce:
        return False
    expected = hmac.new(session_key(token), payload.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(sig.encode(), expected.encode()) and int(expiry) > now


def valid_bearer(token: str, header: str | None) -> bool:
    """True when an Authorization header carries ``Bearer <token>``."""
    scheme, _, supplied = (header or "").partition(" ")
    supplied = supplied.strip()
    return scheme.lower() == "bearer" and bool(supplied) and hmac.compare_digest(supplied.encode(), token.encode())


def valid_token(token: str, supplied: str | None) -> bool:
    """True when the login form's ``supplied`` text is the token."""
    return bool(supplied) and hmac.compare_digest(supplied.encode(), token.encode())


class LoginThrottle:
    """Counts failed logins per client address over the last minute (memory bounded)."""

    def __init__(self, limit: int = FAILED_LOGINS_PER_MINUTE, window: float = 60.0, max_clients: int = 10_000):
        self.limit, self.window, self.max_clients = limit, window, max_clients
        self._failures: dict[str, deque] = {}
        self._lock = threading.Lock()

    def blocked(self, client: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._failures.get(client)
            while times and times[0] < now - self.window:
                times.popleft()
            return bool(times) and len(times) >= self.limit

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            if client not in self._failures and len(self._failures) >= self.max_clients:
                self._failures.clear()
            self._failures.setdefault(client, deque(maxlen=self.limit + 1)).append(now)
