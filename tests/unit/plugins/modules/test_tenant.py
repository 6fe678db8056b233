# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the tenant module: the password check against verifiers PostgreSQL 15 wrote, names,
and TenantManager against an in-memory database."""
from __future__ import annotations

import pytest

from ansible_collections.selfhosted.prefect.plugins.modules.tenant import (
    TenantDatabase,
    TenantError,
    TenantManager,
    quote_ident,
    quote_literal,
    resolve_names,
    verifier_matches,
)

# Written by PostgreSQL 15 (lab image) for CREATE ROLE alice PASSWORD 'correct horse'
# and, with password_encryption=md5, bob PASSWORD 'hunter2'.
ALICE = ("SCRAM-SHA-256$4096:0hC4oNUS5f7tj8ZRL1he6A==$N6gAID1JncQRTA1yab7IQBH2gnJRPz+sSBGDw307eF8="
         ":Vr5/JsWej//9TSoBL3BNW8Bva/xYHVYwU9rPiBSrFlY=")
BOB = "md5a2cc14bcc08bcb211f578153967abd6d"


def test_scram_verifier_accepts_the_password_postgres_hashed():
    assert verifier_matches(ALICE, "alice", "correct horse")


@pytest.mark.parametrize("wrong", ["correct horse ", "Correct horse", "", "hunter2"])
def test_scram_verifier_refuses_other_passwords(wrong):
    assert not verifier_matches(ALICE, "alice", wrong)


def test_md5_verifier_depends_on_user_and_password():
    assert verifier_matches(BOB, "bob", "hunter2")
    assert not verifier_matches(BOB, "alice", "hunter2")
    assert not verifier_matches(BOB, "bob", "hunter3")


@pytest.mark.parametrize("stored", ["", "SCRAM-SHA-256$garbage", "plain"])
def test_unknown_or_broken_verifiers_never_match(stored):
    assert not verifier_matches(stored, "alice", "correct horse")


def test_quoting():
    assert quote_ident('a"b') == '"a""b"'
    assert quote_literal("it's") == "'it''s'"


# -- names -------------------------------------------------------------------------------
def params(**kw):
    base = dict(name="team", state="present", purge=False, database_container="pg", database_admin_user="postgres",
                database_name=None, database_user=None, database_password="pw-Secret-1", extensions=["pg_trgm"],
                isolate=True, connection_limit=None, rotate_password=False)
    base.update(kw)
    return base


def test_resolve_names_defaults_and_overrides():
    assert resolve_names(params()) == ("prefect_team", "prefect_team")
    assert resolve_names(params(database_name="db1", database_user="u1")) == ("db1", "u1")


@pytest.mark.parametrize("kw, word", [
    (dict(name="Team"), "tenant name"),
    (dict(name="x" * 49), "tenant name"),
    (dict(database_user="bad-user"), "database_user"),
    (dict(database_name='x"; drop'), "database_name"),
    (dict(extensions=["pg_trgm", "no way"]), "extension"),
])
def test_resolve_names_refuses(kw, word):
    with pytest.raises(ValueError, match=word):
        resolve_names(params(**kw))


# -- TenantManager against a fake database -------------------------------------------------
REVOKE = "revoke CONNECT and TEMPORARY from PUBLIC"


class FakeModule(object):
    def __init__(self, check_mode=False, diff=False, **kw):
        self.params = params(**kw)
        self.check_mode = check_mode
        self._diff = diff


class FakeDatabase(object):
    """In-memory stand-in for TenantDatabase: roles with passwords, databases with owners, extensions and
    PUBLIC's privileges (a new database grants CONNECT and TEMPORARY to PUBLIC, as PostgreSQL does)."""

    def __init__(self, roles=None, databases=None, limits=None):
        self.roles = dict(roles or {})
        self.databases = dict(databases or {})
        self.limits = dict(limits or {})
        self.writes = []

    def public_privileges(self, dbname):
        return list(self.databases[dbname].get("public", ["CONNECT", "TEMPORARY"]))

    def connection_limit(self, user):
        return self.limits.get(user, -1)

    def revoke_public(self, dbname):
        self.writes.append("revoke_public")
        self.databases[dbname]["public"] = []

    def set_connection_limit(self, user, limit):
        self.writes.append("set_connection_limit")
        self.limits[user] = limit

    def role_exists(self, user):
        return user in self.roles

    def database_owner(self, dbname):
        return self.databases[dbname]["owner"] if dbname in self.databases else None

    def extensions(self, dbname):
        return sorted(self.databases[dbname]["extensions"])

    def password_matches(self, user, password):
        return self.roles[user] == password

    def create_role(self, user, password):
        self.writes.append("create_role")
        self.roles[user] = password

    def set_password(self, user, password):
        self.writes.append("set_password")
        self.roles[user] = password

    def create_database(self, dbname, owner):
        self.writes.append("create_database")
        self.databases[dbname] = dict(owner=owner, extensions=[])

    def set_owner(self, dbname, owner):
        self.writes.append("set_owner")
        self.databases[dbname]["owner"] = owner

    def create_extension(self, dbname, ext):
        self.writes.append("create_extension")
        self.databases[dbname]["extensions"].append(ext)

    def drop_database(self, dbname):
        self.writes.append("drop_database")
        del self.databases[dbname]

    def drop_role(self, user):
        self.writes.append("drop_role")
        del self.roles[user]


