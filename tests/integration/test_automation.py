# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.automation against a real Prefect server; state is checked over the API.

``test_zombie_run_is_crashed_end_to_end`` shows the documented automation at work in the
test server: a Running flow run sends heartbeats, stops, and the server's triggers service
marks it Crashed.
"""

from __future__ import annotations

import copy
import time
import uuid
from datetime import datetime, timezone

ZOMBIE_TRIGGER = {
    "type": "event",
    "posture": "Proactive",
    "after": ["prefect.flow-run.heartbeat"],
    "expect": ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
               "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"],
    "match": {"prefect.resource.id": ["prefect.flow-run.*"]},
    "for_each": ["prefect.resource.id"],
    "threshold": 1,
    "within": 90,
}
ZOMBIE_MESSAGE = "Flow run marked as crashed due to missing heartbeats."
ZOMBIE_ACTIONS = [{"type": "change-flow-run-state", "state": "CRASHED", "message": ZOMBIE_MESSAGE}]
NEVER = "selfhosted.test.never-emitted"


def find(api, name):
    return [a for a in api.post_paginated("/automations/filter", {"automations": {"name": {"any_": [name]}}})
            if a["name"] == name]


def only(api, name):
    found = find(api, name)
    assert len(found) <= 1, found
    return found[0] if found else None


def test_zombie_automation_life_cycle(prefect_api, run_module, unique_name, assert_no_secret, prefect_server):
    name = unique_name("zombie")
    args = {"name": name, "trigger": ZOMBIE_TRIGGER, "actions": ZOMBIE_ACTIONS}

    # check mode on a missing automation: predicts, writes nothing
    result = run_module("automation", args, check=True, diff=True)
    assert result["changed"] is True, result
    assert result["diff"]["after"]["trigger"]["within"] == 90.0
    assert only(prefect_api, name) is None

    result = run_module("automation", args, diff=True)
    assert result["changed"] is True, result
    stored = only(prefect_api, name)
    assert result["automation"]["id"] == stored["id"]
    assert_no_secret(result, prefect_server.auth_string)
    # what the server made of it: defaults filled in, within in seconds, the sets in its own order
    trigger = stored["trigger"]
    assert trigger["within"] == 90.0 and trigger["match_related"] == {} and trigger["id"]
    assert sorted(trigger["expect"]) == sorted(ZOMBIE_TRIGGER["expect"])
    assert stored["actions"] == [{"type": "change-flow-run-state", "name": None, "state": "CRASHED",
                                  "message": ZOMBIE_MESSAGE, "force": False}]
    assert stored["enabled"] is True

    # the same again: no change, nothing written (the server's `updated` stays)
    result = run_module("automation", args, diff=True)
    assert result["changed"] is False, result
    assert result["diff"]["before"] == result["diff"]["after"]
    assert only(prefect_api, name)["updated"] == stored["updated"]
    # the event lists in another order, within as an ISO 8601 duration: the same automation
    reordered = copy.deepcopy(args)
    reordered["trigger"]["expect"] = list(reversed(ZOMBIE_TRIGGER["expect"]))
    reordered["trigger"]["within"] = "PT1M30S"
    assert run_module("automation", reordered)["changed"] is False

    # check mode on a change: predicted, not written
    longer = copy.deepcopy(args)
    longer["trigger"]["within"] = 120
    result = run_module("automation", longer, check=True, diff=True)
    assert result["changed"] is True and result["changed_fields"] == ["trigger"]
    assert (result["diff"]["before"]["trigger"]["within"], result["diff"]["after"]["trigger"]["within"]) == (90.0, 120.0)
    assert only(prefect_api, name)["trigger"]["within"] == 90.0

    result = run_module("automation", longer, diff=True)
    assert result["changed"] is True
    stored = only(prefect_api, name)
    assert stored["trigger"]["within"] == 120.0 and stored["id"] == result["automation"]["id"]
    assert result["automation"]["trigger"]["within"] == 120.0
    assert run_module("automation", longer)["changed"] is False

    # disabled: only `enabled` changes (the trigger keeps its ID)
    disabled = dict(longer, enabled=False)
    result = run_module("automation", disabled, diff=True)
    assert result["changed"] is True and result["changed_fields"] == ["enabled"]
    after = only(prefect_api, name)
    assert after["enabled"] is False and after["trigger"]["id"] == stored["trigger"]["id"]
    assert run_module("automation", disabled)["changed"] is False
    assert run_module("automation", longer)["changed"] is True
    assert only(prefect_api, name)["enabled"] is True

    # a key removed from the task goes back to Prefect's default
    no_message = dict(longer, actions=[{"type": "change-flow-run-state", "state": "CRASHED"}])
    result = run_module("automation", no_message)
    assert result["changed"] is True and result["changed_fields"] == ["actions"]
    assert only(prefect_api, name)["actions"][0]["message"] is None
    assert run_module("automation", no_message)["changed"] is False

    absent = {"name": name, "state": "absent"}
    result = run_module("automation", absent, check=True, diff=True)
    assert result["changed"] is True and result["diff"]["after"] == {}
    assert only(prefect_api, name) is not None
    result = run_module("automation", absent)
    assert result["changed"] is True and result["automation"] == {}
    assert only(prefect_api, name) is None
    assert run_module("automation", absent)["changed"] is False


def test_other_triggers_and_actions_are_idempotent(prefect_api, run_module, unique_name):
    """A compound trigger and actions of several types, given with as few keys as the server
    takes: the second run finds nothing to change."""
    name = unique_name("many")
    block_id = str(uuid.uuid4())
    args = {
        "name": name,
        "description": "never fires",
        "enabled": False,
        "tags": ["test", "ansible"],
        "trigger": {
            "type": "compound", "require": "any", "within": "PT1M",
            "triggers": [
                {"posture": "Reactive", "expect": [NEVER + ".a"], "threshold": "2", "within": 30},
                {"type": "event", "posture": "Reactive", "expect": [NEVER + ".b"],
                 "match": {"prefect.resource.id": "selfhosted.test.*"}},
            ],
        },
        "actions": [
            {"type": "do-nothing"},
            {"type": "run-deployment", "deployment_id": str(uuid.uuid4()).upper(), "parameters": {"full": False}},
            {"type": "send-notification", "block_document_id": block_id, "body": "it happened"},
            {"type": "call-webhook", "block_document_id": block_id},
            {"type": "pause-work-pool", "source": "inferred"},
        ],
        "actions_on_trigger": [{"type": "do-nothing"}],
    }
    try:
        result = run_module("automation", args)
        assert result["changed"] is True, result
        stored = only(prefect_api, name)
        assert stored["trigger"]["within"] == 60.0 and stored["trigger"]["triggers"][0]["threshold"] == 2
        assert stored["actions"][2]["subject"] == "Prefect automated notification"
        assert stored["actions"][1]["source"] == "selected"
        assert sorted(stored["tags"]) == ["ansible", "test"]

        result = run_module("automation", args)
        assert result["changed"] is False, result
        # not given: actions_on_trigger and the others are kept
        rest = dict((k, v) for k, v in args.items() if k not in ("actions_on_trigger", "tags", "description"))
        assert run_module("automation", rest)["changed"] is False
        # a nested trigger's field
        changed = copy.deepcopy(args)
        changed["trigger"]["triggers"][1]["match"] = {"prefect.resource.id": "selfhosted.other.*"}
        result = run_module("automation", changed)
        assert result["changed"] is True and result["changed_fields"] == ["trigger"]
        assert only(prefect_api, name)["trigger"]["triggers"][1]["match"] == {"prefect.resource.id": "selfhosted.other.*"}
        assert run_module("automation", changed)["changed"] is False
        # actions_on_trigger: [] removes them
        result = run_module("automation", dict(changed, actions_on_trigger=[]))
        assert result["changed"] is True and only(prefect_api, name)["actions_on_trigger"] == []
    finally:
        run_module("automation", {"name": name, "state": "absent"})


def test_bad_input_shows_the_servers_message(prefect_api, run_module, unique_name, unreachable_api_url):
    name = unique_name("bad")
    cases = [
        (dict(ZOMBIE_TRIGGER, type="metric"), ZOMBIE_ACTIONS,
         "trigger: unknown type 'metric'; this server knows: compound, event, sequence"),
        (ZOMBIE_TRIGGER, [{"type": "emit-event"}],
         "actions[0]: unknown type 'emit-event'; this server knows: call-webhook, cancel-flow-run,"
         " change-flow-run-state,"),
        (dict(ZOMBIE_TRIGGER, within=5), [{"type": "change-flow-run-state", "state": "NOPE"}],
         "trigger: Value error, `within` for Proactive triggers must be greater than or equal to 10 seconds;"
         " actions[0].state: Input should be 'SCHEDULED',"),
    ]
    for trigger, actions, message in cases:
        result = run_module("automation", {"name": name, "trigger": trigger, "actions": actions})
        assert result["failed"] is True and result["status"] == 422, result
        assert result["msg"].startswith("Prefect refused automation %r (HTTP 422): %s" % (name, message)), result["msg"]
        assert "function-after" not in result["msg"] and "DoNothing" not in result["msg"]
    # refused before any request (nothing listens there)
    for args, message in (
            ({"trigger": dict(ZOMBIE_TRIGGER, within="soon"), "actions": ZOMBIE_ACTIONS}, "trigger.within: 'soon'"),
            ({"trigger": ZOMBIE_TRIGGER, "actions": [{"state": "CRASHED"}]}, "actions[0]: type is required"),
            ({"actions": ZOMBIE_ACTIONS}, "trigger is required"),
    ):
        result = run_module("automation", dict(args, name=name, api_url=unreachable_api_url))
        assert result["failed"] is True and message in result["msg"], result
    assert only(prefect_api, name) is None


def test_two_automations_of_one_name_are_refused(prefect_api, run_module, unique_name):
    name = unique_name("twin")
    body = {"name": name, "enabled": False, "trigger": {"posture": "Reactive", "expect": [NEVER]}, "actions": []}
    ids = sorted(prefect_api.post("/automations/", body)["id"] for copy_number in range(2))
    try:
        for state in ("present", "absent"):
            result = run_module("automation", {"name": name, "state": state, "enabled": False,
                                               "trigger": body["trigger"], "actions": []})
            assert result["failed"] is True, result
            assert "2 automations named %r" % name in result["msg"] and result["automation_ids"] == ids
        assert len(find(prefect_api, name)) == 2
    finally:
        for automation_id in ids:
            prefect_api.delete_if_exists("/automations/%s" % automation_id)


def _heartbeat(api, run):
    api.post("/events", [{
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(timezone.utc).isoformat(),
        "event": "prefect.flow-run.heartbeat",
        "resource": {"prefect.resource.id": "prefect.flow-run.%s" % run["id"], "prefect.resource.name": run["name"]},
        "related": [],
        "payload": {},
    }])


def test_zombie_run_is_crashed_end_to_end(prefect_api, run_module, unique_name):
    """The documented automation (within: 10, the least Prefect takes) created by the module
    marks a Running flow run Crashed once its heartbeats stop."""
    name = unique_name("zombie-e2e")
    trigger = dict(ZOMBIE_TRIGGER, within=10)
    try:
        assert run_module("automation", {"name": name, "trigger": trigger, "actions": ZOMBIE_ACTIONS})["changed"]
        flow = prefect_api.post("/flows/", {"name": unique_name("zombie-flow")})
        run = prefect_api.post("/flow_runs/", {"flow_id": flow["id"], "name": unique_name("zombie-run")})
        answer = prefect_api.post("/flow_runs/%s/set_state" % run["id"], {"state": {"type": "RUNNING"}})
        assert answer["status"] == "ACCEPT", answer

        start = time.monotonic()
        for beat in range(3):  # a live run beats every 2 s; then its process dies
            if beat:
                time.sleep(2)
            _heartbeat(prefect_api, run)
            last_beat = time.monotonic()
        state = None
        while time.monotonic() - last_beat < 90:
            state = prefect_api.get("/flow_runs/%s" % run["id"])["state"]
            if state["type"] != "RUNNING":
                break
            time.sleep(0.5)
        crashed_after = time.monotonic() - last_beat
        print("zombie e2e: heartbeats for %.1f s, Crashed %.1f s after the last one (within: 10)"
              % (last_beat - start, crashed_after))
        assert state["type"] == "CRASHED", state
        assert state["message"] == ZOMBIE_MESSAGE
        # not before `within` ran out (the server's proactive evaluation runs every 5 s)
        assert crashed_after >= 9
    finally:
        run_module("automation", {"name": name, "state": "absent"})


def test_beating_runs_are_left_alone(prefect_api, run_module, unique_name):
    """A run that keeps sending heartbeats stays Running past `within`."""
    name = unique_name("zombie-alive")
    trigger = dict(ZOMBIE_TRIGGER, within=10)
    try:
        run_module("automation", {"name": name, "trigger": trigger, "actions": ZOMBIE_ACTIONS})
        flow = prefect_api.post("/flows/", {"name": unique_name("alive-flow")})
        run = prefect_api.post("/flow_runs/", {"flow_id": flow["id"], "name": unique_name("alive-run")})
        prefect_api.post("/flow_runs/%s/set_state" % run["id"], {"state": {"type": "RUNNING"}})
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            _heartbeat(prefect_api, run)
            time.sleep(3)
            assert prefect_api.get("/flow_runs/%s" % run["id"])["state"]["type"] == "RUNNING"
        prefect_api.post("/flow_runs/%s/set_state" % run["id"], {"state": {"type": "COMPLETED"}})
    finally:
        run_module("automation", {"name": name, "state": "absent"})
