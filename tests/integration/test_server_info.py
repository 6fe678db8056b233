# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.server_info against a real Prefect server."""

from __future__ import annotations


def make_flow_runs(api, flow_name, states):
    flow = api.post("/flows/", {"name": flow_name})
    for state_type, state_name in states:
        api.post("/flow_runs/", {"flow_id": flow["id"], "state": {"type": state_type, "name": state_name}})
    return flow


def test_facts(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    pool = unique_name("pool")
    prefect_api.post("/work_pools/", {"name": pool, "type": "process"})
    prefect_api.post("/work_pools/%s/queues" % pool, {"name": "second"})
    variable = unique_name("var").replace("-", "_")
    prefect_api.post("/variables/", {"name": variable, "value": {"a": 1}, "tags": ["t"]})
    make_flow_runs(prefect_api, unique_name("flow"), [
        ("COMPLETED", "Completed"), ("COMPLETED", "Completed"), ("FAILED", "Failed"), ("CRASHED", "Crashed")])

    result = run_module("server_info", {"flow_runs_since": "1h"})
    assert result["changed"] is False, result
    assert result["server"]["version"] == "3.9.1"
    assert result["server"]["ready"] is True
    assert result["server"]["healthy"] is True
    assert result["server"]["api_url"] == prefect_server.api_url

    pools = {p["name"]: p for p in result["work_pools"]}
    assert pools[pool]["type"] == "process"
    assert [q["name"] for q in pools[pool]["queues"]] == ["default", "second"]

    variables = {v["name"]: v for v in result["variables"]}
    assert variables[variable] == {"name": variable, "value": {"a": 1}, "tags": ["t"]}
    assert isinstance(result["deployments"], list)

    runs = result["flow_runs"]
    assert runs["by_state_type"]["COMPLETED"] >= 2
    assert runs["by_state_type"]["FAILED"] >= 1
    assert runs["by_state_name"]["Crashed"] >= 1
    assert runs["total"] == sum(runs["by_state_type"].values()) == len(runs["runs"])
    assert runs["truncated"] is False
    assert_no_secret(result, prefect_server.auth_string)


def test_limit_and_sections(prefect_api, run_module, unique_name):
    make_flow_runs(prefect_api, unique_name("flow"), [("COMPLETED", "Completed")] * 3)
    result = run_module("server_info", {"gather": ["flow_runs"], "flow_runs_limit": 2}, check=True)
    assert result["changed"] is False
    assert "work_pools" not in result and "variables" not in result and "deployments" not in result
    assert "server" in result
    assert result["flow_runs"]["total"] == 2
    assert result["flow_runs"]["truncated"] is True


def test_bad_since_is_refused(run_module):
    result = run_module("server_info", {"flow_runs_since": "yesterday"})
    assert result["failed"] is True
    assert "flow_runs_since" in result["msg"]


def test_wrong_credentials(run_module, assert_no_secret):
    result = run_module("server_info", {"api_auth_string": "admin:bad-one"})
    assert result["failed"] is True
    assert result["status"] == 401
    assert "/admin/version" in result["msg"]
    assert_no_secret(result, "bad-one")


def test_unreachable_server(run_module, unreachable_api_url):
    result = run_module("server_info", {"api_url": unreachable_api_url, "retries": 1, "retry_timeout": 5})
    assert result["failed"] is True
    assert "Could not reach the Prefect API" in result["msg"]
    assert result["_elapsed"] < 30


def test_old_names_redirect_with_a_deprecation(run_module):
    """`info` and `block` were renamed before 0.1.0; meta/runtime.yml redirects them."""
    result = run_module("info", {"gather": ["server"]}, env={"ANSIBLE_DEPRECATION_WARNINGS": "1"})
    assert not result["failed"], result
    assert result["server"]["ready"] is True
    assert "selfhosted.prefect.server_info" in result["_stdout"] + result["_stderr"]
    old_block = run_module("block", {"block_type": "secret", "name": "never-made", "state": "absent"},
                           env={"ANSIBLE_DEPRECATION_WARNINGS": "1"})
    assert not old_block["failed"], old_block
    assert old_block["changed"] is False
    assert "selfhosted.prefect.block_document" in old_block["_stdout"] + old_block["_stderr"]
