# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The automation module: normalizing and comparing triggers and actions, reading the
server's validation errors, and AutomationManager against an in-memory stand-in of the API."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    extract_detail,
)
from ansible_collections.selfhosted.prefect.plugins.modules import automation
from ansible_collections.selfhosted.prefect.plugins.module_utils.automation import (
    AutomationManager,
    SpecError,
    actions_match,
    condense_validation_error,
    duration_seconds,
    normalize_actions,
    normalize_action,
    normalize_trigger,
    trigger_matches,
)

# Prefect's documented "zombie flow runs" automation, as a task gives it ...
ZOMBIE_TRIGGER = {
    "type": "event", "posture": "Proactive", "after": ["prefect.flow-run.heartbeat"],
    "expect": ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
               "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"],
    "match": {"prefect.resource.id": ["prefect.flow-run.*"]}, "for_each": ["prefect.resource.id"],
    "threshold": 1, "within": 90,
}
ZOMBIE_ACTIONS = [{"type": "change-flow-run-state", "state": "CRASHED",
                   "message": "Flow run marked as crashed due to missing heartbeats."}]
# ... and as Prefect 3.9.1 answered POST /automations/ with it (the set `expect` reordered).
ZOMBIE_STORED = {
    "name": "zombie", "description": "", "enabled": True, "tags": [],
    "trigger": {
        "type": "event", "id": "b580f773-0ce1-4d44-b0a0-902591267396",
        "match": {"prefect.resource.id": ["prefect.flow-run.*"]}, "match_related": {},
        "after": ["prefect.flow-run.heartbeat"],
        "expect": ["prefect.flow-run.Cancelled", "prefect.flow-run.Crashed", "prefect.flow-run.Failed",
                   "prefect.flow-run.heartbeat", "prefect.flow-run.Completed"],
        "for_each": ["prefect.resource.id"], "posture": "Proactive", "threshold": 1, "within": 90.0},
    "actions": [{"type": "change-flow-run-state", "name": None, "state": "CRASHED",
                 "message": "Flow run marked as crashed due to missing heartbeats.", "force": False}],
    "actions_on_trigger": [], "actions_on_resolve": [],
    "id": "3cecbb50-090c-4235-8a3a-3130cdbe5a03",
    "created": "2026-12-01T11:22:50.339349Z", "updated": "2026-12-01T11:22:50.339386Z",
}


# -- durations -------------------------------------------------------------------------
@pytest.mark.parametrize("value, seconds", [
    (90, 90.0), (90.5, 90.5), ("90", 90.0), (" 10 ", 10.0), ("PT90S", 90.0), ("PT1M30S", 90.0),
    ("pt2m", 120.0), ("P1DT1H", 90000.0), ("P1W", 604800.0), ("PT0.5S", 0.5), (None, None),
])
def test_duration_seconds(value, seconds):
    assert duration_seconds(value, "trigger.within") == seconds


@pytest.mark.parametrize("value", ["soon", "P", "PT", "P1DT", "1:30", True, [90]])
def test_duration_seconds_refuses(value):
    with pytest.raises(SpecError, match="trigger.within"):
        duration_seconds(value, "trigger.within")


# -- normalizing -----------------------------------------------------------------------
def test_normalize_trigger_fills_the_servers_defaults():
    assert normalize_trigger({"posture": "Reactive", "expect": ["b", "a", "b"], "id": "x"}) == {
        "type": "event", "posture": "Reactive", "expect": ["a", "b"], "after": [], "for_each": [],
        "match": {}, "match_related": {}, "threshold": 1, "within": 0.0}


@pytest.mark.parametrize("within, expected", [(None, 10.0), (0, 10.0), ("0", 10.0), (30, 30.0)])
def test_proactive_within_is_at_least_the_servers_minimum(within, expected):
    trigger = {"posture": "Proactive"}
    if within is not None:
        trigger["within"] = within
    assert normalize_trigger(trigger)["within"] == expected


