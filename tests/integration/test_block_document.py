# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.block_document against a real Prefect server: life cycle, secrets, references."""

from __future__ import annotations

import secrets


def document(api, slug, name, include_secrets=True):
    return api.get_or_none("/block_types/slug/%s/block_documents/name/%s" % (slug, name),
                           params={"include_secrets": include_secrets})


def count_documents(api):
    return api.post("/block_documents/count", {})


def test_aws_credentials_life_cycle(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    name = unique_name("creds")
    secret_one = "S1-" + secrets.token_hex(12)
    secret_two = "S2-" + secrets.token_hex(12)
    args = {"block_type": "aws-credentials", "name": name,
            "data": {"aws_access_key_id": "prefect-key", "aws_secret_access_key": secret_one,
                     "aws_client_parameters": {"endpoint_url": "http://127.0.0.1:8333"}}}

    result = run_module("block_document", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert result["diff"]["after"]["data"]["aws_secret_access_key"] == "********"
    assert document(prefect_api, "aws-credentials", name) is None
    assert_no_secret(result, secret_one, prefect_server.auth_string)

    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True, result
    stored = document(prefect_api, "aws-credentials", name)
    assert stored["data"]["aws_secret_access_key"] == secret_one
    assert stored["data"]["aws_access_key_id"] == "prefect-key"
    assert result["block"]["data"]["aws_secret_access_key"] == "********"
    assert result["block"]["data"]["aws_access_key_id"] == "prefect-key"
    assert result["block"]["id"] == stored["id"]
    assert result["secret_fields"] == ["aws_secret_access_key"]
    assert result["changed_secret_fields"] == ["aws_secret_access_key"]
    assert_no_secret(result, secret_one, prefect_server.auth_string)

    result = run_module("block_document", args, diff=True)
    assert result["changed"] is False, result
    assert result["changed_secret_fields"] == []
    assert_no_secret(result, secret_one)

    # a plain field changes: the diff shows it
    args["data"]["aws_access_key_id"] = "other-key"
    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["data"]["aws_access_key_id"] == "prefect-key"
    assert result["diff"]["after"]["data"]["aws_access_key_id"] == "other-key"
    assert result["diff"]["after"]["data"]["aws_secret_access_key"] == "********"
    assert result["changed_secret_fields"] == []
    assert_no_secret(result, secret_one)

    # only the secret changes: detected, masked, check mode writes nothing
    args["data"]["aws_secret_access_key"] = secret_two
    result = run_module("block_document", args, check=True, diff=True)
    assert result["changed"] is True
    assert result["changed_secret_fields"] == ["aws_secret_access_key"]
    assert result["diff"]["before"]["data"]["aws_secret_access_key"] == "********"
    assert result["diff"]["after"]["data"]["aws_secret_access_key"] == "******** (changed)"
    assert_no_secret(result, secret_one, secret_two)
    assert document(prefect_api, "aws-credentials", name)["data"]["aws_secret_access_key"] == secret_one

    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True
    assert_no_secret(result, secret_one, secret_two)
    assert document(prefect_api, "aws-credentials", name)["data"]["aws_secret_access_key"] == secret_two
    assert run_module("block_document", args)["changed"] is False

    # a field left out is removed
    del args["data"]["aws_client_parameters"]
    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True
    assert "aws_client_parameters" in result["diff"]["before"]["data"]
    assert "aws_client_parameters" not in document(prefect_api, "aws-credentials", name)["data"]

    # absent, check mode first
    absent = {"block_type": "aws-credentials", "name": name, "state": "absent"}
    result = run_module("block_document", absent, check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["data"]["aws_secret_access_key"] == "********"
    assert_no_secret(result, secret_two)
    assert document(prefect_api, "aws-credentials", name) is not None
    assert run_module("block_document", absent)["changed"] is True
    assert document(prefect_api, "aws-credentials", name) is None
    assert run_module("block_document", absent)["changed"] is False


def test_secret_block_with_structured_value(prefect_api, run_module, unique_name, assert_no_secret):
    name = unique_name("secret")
    password = "pw-" + secrets.token_hex(10)
    args = {"block_type": "secret", "name": name, "data": {"value": {"user": "etl", "password": password}}}
    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True, result
    assert result["block"]["data"] == {"value": "********"}
    assert_no_secret(result, password)
    assert document(prefect_api, "secret", name)["data"]["value"] == {"user": "etl", "password": password}
    result = run_module("block_document", args, diff=True)
    assert result["changed"] is False
    assert_no_secret(result, password)


def test_reference_to_another_block(prefect_api, run_module, unique_name, assert_no_secret):
    creds = unique_name("creds")
    bucket = unique_name("bucket")
    secret = "K-" + secrets.token_hex(10)
    assert run_module("block_document", {"block_type": "aws-credentials", "name": creds,
                                         "data": {"aws_access_key_id": "a", "aws_secret_access_key": secret}})["changed"]
    creds_id = document(prefect_api, "aws-credentials", creds)["id"]
    args = {"block_type": "s3-bucket", "name": bucket, "data": {
        "bucket_name": "flows",
        "credentials": {"$ref": {"block_type_slug": "aws-credentials", "block_document_name": creds}}}}
    result = run_module("block_document", args, diff=True)
    assert result["changed"] is True, result
    assert result["block"]["data"]["credentials"] == {"$ref": {"block_document_id": creds_id}}
    assert_no_secret(result, secret)
    stored = document(prefect_api, "s3-bucket", bucket, include_secrets=False)
    assert stored["block_document_references"]["credentials"]["block_document"]["id"] == creds_id

    assert run_module("block_document", args)["changed"] is False
    by_id = {"block_type": "s3-bucket", "name": bucket, "data": {
        "bucket_name": "flows", "credentials": {"$ref": {"block_document_id": creds_id}}}}
    assert run_module("block_document", by_id)["changed"] is False

    missing = dict(args, data={"bucket_name": "flows", "credentials": {
        "$ref": {"block_type_slug": "aws-credentials", "block_document_name": "does-not-exist"}}})
    result = run_module("block_document", missing)
    assert result["failed"] is True
    assert "does-not-exist" in result["msg"]


def test_unknown_block_type_names_the_registration_command(prefect_api, run_module, unique_name):
    before = count_documents(prefect_api)
    result = run_module("block_document", {"block_type": "kafka-credentials", "name": unique_name("b"), "data": {"x": 1}})
    assert result["failed"] is True
    assert "'kafka-credentials' is not registered" in result["msg"]
    assert "prefect block register -m" in result["msg"]
    assert "aws-credentials" in result["registered_block_types"]
    assert count_documents(prefect_api) == before
    # absent for a type that does not exist: nothing to do
    absent = run_module("block_document", {"block_type": "kafka-credentials", "name": "x", "state": "absent"})
    assert absent["changed"] is False and absent["failed"] is False


def test_bad_data_is_refused(prefect_api, run_module, unique_name, assert_no_secret):
    before = count_documents(prefect_api)
    secret = "Z-" + secrets.token_hex(8)
    result = run_module("block_document", {"block_type": "aws-credentials", "name": unique_name("b"),
                                           "data": {"aws_secret_access_key": secret, "region": "eu-west-1"}})
    assert result["failed"] is True
    assert "region" in result["msg"] and "region_name" in result["msg"]
    assert_no_secret(result, secret)
    result = run_module("block_document", {"block_type": "s3-bucket", "name": unique_name("b"), "data": {}})
    assert result["failed"] is True
    assert "bucket_name" in result["msg"]
    # the server's own validation message for a bad name
    result = run_module("block_document", {"block_type": "secret", "name": "Bad Name", "data": {"value": secret}})
    assert result["failed"] is True
    assert result["status"] == 422
    assert "lowercase" in result["msg"]
    assert_no_secret(result, secret)
    assert count_documents(prefect_api) == before


def test_wrong_credentials_do_not_leak(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    secret = "W-" + secrets.token_hex(8)
    name = unique_name("b")
    result = run_module("block_document", {"block_type": "secret", "name": name, "data": {"value": secret},
                                           "api_auth_string": "admin:not-the-password"})
    assert result["failed"] is True
    assert result["status"] == 401
    assert_no_secret(result, secret, "not-the-password", prefect_server.auth_string)
    assert document(prefect_api, "secret", name) is None
