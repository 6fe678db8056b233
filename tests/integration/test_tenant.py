# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tenant module against a real PostgreSQL container (lab image ``postgres:15``) on the host's
Docker engine, run through ``ansible localhost -m selfhosted.prefect.tenant``: create, idempotence,
password reset, check mode, absent and purge, errors; the password never in the output.

Skipped only when no Docker engine answers on DOCKER_HOST (default /var/run/docker.sock).
"""

from __future__ import annotations

import json
import os
import secrets
import time

import pytest

from conftest import ModuleRunner  # also puts the collection on sys.path

# pylint: disable=wrong-import-order
from ansible_collections.selfhosted.prefect.plugins.module_utils.docker_exec import (
    DockerExecClient,
    DockerExecError,
)

IMAGE = os.environ.get("TENANT_TEST_IMAGE", "postgres:15")
ADMIN_PASSWORD = "admin-" + secrets.token_hex(8)


def _engine():
    try:
        client = DockerExecClient(os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock", timeout=60)
        client.request("GET", "/_ping")
    except DockerExecError as exc:
        pytest.skip("no Docker engine answers: %s" % exc)
    return client


class Postgres(object):
    def __init__(self, client, name):
        self.client = client
        self.name = name
        self.ip = None

    def sh(self, script, env=None):
        rc, out, err = self.client.exec_run(self.name, ["sh", "-c", script], env=env)
        return rc, (out + err).decode("utf-8", "replace").strip()

    def sql(self, sql, database="postgres"):
        rc, out, err = self.client.exec_run(self.name, ["psql", "-X", "-q", "-A", "-t", "-U", "postgres", "-d",
                                                        database, "-c", sql])
        assert rc == 0, (out + err).decode()
        return out.decode().strip()

    def can_login(self, user, password, database):
        """A password login over TCP to the container's own address (127.0.0.1 is trusted in the image)."""
        rc, out = self.sh('psql -X -A -t -h "$PGHOST" -U "$PGUSER" -d "$PGDATABASE" -c "SELECT 1"',
                          env={"PGHOST": self.ip, "PGUSER": user, "PGDATABASE": database, "PGPASSWORD": password})
        return rc == 0 and out == "1"


@pytest.fixture(scope="module")
def postgres():
    client = _engine()
    status, dummy = client.request("GET", "/images/%s/json" % IMAGE, allow_404=True)
    if status == 404:
        pytest.fail("image %s is missing: lab/build makes it (scripts/test-all lab)" % IMAGE)
    name = "t9-tenant-pg-%s" % secrets.token_hex(3)
    client.request("POST", "/containers/create?name=%s" % name,
                   {"Image": IMAGE, "Env": ["POSTGRES_PASSWORD=%s" % ADMIN_PASSWORD],
                    "Labels": {"io.selfhosted.prefect.test": "tenant"}})
    pg = Postgres(client, name)
    try:
        client.request("POST", "/containers/%s/start" % name)
        deadline = time.monotonic() + 120
        while True:
            info = client.inspect_container(name)
            assert info["State"]["Running"], "postgres container stopped: %s" % info["State"]
            pg.ip = info["NetworkSettings"]["IPAddress"] or list(info["NetworkSettings"]["Networks"].values())[0][
                "IPAddress"]
            # Over TCP: the image's first-start initialisation runs a socket-only server first.
            rc, dummy = pg.sh("pg_isready -q -h 127.0.0.1 -U postgres")
            if rc == 0:
                break
            assert time.monotonic() < deadline, "postgres did not get ready in 120 s"
            time.sleep(0.5)
        yield pg
    finally:
        client.request("DELETE", "/containers/%s?force=true&v=true" % name, allow_404=True)


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    return ModuleRunner(tmp_path_factory.mktemp("tenant-ansible"))


@pytest.fixture
def tenant(postgres, runner, assert_no_secret):
    """run(args, check=False, diff=True) -> result; every result is checked for the passwords."""
    seen = [ADMIN_PASSWORD]

    def run(args, check=False, diff=True, env=None):
        full = dict(database_container=postgres.name)
        full.update(args)
        if full.get("database_password"):
            seen.append(full["database_password"])
        result = runner.run("tenant", full, check=check, diff=diff, connect=False, env=env, timeout=120)
        assert_no_secret(result, *seen)
        return result
    return run


REVOKE = "revoke CONNECT and TEMPORARY from PUBLIC"