def test_normalize_trigger_templated_numbers_and_nesting():
    trigger = {"require": "2", "within": "PT1M", "triggers": [
        {"posture": "Reactive", "expect": ["x"], "threshold": "3"},
        {"type": "sequence", "within": None, "triggers": [{"posture": "Proactive", "within": "20"}]}]}
    result = normalize_trigger(trigger)
    assert result["type"] == "compound" and result["require"] == 2 and result["within"] == 60.0
    assert result["triggers"][0]["threshold"] == 3 and result["triggers"][0]["type"] == "event"
    assert result["triggers"][1]["within"] is None
    assert result["triggers"][1]["triggers"][0]["within"] == 20.0
    assert trigger["within"] == "PT1M"  # the input is left alone


def test_normalize_trigger_keeps_ids_when_asked():
    assert normalize_trigger(ZOMBIE_STORED["trigger"], keep_ids=True)["id"] == ZOMBIE_STORED["trigger"]["id"]
    assert "id" not in normalize_trigger(ZOMBIE_STORED["trigger"])


def test_normalize_trigger_paths_in_errors():
    with pytest.raises(SpecError, match=r"trigger.triggers\[1\].within"):
        normalize_trigger({"type": "compound", "require": "any", "within": 0,
                           "triggers": [{"posture": "Reactive"}, {"posture": "Reactive", "within": "later"}]})
    with pytest.raises(SpecError, match="a dict is expected"):
        normalize_trigger(["event"])


def test_normalize_action_defaults_and_ids():
    action = normalize_action({"type": "run-deployment", "deployment_id": "3CECBB50-090C-4235-8A3A-3130CDBE5A03",
                               "schedule_after": "PT5M"})
    assert action == {"type": "run-deployment", "source": "selected",
                      "deployment_id": "3cecbb50-090c-4235-8a3a-3130cdbe5a03", "parameters": None,
                      "job_variables": None, "schedule_after": 300.0}
    later = {"type": "a-type-of-a-later-prefect", "x": 1}
    assert normalize_action(later) == later


def test_normalize_action_needs_a_type():
    with pytest.raises(SpecError, match=r"actions\[2\]: type is required"):
        normalize_actions([{"type": "do-nothing"}, {"type": "do-nothing"}, {"state": "CRASHED"}], "actions")


# -- comparing -------------------------------------------------------------------------
def test_the_servers_copy_of_the_zombie_automation_matches_the_task():
    assert trigger_matches(normalize_trigger(ZOMBIE_TRIGGER), ZOMBIE_STORED["trigger"])
    wanted = [normalize_action(a) for a in ZOMBIE_ACTIONS]
    assert actions_match(wanted, ZOMBIE_STORED["actions"])


@pytest.mark.parametrize("change", [
    {"within": 120}, {"threshold": 2}, {"posture": "Reactive"},
    {"expect": ["prefect.flow-run.heartbeat"]}, {"match": {"prefect.resource.id": "prefect.flow-run.*"}},
    {"match_related": {"prefect.resource.role": "flow"}},
])
def test_a_changed_trigger_field_is_a_change(change):
    assert not trigger_matches(normalize_trigger(dict(ZOMBIE_TRIGGER, **change)), ZOMBIE_STORED["trigger"])


def test_a_key_left_out_goes_back_to_its_default():
    # for_each left out: the server's ["prefect.resource.id"] is not the default []
    trigger = dict(ZOMBIE_TRIGGER)
    del trigger["for_each"]
    assert not trigger_matches(normalize_trigger(trigger), ZOMBIE_STORED["trigger"])
    # message left out: the server's message is not the default None
    assert not actions_match([normalize_action({"type": "change-flow-run-state", "state": "CRASHED"})],
                             ZOMBIE_STORED["actions"])
    # threshold left out: 1 is the default
    trigger = dict(ZOMBIE_TRIGGER)
    del trigger["threshold"]
    assert trigger_matches(normalize_trigger(trigger), ZOMBIE_STORED["trigger"])


def test_keys_the_module_does_not_know_are_not_compared():
    stored = copy.deepcopy(ZOMBIE_STORED)
    stored["trigger"]["a_later_field"] = {"x": 1}
    stored["actions"][0]["another_later_field"] = "y"
    assert trigger_matches(normalize_trigger(ZOMBIE_TRIGGER), stored["trigger"])
    assert actions_match([normalize_action(a) for a in ZOMBIE_ACTIONS], stored["actions"])


