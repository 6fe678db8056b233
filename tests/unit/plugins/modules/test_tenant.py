"""Unit tests of the tenant module's password check against verifiers PostgreSQL 15 wrote."""
from __future__ import annotations

import pytest

from ansible_collections.selfhosted.prefect.plugins.modules.tenant import quote_ident, quote_literal, verifier_matches

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
