# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.flow_run against a real server and a real process worker."""

from __future__ import annotations

import sys

import pytest

from test_deployment import deployment, make_pool

PREFECT_PYTHON = sys.executable
PROCESS_POOL = "e2e-process"


@pytest.fixture(scope="module")
def registered(prefect_server, prefect_worker, tmp_path_factory):
    """The weather and always-fails flows registered on the process pool (a worker runs)."""
    import shutil  # pylint: disable=import-outside-toplevel
    from fixtures_s3_worker import FLOWS_DIR  # pylint: disable=import-outside-toplevel
    worker = prefect_worker(PROCESS_POOL)
    code = tmp_path_factory.mktemp("flow-run-code") / "flows"
    shutil.copytree(str(FLOWS_DIR), str(code), ignore=shutil.ignore_patterns("__pycache__"))
    for name, entrypoint in (("fr-weather", "weather.py:weather"), ("fr-fails", "failing.py:always_fails")):
        result = prefect_server.run_module("deployment", {
            "name": name, "entrypoint": entrypoint, "work_pool_name": PROCESS_POOL,
            "source": {"type": "local", "path": str(code)}, "prefect_python": PREFECT_PYTHON})
        assert not result["failed"], result
    return worker


def test_check_mode_starts_nothing(run_module, prefect_api, registered):
    dep = deployment(prefect_api, "weather", "fr-weather")
    before = prefect_api.post("/flow_runs/count", {"deployments": {"id": {"any_": [dep["id"]]}}})
    result = run_module("flow_run", {"deployment": "weather/fr-weather", "wait": True}, check=True)
    assert result["changed"] is True and not result["failed"], result
    assert result["flow_run_id"] is None
    assert prefect_api.post("/flow_runs/count", {"deployments": {"id": {"any_": [dep["id"]]}}}) == before


def test_wait_completed_by_id(run_module, prefect_api, registered):
    dep = deployment(prefect_api, "weather", "fr-weather")
    result = run_module("flow_run", {"deployment": dep["id"], "parameters": {"city": "Berlin", "days": 2},
                                     "tags": ["ansible"], "run_name": "from-ansible", "wait": True,
                                     "wait_timeout": 300, "poll_interval": 1})
    assert not result["failed"], "%s\n%s" % (result.get("msg"), registered.log_tail())
    assert result["state"] == "Completed" and result["final"] is True
    assert result["flow_run"]["name"] == "from-ansible"
    assert result["flow_run"]["parameters"] == {"city": "Berlin", "days": 2}
    assert "ansible" in result["flow_run"]["tags"]
    assert prefect_api.get("/flow_runs/%s" % result["flow_run_id"])["state_type"] == "COMPLETED"


def test_no_wait_returns_scheduled(run_module, registered):
    result = run_module("flow_run", {"deployment": "weather/fr-weather"})
    assert result["changed"] is True and not result["failed"], result
    assert result["state_type"] in ("SCHEDULED", "PENDING", "RUNNING", "COMPLETED")
    assert result["flow_run_id"]


def test_failed_run_fails_the_task(run_module, registered):
    args = {"deployment": "always-fails/fr-fails", "parameters": {"reason": "in a test"}, "wait": True,
            "wait_timeout": 300, "poll_interval": 1}
    result = run_module("flow_run", args)
    assert result["failed"] is True, result
    assert result["state"] == "Failed"
    assert "ended Failed" in result["msg"] and "in a test" in result["msg"], result["msg"]
    result = run_module("flow_run", dict(args, fail_on_failure=False))
    assert not result["failed"] and result["state"] == "Failed", result


def test_idempotency_key(run_module, prefect_api, registered):
    args = {"deployment": "weather/fr-weather", "idempotency_key": "once-%s" % id(run_module), "wait": True,
            "wait_timeout": 300, "poll_interval": 1}
    first = run_module("flow_run", args)
    assert first["changed"] is True and first["state"] == "Completed", first
    check = run_module("flow_run", args, check=True)
    assert check["changed"] is False and check["flow_run_id"] == first["flow_run_id"], check
    second = run_module("flow_run", args)
    assert second["changed"] is False and second["flow_run_id"] == first["flow_run_id"], second


def test_unknown_deployment_and_timeout(run_module, prefect_api, unique_name, registered, tmp_path):
    result = run_module("flow_run", {"deployment": "weather/does-not-exist"})
    assert result["failed"] and "not found" in result["msg"], result
    result = run_module("flow_run", {"deployment": "no-slash"})
    assert result["failed"] and "flow_name/deployment_name" in result["msg"], result

    # a pool nobody polls: the run stays Scheduled and the wait ends with a clear timeout
    pool = make_pool(prefect_api, unique_name("idle"))
    from fixtures_s3_worker import FLOWS_DIR  # pylint: disable=import-outside-toplevel
    name = unique_name("idle")
    assert not run_module("deployment", {"name": name, "entrypoint": "weather.py:weather", "work_pool_name": pool,
                                         "source": {"type": "local", "path": str(FLOWS_DIR)},
                                         "prefect_python": PREFECT_PYTHON})["failed"]
    result = run_module("flow_run", {"deployment": "weather/%s" % name, "wait": True, "wait_timeout": 3,
                                     "poll_interval": 1})
    assert result["failed"] is True and "did not end within 3s" in result["msg"], result
    assert pool in result["msg"] and result["final"] is False