def test_actions_compare_in_order_and_length():
    one, two = normalize_action({"type": "cancel-flow-run"}), normalize_action({"type": "suspend-flow-run"})
    assert actions_match([one, two], [{"type": "cancel-flow-run"}, {"type": "suspend-flow-run"}])
    assert not actions_match([one, two], [{"type": "suspend-flow-run"}, {"type": "cancel-flow-run"}])
    assert not actions_match([one], [{"type": "cancel-flow-run"}, {"type": "suspend-flow-run"}])
    assert not actions_match([one], None)


def test_nested_triggers_are_compared_one_by_one():
    stored = {"type": "compound", "id": "t", "require": "any", "within": 0.0, "triggers": [
        {"type": "event", "id": "a", "match": {}, "match_related": {}, "after": [], "expect": ["a.b"], "for_each": [],
         "posture": "Reactive", "threshold": 1, "within": 0.0}]}
    wanted = {"type": "compound", "require": "any", "within": 0, "triggers": [{"posture": "Reactive", "expect": ["a.b"]}]}
    assert trigger_matches(normalize_trigger(wanted), stored)
    wanted["triggers"][0]["expect"] = ["a.c"]
    assert not trigger_matches(normalize_trigger(wanted), stored)
    wanted["triggers"].append({"posture": "Reactive"})
    assert not trigger_matches(normalize_trigger(wanted), stored)


# -- the server's validation errors ----------------------------------------------------
def _detail(errors):
    """The detail PrefectClient reports for a Prefect 422 answer holding these pydantic errors."""
    return extract_detail(json.dumps({"exception_message": "Invalid request received.", "exception_detail": [
        {"loc": loc.split("|"), "msg": msg, "type": "x"} for loc, msg in errors]}))


COMPOUND = "function-after[validate_require(), function-after[validate_require(), CompoundTrigger]]"
# What Prefect 3.9.1 answered (shortened: the action union has 17 members, three are kept).
UNKNOWN_ACTION = [
    ("body|actions|0|DoNothing|type", "Input should be 'do-nothing'"),
    ("body|actions|0|function-after[selected_deployment_requires_id(), RunDeployment]|type",
     "Input should be 'run-deployment'"),
    ("body|actions|0|ChangeFlowRunState|type", "Input should be 'change-flow-run-state'"),
    ("body|actions|0|ChangeFlowRunState|state", "Field required"),
]
MISSING_STATE_AND_SHORT_WITHIN = [
    ("body|trigger|EventTrigger", "Value error, `within` for Proactive triggers must be greater than or equal to"
                                  " 10 seconds"),
    ("body|trigger|%s|type" % COMPOUND, "Input should be 'compound'"),
    ("body|trigger|%s|triggers" % COMPOUND, "Field required"),
    ("body|trigger|SequenceTrigger|type", "Input should be 'sequence'"),
    ("body|actions|0|DoNothing|type", "Input should be 'do-nothing'"),
    ("body|actions|0|ChangeFlowRunState|state", "Field required"),
    ("body|actions|0|SendNotification|type", "Input should be 'send-notification'"),
    ("body|actions|0|SendNotification|body", "Field required"),
]
NESTED = [
    ("body|trigger|EventTrigger|type", "Input should be 'event'"),
    ("body|trigger|EventTrigger|posture", "Field required"),
    ("body|trigger|%s|triggers|0|EventTrigger|posture" % COMPOUND, "Field required"),
    ("body|trigger|%s|triggers|0|SequenceTrigger|type" % COMPOUND, "Input should be 'sequence'"),
    ("body|trigger|%s|within" % COMPOUND, "Field required"),
    ("body|trigger|SequenceTrigger|type", "Input should be 'sequence'"),
    ("body|trigger|SequenceTrigger|triggers|0|EventTrigger|posture", "Field required"),
]


def test_an_unknown_action_type_names_the_known_ones():
    body = {"trigger": {"type": "event"}, "actions": [{"type": "emit-event"}]}
    assert condense_validation_error(_detail(UNKNOWN_ACTION), body) == (
        "actions[0]: unknown type 'emit-event'; this server knows: change-flow-run-state, do-nothing, run-deployment")


