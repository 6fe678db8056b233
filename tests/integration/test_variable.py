# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.variable against a real Prefect server."""

from __future__ import annotations


def variable(api, name):
    return api.get_or_none("/variables/name/%s" % name)


def var_name(unique_name):
    return unique_name("var").replace("-", "_")


def test_life_cycle(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    name = var_name(unique_name)
    args = {"name": name, "value": {"batch_size": 500, "targets": ["warehouse"]}, "tags": ["etl", "nightly"]}

    result = run_module("variable", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert result["diff"]["after"]["value"] == args["value"]
    assert variable(prefect_api, name) is None

    result = run_module("variable", args, diff=True)
    assert result["changed"] is True, result
    stored = variable(prefect_api, name)
    assert stored["value"] == args["value"]
    assert sorted(stored["tags"]) == ["etl", "nightly"]
    assert result["variable"]["id"] == stored["id"]
    assert_no_secret(result, prefect_server.auth_string)

    assert run_module("variable", args)["changed"] is False
    # tag order does not matter
    assert run_module("variable", dict(args, tags=["nightly", "etl"]))["changed"] is False
    # value left out: kept
    assert run_module("variable", {"name": name})["changed"] is False

    changed = dict(args, value={"batch_size": 1000, "targets": ["warehouse"]})
    result = run_module("variable", changed, check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["value"]["batch_size"] == 500
    assert result["diff"]["after"]["value"]["batch_size"] == 1000
    assert variable(prefect_api, name)["value"]["batch_size"] == 500

    result = run_module("variable", changed, diff=True)
    assert result["changed"] is True
    assert variable(prefect_api, name)["value"]["batch_size"] == 1000
    assert run_module("variable", changed)["changed"] is False

    result = run_module("variable", {"name": name, "state": "absent"}, check=True)
    assert result["changed"] is True
    assert variable(prefect_api, name) is not None
    assert run_module("variable", {"name": name, "state": "absent"})["changed"] is True
    assert variable(prefect_api, name) is None
    assert run_module("variable", {"name": name, "state": "absent"})["changed"] is False


def test_types_are_compared_exactly(prefect_api, run_module, unique_name):
    name = var_name(unique_name)
    assert run_module("variable", {"name": name, "value": 1})["changed"] is True
    assert variable(prefect_api, name)["value"] == 1
    assert run_module("variable", {"name": name, "value": 1})["changed"] is False
    assert run_module("variable", {"name": name, "value": True})["changed"] is True
    assert variable(prefect_api, name)["value"] is True
    assert run_module("variable", {"name": name, "value": "true"})["changed"] is True
    assert variable(prefect_api, name)["value"] == "true"
    assert run_module("variable", {"name": name, "value": "true"})["changed"] is False


def test_value_required_to_create(prefect_api, run_module, unique_name):
    name = var_name(unique_name)
    result = run_module("variable", {"name": name, "tags": ["x"]})
    assert result["failed"] is True
    assert "value is required" in result["msg"]
    assert variable(prefect_api, name) is None


def test_bad_name_shows_the_servers_message(prefect_api, run_module):
    result = run_module("variable", {"name": "Bad Name!", "value": 1})
    assert result["failed"] is True
    assert result["status"] == 422
    assert "Variable name" in result["msg"]


def test_wrong_credentials(prefect_api, run_module, unique_name, assert_no_secret):
    name = var_name(unique_name)
    result = run_module("variable", {"name": name, "value": 1, "api_auth_string": "admin:nope-nope"})
    assert result["failed"] is True
    assert result["status"] == 401
    assert_no_secret(result, "nope-nope")
    assert variable(prefect_api, name) is None


def test_unreachable_server(run_module, unique_name, unreachable_api_url):
    result = run_module("variable", {"name": var_name(unique_name), "value": 1, "api_url": unreachable_api_url,
                                     "retries": 2, "retry_timeout": 5})
    assert result["failed"] is True
    assert "Could not reach the Prefect API" in result["msg"]
    assert result["_elapsed"] < 30