def test_present_creates_everything_then_is_idempotent():
    db = FakeDatabase()
    result = TenantManager(FakeModule(diff=True), db).present()
    assert result["changed"] is True
    assert result["actions"] == ["create role", "create database", "create extension pg_trgm", REVOKE]
    assert result["diff"]["before"] == dict(role=None, database=None, owner=None, extensions=[],
                                            public_privileges=[], connection_limit=None)
    assert result["diff"]["after"] == dict(role="prefect_team", database="prefect_team", owner="prefect_team",
                                           extensions=["pg_trgm"], public_privileges=[], connection_limit=-1)
    assert "pw-Secret-1" not in repr(result)
    again = TenantManager(FakeModule(diff=True), db).present()
    assert again["changed"] is False and again["actions"] == []
    assert again["diff"]["before"] == again["diff"]["after"]
    assert "diff" not in TenantManager(FakeModule(), db).present()


def test_present_refuses_another_password_unless_rotate():
    db = FakeDatabase(roles={"prefect_team": "old"},
                      databases={"prefect_team": dict(owner="prefect_team", extensions=["pg_trgm"])})
    with pytest.raises(TenantError) as err:
        TenantManager(FakeModule(), db).present()
    assert "rotate_password" in str(err.value) and "prefect_team" in str(err.value)
    assert "pw-Secret-1" not in str(err.value) and "old" not in str(err.value).split()
    assert db.writes == [] and db.roles["prefect_team"] == "old"
    with pytest.raises(TenantError):
        TenantManager(FakeModule(check_mode=True), db).present()


def test_present_resets_a_wrong_password_and_owner():
    db = FakeDatabase(roles={"prefect_team": "old"},
                      databases={"prefect_team": dict(owner="postgres", extensions=["pg_trgm"])})
    result = TenantManager(FakeModule(rotate_password=True), db).present()
    assert result["actions"] == ["set role password", "set database owner", REVOKE]
    assert db.roles["prefect_team"] == "pw-Secret-1"
    assert db.databases["prefect_team"]["owner"] == "prefect_team"


def test_check_mode_predicts_without_writing():
    db = FakeDatabase(roles={"prefect_team": "old"})
    result = TenantManager(FakeModule(check_mode=True, diff=True, rotate_password=True), db).present()
    assert result["changed"] is True
    assert result["actions"] == ["set role password", "create database", "create extension pg_trgm", REVOKE]
    assert db.writes == []
    purge = TenantManager(FakeModule(check_mode=True, state="absent", purge=True), db).absent()
    assert purge["actions"] == ["drop role"] and db.writes == []


def test_absent_keeps_data_unless_purge():
    db = FakeDatabase(roles={"prefect_team": "pw"},
                      databases={"prefect_team": dict(owner="prefect_team", extensions=["pg_trgm"])})
    kept = TenantManager(FakeModule(state="absent", diff=True), db).absent()
    assert kept["changed"] is False and kept["diff"]["before"] == kept["diff"]["after"]
    purged = TenantManager(FakeModule(state="absent", purge=True, diff=True), db).absent()
    assert purged["actions"] == ["drop database", "drop role"]
    assert purged["diff"]["after"] == dict(role=None, database=None, owner=None, extensions=[],
                                           public_privileges=[], connection_limit=None)
    assert db.roles == {} and db.databases == {}
    assert TenantManager(FakeModule(state="absent", purge=True), db).absent()["changed"] is False


def test_isolation_and_connection_limit():
    db = FakeDatabase(roles={"prefect_team": "pw-Secret-1"},
                      databases={"prefect_team": dict(owner="prefect_team", extensions=["pg_trgm"],
                                                      public=["CONNECT"])})
    predicted = TenantManager(FakeModule(check_mode=True, connection_limit=20), db).present()
    assert predicted["actions"] == ["revoke CONNECT from PUBLIC", "set connection limit 20"] and db.writes == []
    done = TenantManager(FakeModule(connection_limit=20), db).present()
    assert done["actions"] == predicted["actions"]
    assert db.databases["prefect_team"]["public"] == [] and db.limits["prefect_team"] == 20
    assert TenantManager(FakeModule(connection_limit=20), db).present()["changed"] is False
    # not set: the limit is left alone; isolate false: PUBLIC's privileges are left alone
    db.databases["prefect_team"]["public"] = ["CONNECT", "TEMPORARY"]
    assert TenantManager(FakeModule(isolate=False), db).present()["changed"] is False


class FakeExecClient(object):
    def __init__(self, rc=0, stdout=b"", stderr=b""):
        self.calls = []
        self.answer = (rc, stdout, stderr)

    def exec_run(self, container, cmd, env=None):
        self.calls.append((container, cmd, env))
        return self.answer


def test_password_goes_through_the_environment_and_is_masked_in_errors():
    client = FakeExecClient(rc=1, stderr=b"ERROR: something about pw-Secret-1")
    db = TenantDatabase(client, "pg", "postgres")
    with pytest.raises(TenantError) as err:
        db.create_role("prefect_team", "pw-Secret-1")
    assert "pw-Secret-1" not in str(err.value) and "********" in str(err.value)
    container, cmd, env = client.calls[0]
    assert container == "pg" and env["TENANT_PASSWORD"] == "pw-Secret-1"
    assert not any("pw-Secret-1" in part for part in cmd)


def test_container_checks():
    class Inspect(object):
        def __init__(self, info):
            self.info = info

        def inspect_container(self, name):
            return self.info

    with pytest.raises(TenantError, match="does not exist"):
        TenantDatabase(Inspect(None), "pg", "postgres").check_container()
    with pytest.raises(TenantError, match="is exited, not running"):
        TenantDatabase(Inspect({"State": {"Running": False, "Status": "exited"}}), "pg", "postgres").check_container()
    TenantDatabase(Inspect({"State": {"Running": True}}), "pg", "postgres").check_container()