def test_an_unknown_trigger_type():
    errors = [("body|trigger|EventTrigger|type", "Input should be 'event'"),
              ("body|trigger|%s|type" % COMPOUND, "Input should be 'compound'"),
              ("body|trigger|SequenceTrigger|type", "Input should be 'sequence'"),
              ("body|trigger|SequenceTrigger|within", "Field required")]
    assert condense_validation_error(_detail(errors), {"trigger": {"type": "metric"}}) == (
        "trigger: unknown type 'metric'; this server knows: compound, event, sequence")


def test_only_the_errors_of_the_given_types_are_kept():
    body = {"trigger": {"type": "event", "posture": "Proactive", "within": 5},
            "actions": [{"type": "change-flow-run-state"}]}
    assert condense_validation_error(_detail(MISSING_STATE_AND_SHORT_WITHIN), body) == (
        "trigger: Value error, `within` for Proactive triggers must be greater than or equal to 10 seconds;"
        " actions[0].state: Field required")


def test_nested_trigger_errors():
    body = {"trigger": {"type": "compound", "require": "all", "triggers": [{"type": "event"}]}}
    assert condense_validation_error(_detail(NESTED), body) == (
        "trigger.triggers[0].posture: Field required; trigger.within: Field required")


@pytest.mark.parametrize("detail", [None, "", "Error creating automation: the job variables do not fit",
                                    "body.name without a message"])
def test_other_details_are_left_to_the_caller(detail):
    assert condense_validation_error(detail, {}) is None


def test_a_message_holding_a_semicolon_stays_whole():
    assert condense_validation_error("body.name: String should match pattern x; or else", {}) == (
        "name: String should match pattern x; or else")


# -- the manager against a stand-in of the API -------------------------------------------
def stored_form(body, automation_id=None):
    """What Prefect 3.9 keeps of an automation body (written out here, not the module's code)."""
    stored = copy.deepcopy(body)
    trigger = stored["trigger"]
    trigger["id"] = str(uuid.uuid4())
    if trigger.get("type", "event") == "event":
        for key, default in (("match", {}), ("match_related", {}), ("after", []), ("expect", []),
                             ("for_each", []), ("threshold", 1), ("within", 0)):
            trigger.setdefault(key, default)
        for key in ("after", "expect", "for_each"):
            trigger[key] = list(reversed(sorted(set(trigger[key]))))  # sets come back in any order
        trigger["within"] = float(trigger["within"])
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        for action in stored.setdefault(key, []):
            if action["type"] == "change-flow-run-state":
                action.setdefault("name", None)
                action.setdefault("message", None)
                action.setdefault("force", False)
    stored.setdefault("description", "")
    stored.setdefault("tags", [])
    stored["id"] = automation_id or str(uuid.uuid4())
    stored["created"] = "2026-12-01T11:22:50.%06dZ" % len(stored["id"])
    return stored


class FakeAPI(object):
    """The automation endpoints of the API, in memory; `writes` records the changes asked."""

    def __init__(self, *automations):
        self.automations = dict((a["id"], copy.deepcopy(a)) for a in automations)
        self.writes = []
        self.refuse = None
        self.filter_requests = 0

    def post_paginated(self, path, body=None):
        assert path == "/automations/filter"
        self.filter_requests += 1
        names = body["automations"]["name"]["any_"]
        return [copy.deepcopy(a) for a in self.automations.values() if a["name"] in names]

    def request(self, method, path, data=None):
        self.writes.append((method, path, copy.deepcopy(data)))
        if self.refuse:
            raise self.refuse
        if method == "POST" and path == "/automations/":
            stored = stored_form(data)
            self.automations[stored["id"]] = stored
            return copy.deepcopy(stored)
        automation_id = path.rsplit("/", 1)[1]
        current = self.automations[automation_id]
        if method == "PUT":
            self.automations[automation_id] = stored_form(data, automation_id)
        elif method == "PATCH":
            current["enabled"] = data["enabled"]
        return None

    def get_or_none(self, path):
        return copy.deepcopy(self.automations.get(path.rsplit("/", 1)[1]))

    def delete_if_exists(self, path):
        self.writes.append(("DELETE", path, None))
        return self.automations.pop(path.rsplit("/", 1)[1], None) is not None


