# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""run_module: the order (input, client, action) and the dispatch every module relies on."""

from __future__ import annotations

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import PrefectAPIError


class Exited(Exception):
    pass


class FakeModule(object):
    def __init__(self, params, diff=False, check=False):
        self.params = params
        self._diff = diff
        self.check_mode = check
        self.exited = self.failed = None
        self.warnings = []

    def exit_json(self, **kwargs):
        self.exited = kwargs
        raise Exited()

    def fail_json(self, **kwargs):
        self.failed = kwargs
        raise Exited()

    def warn(self, text):
        self.warnings.append(text)


class Thing(PrefectManager):
    def __init__(self, module, client):
        super(Thing, self).__init__(module, client)
        if self.params.get("bad"):
            self.fail("bad input")

    def present(self):
        self.warn("made")
        return self.result(True, {}, {"x": self.client}, "thing t", thing={"x": self.client})

    def absent(self):
        raise PrefectAPIError(method="DELETE", url="http://h/api/things/t", status=500, detail="boom")


class Reader(PrefectManager):
    def run(self):
        return self.result(False, facts=1)


def run(manager, params, **kwargs):
    module = FakeModule(params, **kwargs)
    calls = []

    def connect(m):
        calls.append(m)
        return "client"

    with pytest.raises(Exited):
        run_module(module, manager, connect=connect)
    return module, calls


def test_present_with_diff_and_warnings():
    module, calls = run(Thing, {"state": "present"}, diff=True)
    assert len(calls) == 1
    assert module.exited["changed"] is True
    assert module.exited["thing"] == {"x": "client"}
    assert module.exited["diff"]["after"] == {"x": "client"}
    assert module.warnings == ["made"]


def test_state_absent_api_error_fails_cleanly():
    module, _calls = run(Thing, {"state": "absent"})
    assert module.exited is None
    assert module.failed["status"] == 500
    assert "boom" in module.failed["msg"]


def test_bad_input_is_refused_before_connecting():
    module, calls = run(Thing, {"state": "present", "bad": True})
    assert calls == []
    assert module.failed["msg"] == "bad input"


def test_run_wins_over_state():
    module, _calls = run(Reader, {})
    assert module.exited == {"changed": False, "facts": 1}
