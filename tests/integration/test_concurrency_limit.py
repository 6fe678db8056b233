# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.concurrency_limit against a real Prefect server; state is checked over the API."""

from __future__ import annotations


def read(api, name):
    return api.get_or_none("/v2/concurrency_limits/%s" % name)


def test_life_cycle(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    name = unique_name("gcl")
    args = {"name": name, "limit": 3}

    # check mode on a missing limit: predicts, writes nothing
    result = run_module("concurrency_limit", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert result["diff"]["after"] == {"name": name, "limit": 3, "active": True, "slot_decay_per_second": 0.0}
    assert read(prefect_api, name) is None

    result = run_module("concurrency_limit", args, diff=True)
    assert result["changed"] is True, result
    stored = read(prefect_api, name)
    assert (stored["limit"], stored["active"], stored["slot_decay_per_second"]) == (3, True, 0.0)
    assert result["concurrency_limit"]["id"] == stored["id"]
    assert_no_secret(result, prefect_server.auth_string)

    result = run_module("concurrency_limit", args, diff=True)
    assert result["changed"] is False, result
    assert result["diff"]["before"] == result["diff"]["after"]

    # a flow holds a slot: changing the limit leaves it held
    prefect_api.post("/v2/concurrency_limits/increment", {"names": [name], "slots": 1, "mode": "concurrency"})
    assert read(prefect_api, name)["active_slots"] == 1

    changed = dict(args, limit=5)
    result = run_module("concurrency_limit", changed, check=True, diff=True)
    assert result["changed"] is True
    assert (result["diff"]["before"]["limit"], result["diff"]["after"]["limit"]) == (3, 5)
    assert read(prefect_api, name)["limit"] == 3

    result = run_module("concurrency_limit", changed, diff=True)
    assert result["changed"] is True
    stored = read(prefect_api, name)
    assert stored["limit"] == 5 and stored["active_slots"] == 1
    assert result["concurrency_limit"]["limit"] == 5 and result["concurrency_limit"]["active_slots"] == 1
    assert run_module("concurrency_limit", changed)["changed"] is False

    # a rate limit
    rate = dict(changed, slot_decay_per_second=2.5)
    assert run_module("concurrency_limit", rate)["changed"] is True
    assert read(prefect_api, name)["slot_decay_per_second"] == 2.5
    assert run_module("concurrency_limit", rate)["changed"] is False

    # deactivated, then the defaults again
    off = dict(rate, active=False)
    result = run_module("concurrency_limit", off, diff=True)
    assert result["changed"] is True and result["diff"]["after"]["active"] is False
    assert read(prefect_api, name)["active"] is False
    assert run_module("concurrency_limit", off)["changed"] is False
    assert run_module("concurrency_limit", changed)["changed"] is True
    stored = read(prefect_api, name)
    assert (stored["active"], stored["slot_decay_per_second"]) == (True, 0.0)

    result = run_module("concurrency_limit", {"name": name, "state": "absent"}, check=True)
    assert result["changed"] is True and read(prefect_api, name) is not None
    result = run_module("concurrency_limit", {"name": name, "state": "absent"}, diff=True)
    assert result["changed"] is True and result["diff"]["before"]["limit"] == 5
    assert read(prefect_api, name) is None
    assert run_module("concurrency_limit", {"name": name, "state": "absent"})["changed"] is False


def test_zero_is_a_limit(prefect_api, run_module, unique_name):
    name = unique_name("gcl")
    assert run_module("concurrency_limit", {"name": name, "limit": 0})["changed"] is True
    assert read(prefect_api, name)["limit"] == 0
    assert run_module("concurrency_limit", {"name": name, "limit": 0})["changed"] is False
    run_module("concurrency_limit", {"name": name, "state": "absent"})


def test_bad_input_is_refused_before_any_request(prefect_api, run_module, unique_name, unreachable_api_url):
    name = unique_name("gcl")
    for args, message in (
            ({"limit": -1}, "limit must be 0 or more, got -1"),
            ({}, "limit is required"),
            ({"limit": 1, "slot_decay_per_second": -1}, "slot_decay_per_second must be 0 or more"),
    ):
        # against the real server: nothing is created
        result = run_module("concurrency_limit", dict(args, name=name))
        assert result["failed"] is True and message in result["msg"], result
        # against an address where nothing listens: the input is refused, not the connection
        result = run_module("concurrency_limit", dict(args, name=name, api_url=unreachable_api_url))
        assert result["failed"] is True and message in result["msg"], result
    assert read(prefect_api, name) is None

    result = run_module("concurrency_limit", {"name": "a/b", "limit": 1, "api_url": unreachable_api_url})
    assert result["failed"] is True and "character the server refuses" in result["msg"]