def run(capsys, api, check=False, diff=False, **args):
    args.setdefault("name", "zombie")
    if args.get("state", "present") == "present":
        args.setdefault("trigger", ZOMBIE_TRIGGER)
        args.setdefault("actions", ZOMBIE_ACTIONS)
    args.update(api_url="http://127.0.0.1:1/api", _ansible_check_mode=check, _ansible_diff=diff)
    with patch_module_args(args):
        module = AnsibleModule(argument_spec=automation.argument_spec(), supports_check_mode=True)
        with pytest.raises(SystemExit):
            run_module(module, AutomationManager, connect=lambda m: api)
    return json.loads(capsys.readouterr().out)


def test_create_then_nothing_to_do(capsys):
    api = FakeAPI()
    result = run(capsys, api, diff=True)
    assert result["changed"] is True
    assert [w[0] for w in api.writes] == ["POST"]
    sent = api.writes[0][2]
    assert sent["trigger"]["within"] == 90.0 and sent["enabled"] is True and "tags" not in sent
    assert result["automation"]["id"] in api.automations
    assert result["diff"]["before"] == {} and result["diff"]["after"]["trigger"]["within"] == 90.0

    api.writes = []
    result = run(capsys, api, diff=True)
    assert result["changed"] is False and api.writes == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_the_recorded_server_answer_needs_no_change(capsys):
    api = FakeAPI(ZOMBIE_STORED)
    assert run(capsys, api)["changed"] is False and api.writes == []


def test_check_mode_predicts_without_writing(capsys):
    api = FakeAPI()
    result = run(capsys, api, check=True, diff=True)
    assert result["changed"] is True and api.writes == [] and "id" not in result["automation"]
    api = FakeAPI(ZOMBIE_STORED)
    result = run(capsys, api, check=True, diff=True, trigger=dict(ZOMBIE_TRIGGER, within=120))
    assert result["changed"] is True and api.writes == []
    assert result["changed_fields"] == ["trigger"]
    assert result["diff"]["before"]["trigger"]["within"] == 90.0
    assert result["diff"]["after"]["trigger"]["within"] == 120.0
    assert "id" not in result["diff"]["after"]["trigger"]


def test_a_change_replaces_the_automation(capsys):
    api = FakeAPI(ZOMBIE_STORED)
    result = run(capsys, api, trigger=dict(ZOMBIE_TRIGGER, within="PT2M"), description="crash detection")
    assert result["changed"] is True and result["changed_fields"] == ["description", "trigger"]
    method, path, body = api.writes[0]
    assert (method, path) == ("PUT", "/automations/%s" % ZOMBIE_STORED["id"])
    # what was not given is kept: tags, and the actions on trigger/resolve
    assert body["tags"] == [] and body["actions_on_trigger"] == [] and body["actions_on_resolve"] == []
    assert body["description"] == "crash detection" and body["trigger"]["within"] == 120.0
    assert result["automation"]["trigger"]["within"] == 120.0
    api.writes = []
    assert run(capsys, api, trigger=dict(ZOMBIE_TRIGGER, within=120))["changed"] is False


def test_enabled_alone_is_patched(capsys):
    api = FakeAPI(ZOMBIE_STORED)
    result = run(capsys, api, enabled=False)
    assert result["changed"] is True and result["automation"]["enabled"] is False
    assert api.writes == [("PATCH", "/automations/%s" % ZOMBIE_STORED["id"], {"enabled": False})]
    api.writes = []
    assert run(capsys, api, enabled=False)["changed"] is False and api.writes == []


def test_tags_order_does_not_matter(capsys):
    api = FakeAPI()
    run(capsys, api, tags=["ops", "crash"])
    api.writes = []
    assert run(capsys, api, tags=["crash", "ops"])["changed"] is False
    assert run(capsys, api)["changed"] is False  # not given: kept


def test_two_automations_of_one_name_are_refused(capsys):
    twin = dict(copy.deepcopy(ZOMBIE_STORED), id="9cb62138-1ae2-4f01-86e8-565996f2569a")
    api = FakeAPI(ZOMBIE_STORED, twin)
    for state in ("present", "absent"):
        result = run(capsys, api, state=state)
        assert result["failed"] is True and "2 automations named 'zombie'" in result["msg"]
        assert result["automation_ids"] == sorted([ZOMBIE_STORED["id"], twin["id"]])
    assert api.writes == []