def roles_and_dbs(pg, name):
    return (pg.sql("SELECT count(*) FROM pg_roles WHERE rolname = 'prefect_%s'" % name),
            pg.sql("SELECT count(*) FROM pg_database WHERE datname = 'prefect_%s'" % name))


def test_lifecycle(postgres, tenant):
    password = "Pw-" + secrets.token_urlsafe(16)
    args = dict(name="t9life", database_password=password)

    # check mode on a new tenant: predicted, nothing written
    result = tenant(args, check=True)
    assert result["changed"] is True, result
    assert result["actions"] == ["create role", "create database", "create extension pg_trgm", REVOKE]
    assert roles_and_dbs(postgres, "t9life") == ("0", "0")

    result = tenant(args)
    assert not result["failed"], result
    assert result["changed"] is True
    assert result["actions"] == ["create role", "create database", "create extension pg_trgm", REVOKE]
    assert result["database"] == result["database_user"] == "prefect_t9life"
    assert result["diff"]["before"] == dict(role=None, database=None, owner=None, extensions=[],
                                            public_privileges=[], connection_limit=None)
    assert result["diff"]["after"] == dict(role="prefect_t9life", database="prefect_t9life",
                                           owner="prefect_t9life", extensions=["pg_trgm"],
                                           public_privileges=[], connection_limit=-1)
    assert postgres.can_login("prefect_t9life", password, "prefect_t9life")
    assert not postgres.can_login("prefect_t9life", password + "x", "prefect_t9life")
    assert postgres.sql("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'", "prefect_t9life") == "pg_trgm"
    assert postgres.sql("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database "
                        "WHERE datname = 'prefect_t9life'") == "prefect_t9life"

    # idempotent, check mode included
    for check in (False, True):
        again = tenant(args, check=check)
        assert again["changed"] is False and again["actions"] == [], again
        assert again["diff"]["before"] == again["diff"]["after"]

    # the role's password differs (another controller's secrets, or changed by hand): refused,
    # nothing changed, unless rotate_password (predicted first in check mode)
    postgres.sql("ALTER ROLE prefect_t9life PASSWORD 'something-else'")
    assert not postgres.can_login("prefect_t9life", password, "prefect_t9life")
    refused = tenant(args)
    assert refused["failed"] and "rotate_password" in refused["msg"] and password not in refused["msg"]
    assert postgres.can_login("prefect_t9life", "something-else", "prefect_t9life")
    args = dict(args, rotate_password=True)
    predicted = tenant(args, check=True)
    assert predicted["changed"] is True and predicted["actions"] == ["set role password"]
    assert not postgres.can_login("prefect_t9life", password, "prefect_t9life")
    reset = tenant(args)
    assert reset["changed"] is True and reset["actions"] == ["set role password"]
    assert postgres.can_login("prefect_t9life", password, "prefect_t9life")
    assert tenant(args)["changed"] is False

    # a new password given: changed, and the old one no longer works
    new_password = "New-" + secrets.token_urlsafe(16)
    changed = tenant(dict(args, database_password=new_password))
    assert changed["actions"] == ["set role password"]
    assert postgres.can_login("prefect_t9life", new_password, "prefect_t9life")
    assert not postgres.can_login("prefect_t9life", password, "prefect_t9life")

    # absent keeps the data unless purge
    kept = tenant(dict(name="t9life", state="absent"))
    assert kept["changed"] is False and roles_and_dbs(postgres, "t9life") == ("1", "1")
    predicted = tenant(dict(name="t9life", state="absent", purge=True), check=True)
    assert predicted["changed"] is True and predicted["actions"] == ["drop database", "drop role"]
    assert roles_and_dbs(postgres, "t9life") == ("1", "1")
    purged = tenant(dict(name="t9life", state="absent", purge=True))
    assert purged["changed"] is True and purged["actions"] == ["drop database", "drop role"]
    assert purged["diff"]["after"] == dict(role=None, database=None, owner=None, extensions=[],
                                           public_privileges=[], connection_limit=None)
    assert roles_and_dbs(postgres, "t9life") == ("0", "0")
    assert tenant(dict(name="t9life", state="absent", purge=True))["changed"] is False


def test_custom_names_and_owner_fix(postgres, tenant):
    password = "Pw-" + secrets.token_urlsafe(16)
    postgres.sql('CREATE DATABASE "t9_custom_db"')  # owned by postgres: the module hands it over
    args = dict(name="t9custom", database_name="t9_custom_db", database_user="t9_custom_user",
                database_password=password, extensions=["pg_trgm", "btree_gin"])
    result = tenant(args)
    assert result["actions"] == ["create role", "set database owner", "create extension pg_trgm",
                                 "create extension btree_gin", REVOKE], result
    assert result["diff"]["before"]["owner"] == "postgres"
    assert postgres.can_login("t9_custom_user", password, "t9_custom_db")
    assert tenant(args)["changed"] is False
    assert tenant(dict(args, state="absent", purge=True))["actions"] == ["drop database", "drop role"]


