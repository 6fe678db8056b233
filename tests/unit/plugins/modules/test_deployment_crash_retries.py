# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployment module's crash_retries: the automation it keeps beside the deployment, and
the input it refuses before asking the server anything. (The automation firing on a real
server is checked in molecule/worker, where a DinD sidecar is killed under a run.)"""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.module_utils.automation import (
    normalize_actions,
    normalize_trigger,
    trigger_matches,
)
from ansible_collections.selfhosted.prefect.plugins.modules import deployment

DEPLOYMENT_ID = "0b9c43c2-0ff1-4c3b-a0a5-7d9e1c1c9a35"


def test_the_automation_retries_started_runs_of_this_deployment_only():
    params = deployment.crash_retry_params("etl", "nightly", DEPLOYMENT_ID, 3)
    assert params["name"] == "Retry crashed runs of etl/nightly"
    assert params["state"] == "present"
    trigger = params["trigger"]
    assert trigger["expect"] == ["prefect.flow-run.Crashed"]
    # Run count 0 (crashed before it ever ran) is left out: retrying it would loop.
    assert trigger["match"]["prefect.run-count"] == ["1", "2", "3"]
    assert trigger["match_related"] == {"prefect.resource.id": "prefect.deployment.%s" % DEPLOYMENT_ID,
                                        "prefect.resource.role": "deployment"}
    assert params["actions"] == [{"type": "change-flow-run-state", "state": "SCHEDULED", "name": "AwaitingRetry",
                                  "message": "Crashed after it started; scheduled again (crash_retries: 3)."}]
    # The automation module reads it like any task's trigger (its defaults filled in).
    assert trigger_matches(normalize_trigger(trigger), dict(normalize_trigger(trigger), id="x", within=0.0))
    assert normalize_actions(params["actions"], "actions")[0]["force"] is False


def test_zero_retries_is_no_automation():
    params = deployment.crash_retry_params("etl", "nightly", DEPLOYMENT_ID, 0)
    assert params["state"] == "absent" and params["trigger"] is None


@pytest.mark.parametrize("automation, retries", [
    (None, 0),
    ({}, 0),
    ({"trigger": {"match": {"prefect.run-count": ["1", "2"]}}}, 2),
    ({"trigger": {"match": {"prefect.run-count": "1"}}}, 1),
    ({"trigger": {"match": {}}}, 0),
])
def test_retries_read_back(automation, retries):
    assert deployment.crash_retries_of(automation) == retries


@pytest.mark.parametrize("retries", [-1, 11])
def test_out_of_range_is_refused_before_any_request(capsys, tmp_path, retries):
    (tmp_path / "etl.py").write_text("x = 1\n")
    # Port 9 (discard) on loopback: any request would fail with another message.
    args = {"api_url": "http://127.0.0.1:9/api", "name": "nightly", "flow_name": "etl", "entrypoint": "etl.py:etl",
            "source": {"type": "local", "path": str(tmp_path)}, "work_pool_name": "pool",
            "introspection_cache": False, "crash_retries": retries}
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            deployment.main()
    out = json.loads(capsys.readouterr().out)
    assert out["failed"]
    assert out["msg"] == "crash_retries must be between 0 and 10, got %d" % retries
