"""Local secrets: MariaDB's root has a generated password (0600), older run folders are upgraded, the risk API
gets its own admin token."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pymysql
import pytest

from deploy.services import ER_ACCESS_DENIED, MariaDB, free_port, risk_api


def _root(svc: MariaDB, password: str):
    return pymysql.connect(host=svc.host, port=svc.port, user="root", password=password, ssl_disabled=True,
                           connect_timeout=3)


def _refused(svc: MariaDB, password: str) -> bool:
    try:
        _root(svc, password).close()
    except pymysql.err.OperationalError as exc:
        assert exc.args[0] == ER_ACCESS_DENIED, exc
        return True
    return False


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_root_has_a_generated_password_and_an_empty_one_is_refused(mariadb):
    assert _mode(mariadb.root_password_file) == 0o600
    password = mariadb.root_password_file.read_text().strip()
    assert len(password) >= 24
    assert _refused(mariadb, "")
    conn = _root(mariadb, password)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT `Host` FROM mysql.user WHERE `User` = 'root' AND "
                        "(authentication_string = '' OR authentication_string IS NULL)")
            assert cur.fetchall() == (), "a root account (any host) still has no password"
    finally:
        conn.close()
    assert _mode(mariadb.password_file) == 0o600


def test_a_run_folder_whose_root_has_no_password_is_upgraded_by_up(tmp_path):
    svc = MariaDB(run_dir=tmp_path, port=free_port())
    svc.start()
    try:
        # Put the folder back in the state an older launcher left it: every root account without a password.
        conn = svc.connect_root()
        with conn.cursor() as cur:
            cur.execute("SELECT `Host` FROM mysql.user WHERE `User` = 'root'")
            for (host,) in cur.fetchall():
                cur.execute("ALTER USER 'root'@%s IDENTIFIED BY ''", (host,))
        conn.close()
        svc.root_password_file.unlink()
        assert not _refused(svc, "")

        # `up` while it runs (start finds it running) upgrades it...
        assert svc.start() is False
        assert _refused(svc, "")
        assert not _refused(svc, svc.root_password_file.read_text().strip())
        assert _mode(svc.root_password_file) == 0o600

        # ... and a restart keeps the password; the application user still works.
        svc.stop()
        assert svc.start() is True
        assert _refused(svc, "")
        from applicant_api.db import connect
        connect(svc.url).close()
    finally:
        svc.stop()


def test_a_wrong_root_password_file_is_a_clear_error(tmp_path):
    from deploy.services import ServiceError

    svc = MariaDB(run_dir=tmp_path, port=free_port())
    svc.start()
    try:
        svc.root_password_file.write_text("not-the-password\n")
        with pytest.raises(ServiceError, match="root refuses"):
            svc.secure_root()
    finally:
        svc.stop()


def test_risk_api_gets_its_own_admin_token_from_the_run_folder(tmp_path):
    svc = risk_api(run_dir=tmp_path, port=free_port(), token="scoring-token-0123456789")
    admin = svc.extra_env["RISK_ADMIN_TOKEN"]
    secret = tmp_path / "risk-admin-token.secret"
    assert secret.read_text().strip() == admin and len(admin) >= 24
    assert _mode(secret) == 0o600
    assert admin != svc.extra_env["RISK_API_TOKEN"]
    assert svc.env()["RISK_ADMIN_TOKEN"] == admin  # what the gunicorn process gets
    again = risk_api(run_dir=tmp_path, port=free_port(), token="scoring-token-0123456789")
    assert again.extra_env["RISK_ADMIN_TOKEN"] == admin
    given = risk_api(run_dir=tmp_path, port=free_port(), token="t" * 20, admin_token="a" * 20)
    assert given.extra_env["RISK_ADMIN_TOKEN"] == "a" * 20
    with pytest.raises(ValueError, match="differ"):
        risk_api(run_dir=tmp_path, port=free_port(), token="same" * 5, admin_token="same" * 5)


def test_env_prints_the_admin_token_and_status_warns_about_the_broker(tmp_path):
    env = dict(os.environ, CREDIT_RUN_DIR=str(tmp_path / "run"))
    env.pop("RISK_ADMIN_TOKEN", None)
    out = subprocess.run([sys.executable, "-m", "deploy.local", "env"], env=env, capture_output=True, text=True,
                         timeout=60, check=True).stdout
    admin = (tmp_path / "run" / "risk-admin-token.secret").read_text().strip()
    assert f"export RISK_ADMIN_TOKEN={admin}" in out.splitlines()
    assert "export RISK_API_TOKEN=" in out
    status = subprocess.run([sys.executable, "-m", "deploy", "status"], env=env, capture_output=True, text=True,
                            timeout=60, check=True).stdout
    assert "memory only" in status and "loses every message" in status and "reconcile --republish" in status