def test_errors_are_clear(postgres, tenant):
    password = "Pw-" + secrets.token_urlsafe(16)
    missing = tenant(dict(name="t9err", database_password=password, database_container="t9-no-such-container"))
    assert missing["failed"] and "t9-no-such-container" in missing["msg"] and "does not exist" in missing["msg"]

    tcp = tenant(dict(name="t9err", database_password=password, docker_host="tcp://127.0.0.1:2375"))
    assert tcp["failed"] and "tcp://127.0.0.1:2375" in tcp["msg"] and "not supported" in tcp["msg"]

    no_socket = tenant(dict(name="t9err", database_password=password, docker_host="unix:///nonexistent/docker.sock"))
    assert no_socket["failed"] and "/nonexistent/docker.sock" in no_socket["msg"]

    from_env = tenant(dict(name="t9err", database_password=password),
                      env={"DOCKER_HOST": "unix:///nonexistent/env.sock"})
    assert from_env["failed"] and "/nonexistent/env.sock" in from_env["msg"]

    bad_name = tenant(dict(name="T9-Err", database_password=password))
    assert bad_name["failed"] and "not a valid tenant name" in bad_name["msg"]

    no_password = tenant(dict(name="t9err"))
    assert no_password["failed"] and "database_password" in no_password["msg"]

    bad_admin = tenant(dict(name="t9err", database_password=password, database_admin_user="nobody"))
    assert bad_admin["failed"] and "SQL failed" in bad_admin["msg"], bad_admin
    assert roles_and_dbs(postgres, "t9err") == ("0", "0")
    assert json.dumps(bad_admin).count(password) == 0


def test_tenants_cannot_reach_each_other(postgres, tenant):
    """Below the API: tenant a's role logs in to its own database and is refused by tenant b's
    (PostgreSQL grants CONNECT to PUBLIC on every new database); a connection limit holds."""
    pw = {name: "Pw-" + secrets.token_urlsafe(16) for name in ("t9isoa", "t9isob")}
    for name in pw:
        assert tenant(dict(name=name, database_password=pw[name], connection_limit=3))["changed"] is True
    assert postgres.can_login("prefect_t9isoa", pw["t9isoa"], "prefect_t9isoa")
    assert not postgres.can_login("prefect_t9isoa", pw["t9isoa"], "prefect_t9isob")
    assert not postgres.can_login("prefect_t9isob", pw["t9isob"], "prefect_t9isoa")
    rc, out = postgres.sh('psql -X -h "$PGHOST" -U prefect_t9isoa -d prefect_t9isob -c "SELECT 1"',
                          env={"PGHOST": postgres.ip, "PGPASSWORD": pw["t9isoa"]})
    assert rc != 0 and 'permission denied for database "prefect_t9isob"' in out, out
    assert postgres.sql("SELECT rolconnlimit FROM pg_roles WHERE rolname = 'prefect_t9isoa'") == "3"

    # PUBLIC given CONNECT back out of band: reported and revoked again; a new limit applied
    postgres.sql('GRANT CONNECT ON DATABASE "prefect_t9isob" TO PUBLIC')
    assert postgres.can_login("prefect_t9isoa", pw["t9isoa"], "prefect_t9isob")
    predicted = tenant(dict(name="t9isob", database_password=pw["t9isob"], connection_limit=3), check=True)
    assert predicted["actions"] == ["revoke CONNECT from PUBLIC"], predicted
    fixed = tenant(dict(name="t9isob", database_password=pw["t9isob"], connection_limit=5))
    assert fixed["actions"] == ["revoke CONNECT from PUBLIC", "set connection limit 5"], fixed
    assert not postgres.can_login("prefect_t9isoa", pw["t9isoa"], "prefect_t9isob")
    assert tenant(dict(name="t9isob", database_password=pw["t9isob"], connection_limit=5))["changed"] is False

    # isolate false leaves the privileges alone
    postgres.sql('GRANT CONNECT ON DATABASE "prefect_t9isob" TO PUBLIC')
    assert tenant(dict(name="t9isob", database_password=pw["t9isob"], isolate=False))["changed"] is False
    for name in pw:
        tenant(dict(name=name, state="absent", purge=True))