def test_a_twin_created_at_the_same_time_is_removed(capsys):
    api = FakeAPI()
    real_request = api.request

    def racing_request(method, path, data=None):
        if method == "POST":
            # another run creates the same automation just before this one
            older = stored_form(data, "00000000-0000-4000-8000-000000000000")
            older["created"] = "2026-01-01T00:00:00Z"
            api.automations[older["id"]] = older
        return real_request(method, path, data)

    api.request = racing_request
    result = run(capsys, api)
    assert list(api.automations) == ["00000000-0000-4000-8000-000000000000"]
    assert result["automation"]["id"] == "00000000-0000-4000-8000-000000000000"
    assert result["changed"] is True and "created at the same time" in json.dumps(result["warnings"])


def test_absent(capsys):
    api = FakeAPI(ZOMBIE_STORED)
    result = run(capsys, api, state="absent", check=True)
    assert result["changed"] is True and api.writes == []
    result = run(capsys, api, state="absent", diff=True)
    assert result["changed"] is True and result["automation"] == {} and api.automations == {}
    assert result["diff"]["before"]["name"] == "zombie" and result["diff"]["after"] == {}
    assert run(capsys, api, state="absent")["changed"] is False


@pytest.mark.parametrize("args, message", [
    ({"trigger": None}, "trigger is required"),
    ({"trigger": None, "actions": None}, "trigger and actions are required"),
    ({"trigger": dict(ZOMBIE_TRIGGER, within="later")}, "trigger.within: 'later' is not a duration"),
    ({"actions_on_resolve": [{"state": "CRASHED"}]}, r"actions_on_resolve[0]: type is required"),
    ({"name": " "}, "name must not be empty"),
])
def test_bad_input_is_refused_before_any_request(capsys, args, message):
    def connect(module):
        raise AssertionError("the server was asked")

    call = dict(name="zombie", trigger=ZOMBIE_TRIGGER, actions=ZOMBIE_ACTIONS, api_url="http://127.0.0.1:1/api")
    call.update(args)
    call = dict((k, v) for k, v in call.items() if v is not None)
    with patch_module_args(call):
        module = AnsibleModule(argument_spec=automation.argument_spec(), supports_check_mode=True)
        with pytest.raises(SystemExit):
            run_module(module, AutomationManager, connect=connect)
    result = json.loads(capsys.readouterr().out)
    assert result["failed"] is True and message in result["msg"]


def test_the_servers_refusal_is_condensed(capsys):
    api = FakeAPI()
    api.refuse = PrefectAPIError(method="POST", url="http://127.0.0.1:1/api/automations/", status=422,
                                 detail=_detail(UNKNOWN_ACTION))
    result = run(capsys, api, actions=[{"type": "emit-event"}])
    assert result["failed"] is True and result["status"] == 422
    assert result["msg"] == ("Prefect refused automation 'zombie' (HTTP 422): actions[0]: unknown type"
                             " 'emit-event'; this server knows: change-flow-run-state, do-nothing, run-deployment")
    assert "DoNothing" in result["detail"]  # the server's own words stay available


@pytest.mark.parametrize("state", ["present", "absent"])
def test_present_and_absent_take_what_the_caller_found(state):
    """Another module (deployment's crash_retries) reads the automation for its diff and hands it
    on: one filter request per task, not two."""
    api = FakeAPI(ZOMBIE_STORED)
    args = {"name": "zombie", "state": state, "api_url": "http://127.0.0.1:1/api"}
    if state == "present":
        args.update(trigger=dict(ZOMBIE_TRIGGER, within=120), actions=ZOMBIE_ACTIONS)
    with patch_module_args(args):
        module = AnsibleModule(argument_spec=automation.argument_spec(), supports_check_mode=True)
    manager = AutomationManager(module, api)
    current = manager.find()
    result = manager.present(current) if state == "present" else manager.absent(current)
    assert result["changed"] is True
    assert api.filter_requests == 1
    assert [w[0] for w in api.writes] == (["PUT"] if state == "present" else ["DELETE"])
