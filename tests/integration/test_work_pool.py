# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.work_pool against a real Prefect server; state is checked over the API."""

from __future__ import annotations

from urllib.parse import quote

import pytest


def pool(api, name):
    return api.get_or_none("/work_pools/%s" % quote(name, safe=""))


def queues(api, name):
    return {q["name"]: q for q in api.post_paginated("/work_pools/%s/queues/filter" % quote(name, safe=""))}


def count_pools(api):
    return api.post("/work_pools/count", {})


def default_template(api, pool_type):
    metadata = api.get("/collections/views/aggregate-worker-metadata")
    for workers in metadata.values():
        for key, info in workers.items():
            if info.get("type", key) == pool_type:
                return info["default_base_job_configuration"]
    raise AssertionError("no default template for %s" % pool_type)


def test_life_cycle(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    name = unique_name("pool")
    args = {"name": name, "type": "process", "description": "first", "concurrency_limit": 3}

    # check mode on a missing pool: predicts a change, writes nothing
    result = run_module("work_pool", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["type"] == "process"
    assert pool(prefect_api, name) is None

    # create
    result = run_module("work_pool", args, diff=True)
    assert result["changed"] is True, result
    created = pool(prefect_api, name)
    assert created["type"] == "process"
    assert created["description"] == "first"
    assert created["concurrency_limit"] == 3
    # the server's default template for the type, not the empty one REST gives
    assert created["base_job_template"] == default_template(prefect_api, "process")
    assert list(queues(prefect_api, name)) == ["default"]
    assert result["work_pool"]["name"] == name
    assert [q["name"] for q in result["queues"]] == ["default"]
    assert_no_secret(result, prefect_server.auth_string)

    # again: no change
    result = run_module("work_pool", args, diff=True)
    assert result["changed"] is False, result
    assert pool(prefect_api, name)["updated"] == created["updated"]

    # change one field: changed, and the diff shows it
    changed_args = dict(args, description="second")
    result = run_module("work_pool", changed_args, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["description"] == "first"
    assert result["diff"]["after"]["description"] == "second"
    assert result["diff"]["before"]["concurrency_limit"] == result["diff"]["after"]["concurrency_limit"] == 3
    assert pool(prefect_api, name)["description"] == "second"

    # check mode on a change: predicted, nothing written
    result = run_module("work_pool", dict(changed_args, paused=True, concurrency_limit=-1), check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"]["is_paused"] is True
    assert result["diff"]["after"]["concurrency_limit"] is None
    current = pool(prefect_api, name)
    assert current["is_paused"] is False and current["concurrency_limit"] == 3

    # pause and remove the limit for real
    result = run_module("work_pool", dict(changed_args, paused=True, concurrency_limit=-1))
    assert result["changed"] is True
    current = pool(prefect_api, name)
    assert current["is_paused"] is True and current["concurrency_limit"] is None
    assert run_module("work_pool", dict(changed_args, paused=True, concurrency_limit=-1))["changed"] is False

    # absent in check mode: nothing deleted
    result = run_module("work_pool", {"name": name, "state": "absent"}, check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["after"] == {}
    assert pool(prefect_api, name) is not None

    # absent
    result = run_module("work_pool", {"name": name, "state": "absent"})
    assert result["changed"] is True
    assert pool(prefect_api, name) is None

    # absent again
    result = run_module("work_pool", {"name": name, "state": "absent"})
    assert result["changed"] is False


def test_job_variables_merge_into_default_template(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    args = {"name": name, "type": "process",
            "job_variables": {"working_dir": "/srv/flows", "env": {"PREFECT_LOGGING_LEVEL": "INFO"}}}
    result = run_module("work_pool", args)
    assert result["changed"] is True, result
    template = pool(prefect_api, name)["base_job_template"]
    props = template["variables"]["properties"]
    assert props["working_dir"]["default"] == "/srv/flows"
    assert props["env"]["default"] == {"PREFECT_LOGGING_LEVEL": "INFO"}
    assert template["job_configuration"] == default_template(prefect_api, "process")["job_configuration"]

    assert run_module("work_pool", args)["changed"] is False

    # changing a job variable: the diff shows just that default
    args["job_variables"]["working_dir"] = "/srv/other"
    result = run_module("work_pool", args, diff=True)
    assert result["changed"] is True
    before_props = result["diff"]["before"]["base_job_template"]["variables"]["properties"]
    after_props = result["diff"]["after"]["base_job_template"]["variables"]["properties"]
    assert before_props["working_dir"]["default"] == "/srv/flows"
    assert after_props["working_dir"]["default"] == "/srv/other"
    assert before_props["env"] == after_props["env"]

    # leaving job_variables out keeps the template as it is
    assert run_module("work_pool", {"name": name, "type": "process"})["changed"] is False
    assert pool(prefect_api, name)["base_job_template"]["variables"]["properties"]["working_dir"]["default"] == \
        "/srv/other"

    # unknown job variable: refused with the list, nothing changed
    before = pool(prefect_api, name)
    result = run_module("work_pool", {"name": name, "type": "process", "job_variables": {"imagee": "x"}})
    assert result["failed"] is True
    assert "imagee" in result["msg"] and "working_dir" in result["msg"]
    assert pool(prefect_api, name) == before


def test_pinned_job_variables_cannot_be_overridden(prefect_api, run_module, unique_name):
    """A docker pool that pins privileged/volumes/network_mode: the server keeps the values in
    job_configuration and no longer offers the variables (the run proving the worker ignores a
    deployment's ask is molecule/worker)."""
    name = unique_name("pool")
    pinned = {"privileged": False, "volumes": [], "network_mode": "host", "networks": []}
    args = {"name": name, "type": "docker", "job_variables": {"image_pull_policy": "Always"},
            "pinned_job_variables": pinned}
    result = run_module("work_pool", args, check=True)
    assert result["changed"] is True and pool(prefect_api, name) is None
    result = run_module("work_pool", args)
    assert result["changed"] is True, result
    template = pool(prefect_api, name)["base_job_template"]
    for key, value in pinned.items():
        assert template["job_configuration"][key] == value, key
        assert key not in template["variables"]["properties"], key
    assert template["variables"]["properties"]["image_pull_policy"]["default"] == "Always"
    assert run_module("work_pool", args)["changed"] is False
    assert run_module("work_pool", args, check=True)["changed"] is False

    # unpinning one gives it back to deployments (the default template's variable again)
    del args["pinned_job_variables"]["volumes"]
    result = run_module("work_pool", args)
    assert result["changed"] is True
    template = pool(prefect_api, name)["base_job_template"]
    assert "volumes" in template["variables"]["properties"]
    assert template["job_configuration"]["volumes"] == "{{ volumes }}"

    # a name in both, and an unknown name: refused, nothing changed
    before = pool(prefect_api, name)
    result = run_module("work_pool", dict(args, job_variables={"privileged": True}))
    assert result["failed"] is True and "privileged: both in job_variables" in result["msg"], result
    result = run_module("work_pool", dict(args, pinned_job_variables={"priviledged": False}))
    assert result["failed"] is True and "priviledged" in result["msg"], result
    assert pool(prefect_api, name) == before


def test_explicit_base_job_template_with_placeholders(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    template = {
        "job_configuration": {"command": "{{ command }}", "env": "{{ env }}"},
        "variables": {"type": "object", "properties": {
            "command": {"type": "string"},
            "env": {"type": "object", "additionalProperties": {"type": "string"}},
        }},
    }
    result = run_module("work_pool", {"name": name, "type": "process", "base_job_template": template,
                                      "job_variables": {"env": {"X": "1"}}})
    assert result["changed"] is True, result
    stored = pool(prefect_api, name)["base_job_template"]
    assert stored["job_configuration"] == {"command": "{{ command }}", "env": "{{ env }}"}
    assert stored["variables"]["properties"]["env"]["default"] == {"X": "1"}
    assert run_module("work_pool", {"name": name, "type": "process", "base_job_template": template,
                                    "job_variables": {"env": {"X": "1"}}})["changed"] is False


def test_pool_created_over_rest_with_empty_template_gets_the_default(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    prefect_api.post("/work_pools/", {"name": name, "type": "process"})
    assert pool(prefect_api, name)["base_job_template"] == {}
    result = run_module("work_pool", {"name": name, "type": "process"}, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["base_job_template"] == {}
    assert pool(prefect_api, name)["base_job_template"] == default_template(prefect_api, "process")


def test_queues(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    args = {"name": name, "type": "process", "queues": [
        {"name": "critical", "priority": 1, "concurrency_limit": 2, "description": "urgent"},
        {"name": "bulk", "priority": 2},
    ]}
    result = run_module("work_pool", args, diff=True)
    assert result["changed"] is True, result
    qs = queues(prefect_api, name)
    assert sorted(qs) == ["bulk", "critical", "default"]
    assert qs["critical"]["priority"] == 1 and qs["critical"]["concurrency_limit"] == 2
    assert qs["critical"]["description"] == "urgent"
    assert qs["bulk"]["priority"] == 2
    assert qs["default"]["priority"] == 3
    assert sorted(result["diff"]["after"]["queues"]) == ["bulk", "critical", "default"]

    assert run_module("work_pool", args)["changed"] is False

    # an extra queue made by someone else stays without purge_queues
    prefect_api.post("/work_pools/%s/queues" % name, {"name": "stray"})
    assert run_module("work_pool", args)["changed"] is False
    assert "stray" in queues(prefect_api, name)

    # change a queue's limit, check mode first
    args["queues"][0]["concurrency_limit"] = 5
    result = run_module("work_pool", args, check=True, diff=True)
    assert result["changed"] is True
    assert result["diff"]["before"]["queues"]["critical"]["concurrency_limit"] == 2
    assert result["diff"]["after"]["queues"]["critical"]["concurrency_limit"] == 5
    assert queues(prefect_api, name)["critical"]["concurrency_limit"] == 2
    assert run_module("work_pool", args)["changed"] is True
    assert queues(prefect_api, name)["critical"]["concurrency_limit"] == 5

    # purge: check mode keeps, real run removes the stray queue but never default
    purge = dict(args, purge_queues=True)
    result = run_module("work_pool", purge, check=True, diff=True)
    assert result["changed"] is True
    assert "stray" not in result["diff"]["after"]["queues"]
    assert "stray" in queues(prefect_api, name)
    assert run_module("work_pool", purge)["changed"] is True
    assert sorted(queues(prefect_api, name)) == ["bulk", "critical", "default"]
    assert run_module("work_pool", purge)["changed"] is False


def test_bad_queue_input_is_refused(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    result = run_module("work_pool", {"name": name, "type": "process",
                                      "queues": [{"name": "a", "priority": 1}, {"name": "b", "priority": 1}]})
    assert result["failed"] is True
    assert "unique" in result["msg"]
    assert pool(prefect_api, name) is None


def test_unknown_type_is_refused_with_the_known_ones(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    before = count_pools(prefect_api)
    result = run_module("work_pool", {"name": name, "type": "dokcer"})
    assert result["failed"] is True
    assert "Unknown work pool type 'dokcer'" in result["msg"]
    assert "docker" in result["known_types"] and "process" in result["known_types"]
    assert count_pools(prefect_api) == before


def test_type_change_is_refused(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    assert run_module("work_pool", {"name": name, "type": "process"})["changed"] is True
    result = run_module("work_pool", {"name": name, "type": "docker"})
    assert result["failed"] is True
    assert "cannot be changed" in result["msg"] and "state: absent" in result["msg"]
    assert pool(prefect_api, name)["type"] == "process"


def test_type_required_to_create(prefect_api, run_module, unique_name):
    name = unique_name("pool")
    result = run_module("work_pool", {"name": name})
    assert result["failed"] is True
    assert "type is required" in result["msg"]


@pytest.mark.parametrize("check", [False, True])
def test_reserved_name_is_refused_with_the_servers_message(prefect_api, run_module, check):
    before = count_pools(prefect_api)
    result = run_module("work_pool", {"name": "prefect-foo", "type": "process"}, check=check)
    assert result["failed"] is True
    assert "reserved for internal use" in result["msg"]
    if not check:
        assert result["status"] == 403
        assert "POST" in result["msg"] and "/work_pools/" in result["msg"]
    assert count_pools(prefect_api) == before
    assert pool(prefect_api, "prefect-foo") is None


def test_wrong_credentials(prefect_api, run_module, unique_name, prefect_server, assert_no_secret):
    name = unique_name("pool")
    result = run_module("work_pool", {"name": name, "type": "process", "api_auth_string": "admin:wrong-password"})
    assert result["failed"] is True
    assert result["status"] == 401
    assert "HTTP 401" in result["msg"] and "api_auth_string" in result["msg"]
    assert_no_secret(result, "wrong-password", prefect_server.auth_string)
    assert pool(prefect_api, name) is None


def test_credentials_from_environment(prefect_api, run_module, unique_name, prefect_server, assert_no_secret):
    name = unique_name("pool")
    result = run_module("work_pool", {"name": name, "type": "process"}, connect=False, env={
        "PREFECT_API_URL": prefect_server.api_url, "PREFECT_API_AUTH_STRING": prefect_server.auth_string})
    assert result["changed"] is True, result
    assert pool(prefect_api, name) is not None
    assert_no_secret(result, prefect_server.auth_string)


def test_unreachable_server_fails_in_bounded_time(run_module, unique_name, unreachable_api_url):
    result = run_module("work_pool", {
        "name": unique_name("pool"), "type": "process", "api_url": unreachable_api_url,
        "retries": 3, "retry_timeout": 10,
    })
    assert result["failed"] is True
    assert "Could not reach the Prefect API" in result["msg"]
    assert unreachable_api_url in result["msg"]
    assert "after 4 attempts" in result["msg"]
    assert result["_elapsed"] < 30
