# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The concurrency_limit module: input checks, comparison, and ConcurrencyLimitManager against an
in-memory stand-in of /api/v2/concurrency_limits/."""

from __future__ import annotations

import copy
import json
import uuid

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import PrefectAPIError
from ansible_collections.selfhosted.prefect.plugins.modules import concurrency_limit
from ansible_collections.selfhosted.prefect.plugins.modules.concurrency_limit import (
    ConcurrencyLimitManager,
    changes,
    describe,
    desired,
    validate,
)

# What Prefect 3.9.1 answers GET /api/v2/concurrency_limits/<name> with.
STORED = {"id": "e30c476c-0728-4805-822b-25c6b981fa90", "created": "2026-12-01T11:27:45.696706Z",
          "updated": "2026-12-01T11:27:45.696742Z", "active": True, "name": "warehouse", "limit": 3,
          "active_slots": 1, "slot_decay_per_second": 0.0}


def params(**kw):
    base = dict(name="warehouse", state="present", limit=3, active=True, slot_decay_per_second=0.0)
    base.update(kw)
    return base


# -- input -----------------------------------------------------------------------------
def test_good_input_passes():
    assert validate(params()) == []
    assert validate(params(limit=0, slot_decay_per_second=2.5)) == []
    assert validate(params(state="absent", limit=None)) == []


@pytest.mark.parametrize("kw, message", [
    (dict(limit=-1), "limit must be 0 or more, got -1"),
    (dict(limit=None), "limit is required"),
    (dict(slot_decay_per_second=-0.5), "slot_decay_per_second must be 0 or more"),
    (dict(name=""), "name must not be empty"),
    (dict(name="a/b"), "character the server refuses"),
    (dict(name="e30c476c-0728-4805-822b-25c6b981fa90"), "is a UUID"),
    (dict(name="E30C476C07284805822B25C6B981FA90"), "is a UUID"),
])
def test_bad_input(kw, message):
    problems = validate(params(**kw))
    assert any(message in p for p in problems), problems


# -- comparison ------------------------------------------------------------------------
def test_desired_and_changes():
    wanted = desired(params(slot_decay_per_second=0))
    assert wanted == {"limit": 3, "active": True, "slot_decay_per_second": 0.0}
    assert changes(wanted, STORED) == {}
    assert changes(desired(params(limit=5, active=False)), STORED) == {"limit": 5, "active": False}
    assert changes(desired(params(slot_decay_per_second=1)), STORED) == {"slot_decay_per_second": 1.0}
    assert changes(wanted, None) == wanted


def test_active_is_not_one():
    assert changes({"active": True}, {"active": 1}) == {"active": True}


def test_describe():
    assert describe(STORED) == {"id": STORED["id"], "name": "warehouse", "limit": 3, "active": True,
                                "slot_decay_per_second": 0.0, "active_slots": 1}
    assert describe(STORED, keep_counters=False) == {"name": "warehouse", "limit": 3, "active": True,
                                                     "slot_decay_per_second": 0.0}
    assert describe(None) == {}


# -- the manager against a stand-in of the API -------------------------------------------
class FakeAPI(object):
    """/v2/concurrency_limits/ in memory, read by name or ID; `writes` records the changes asked."""

    def __init__(self, *limits):
        self.limits = dict((limit["id"], copy.deepcopy(limit)) for limit in limits)
        self.writes = []
        self.before_create = None

    def _find(self, path):
        key = path.rsplit("/", 1)[1]
        for limit in self.limits.values():
            if key in (limit["id"], limit["name"]):
                return limit
        return None

    def get_or_none(self, path):
        return copy.deepcopy(self._find(path))

    def post(self, path, data=None, idempotent=None):
        assert path == "/v2/concurrency_limits/" and idempotent is True
        self.writes.append(("POST", path, copy.deepcopy(data)))
        if self.before_create:
            self.before_create()
        if any(limit["name"] == data["name"] for limit in self.limits.values()):
            raise PrefectAPIError(method="POST", url=path, status=409, detail="Data integrity conflict.")
        limit = dict(data, id=str(uuid.uuid4()), active_slots=0, denied_slots=0)
        self.limits[limit["id"]] = limit
        return copy.deepcopy(limit)

    def patch(self, path, data=None):
        self.writes.append(("PATCH", path, copy.deepcopy(data)))
        self._find(path).update(data)

    def delete_if_exists(self, path):
        self.writes.append(("DELETE", path, None))
        limit = self._find(path)
        if limit is None:
            return False
        del self.limits[limit["id"]]
        return True


def run(capsys, api, check=False, diff=False, connect=None, **args):
    call = dict(name="warehouse", limit=3, api_url="http://127.0.0.1:1/api", _ansible_check_mode=check,
                _ansible_diff=diff)
    call.update(args)
    call = dict((k, v) for k, v in call.items() if v is not None)
    with patch_module_args(call):
        module = AnsibleModule(argument_spec=concurrency_limit.argument_spec(), supports_check_mode=True)
        with pytest.raises(SystemExit):
            run_module(module, ConcurrencyLimitManager, connect=connect or (lambda m: api))
    return json.loads(capsys.readouterr().out)


def test_create_then_nothing_to_do(capsys):
    api = FakeAPI()
    result = run(capsys, api, diff=True)
    assert result["changed"] is True
    assert api.writes == [("POST", "/v2/concurrency_limits/",
                           {"name": "warehouse", "limit": 3, "active": True, "slot_decay_per_second": 0.0})]
    assert result["concurrency_limit"]["id"] in api.limits
    assert result["diff"] == {"before": {}, "after": {"name": "warehouse", "limit": 3, "active": True,
                                                      "slot_decay_per_second": 0.0},
                              "before_header": "concurrency limit warehouse",
                              "after_header": "concurrency limit warehouse"}
    api.writes = []
    assert run(capsys, api)["changed"] is False and api.writes == []


def test_only_changed_fields_are_patched(capsys):
    api = FakeAPI(STORED)
    result = run(capsys, api, limit=5, diff=True)
    assert api.writes == [("PATCH", "/v2/concurrency_limits/%s" % STORED["id"], {"limit": 5})]
    assert result["changed"] is True and result["concurrency_limit"]["limit"] == 5
    assert result["concurrency_limit"]["active_slots"] == 1  # never touched
    assert result["diff"]["before"]["limit"] == 3 and result["diff"]["after"]["limit"] == 5
    api.writes = []
    result = run(capsys, api, limit=5, active=False)
    assert api.writes == [("PATCH", "/v2/concurrency_limits/%s" % STORED["id"], {"active": False})]


def test_check_mode_writes_nothing(capsys):
    api = FakeAPI(STORED)
    result = run(capsys, api, limit=7, check=True, diff=True)
    assert result["changed"] is True and api.writes == []
    assert result["concurrency_limit"]["limit"] == 7 and result["diff"]["after"]["limit"] == 7
    api = FakeAPI()
    result = run(capsys, api, check=True)
    assert result["changed"] is True and api.writes == [] and "id" not in result["concurrency_limit"]
    result = run(capsys, FakeAPI(STORED), state="absent", limit=None, check=True)
    assert result["changed"] is True


def test_a_limit_made_meanwhile_is_updated(capsys):
    api = FakeAPI()

    def another_run_creates_it():
        api.limits[STORED["id"]] = copy.deepcopy(STORED)

    api.before_create = another_run_creates_it
    result = run(capsys, api, limit=4)
    assert [w[0] for w in api.writes] == ["POST", "PATCH"]
    assert result["changed"] is True and api.limits[STORED["id"]]["limit"] == 4


def test_absent(capsys):
    api = FakeAPI(STORED)
    result = run(capsys, api, state="absent", limit=None, diff=True)
    assert result["changed"] is True and api.limits == {} and result["concurrency_limit"] == {}
    assert result["diff"]["before"]["limit"] == 3 and result["diff"]["after"] == {}
    assert api.writes == [("DELETE", "/v2/concurrency_limits/%s" % STORED["id"], None)]
    assert run(capsys, api, state="absent", limit=None)["changed"] is False


@pytest.mark.parametrize("args, message", [
    (dict(limit=-1), "limit must be 0 or more, got -1"),
    (dict(limit=None), "limit is required"),
    (dict(slot_decay_per_second=-1.0), "slot_decay_per_second must be 0 or more"),
])
def test_bad_input_is_refused_before_any_request(capsys, args, message):
    def connect(module):
        raise AssertionError("the server was asked")

    result = run(capsys, None, connect=connect, **args)
    assert result["failed"] is True and message in result["msg"]
