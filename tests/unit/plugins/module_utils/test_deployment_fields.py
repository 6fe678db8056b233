# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the deployment module's fields: actual vs desired, API bodies, pull steps, entrypoints."""

from __future__ import annotations

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import deployment_fields as df
from ansible_collections.selfhosted.prefect.plugins.module_utils import schedules as sc


# ---------------------------------------------------------------- deployment fields

SERVER_DEPLOYMENT = {
    "id": "d1", "name": "three", "flow_id": "f1", "entrypoint": "weather.py:weather",
    "pull_steps": [{df.LOCAL_PULL_STEP: {"directory": "/srv/flows"}}],
    "work_pool_name": "pool", "work_queue_name": "default", "job_variables": {},
    "parameters": {"city": "Paris"}, "parameter_openapi_schema": {"type": "object", "properties": {}},
    "enforce_parameter_schema": True, "description": None, "version": None, "tags": ["b", "a"],
    "paused": False, "concurrency_limit": None,
    "global_concurrency_limit": {"limit": 2, "name": "deployment:d1"},
    "schedules": [], "created": "x", "updated": "y", "labels": {"prefect.flow.id": "f1"},
}


def test_actual_fields_read_concurrency_from_global_limit():
    fields = df.actual_deployment_fields(SERVER_DEPLOYMENT)
    assert fields["concurrency_limit"] == 2
    assert set(fields) == set(df.DEPLOYMENT_FIELDS)


def test_no_changes_when_equal_and_unmanaged_ignored():
    actual = df.actual_deployment_fields(SERVER_DEPLOYMENT)
    desired = {"entrypoint": "weather.py:weather", "pull_steps": [{df.LOCAL_PULL_STEP: {"directory": "/srv/flows"}}],
               "work_pool_name": "pool", "work_queue_name": None, "parameters": {"city": "Paris"},
               "tags": ["a", "b"], "description": None, "paused": None, "job_variables": None,
               "parameter_openapi_schema": {"type": "object", "properties": {}}}
    assert df.deployment_changes(desired, actual) == {}


def test_changes_listed():
    actual = df.actual_deployment_fields(SERVER_DEPLOYMENT)
    desired = {"parameters": {"city": "Lyon"}, "paused": True, "concurrency_limit": None, "work_queue_name": "fast",
               "work_pool_name": "pool"}
    changes = df.deployment_changes(desired, actual)
    assert changes == {"parameters": {"city": "Lyon"}, "paused": True, "concurrency_limit": None,
                       "work_queue_name": "fast"}
    body = df.update_body(changes, desired)
    assert body["work_pool_name"] == "pool" and body["work_queue_name"] == "fast"
    assert "schedules" not in body


def test_create_body():
    desired = {"entrypoint": "w.py:w", "pull_steps": [], "work_pool_name": "pool", "parameters": None,
               "concurrency_limit": 3}
    schedules = sc.normalize_schedules([{"cron": "0 8,13,18 * * *"}])
    body = df.create_body(desired, "f1", "three", schedules)
    assert body == {"name": "three", "flow_id": "f1", "entrypoint": "w.py:w", "pull_steps": [],
                    "work_pool_name": "pool", "concurrency_limit": 3,
                    "schedules": [{"active": True, "parameters": {},
                                   "schedule": {"cron": "0 8,13,18 * * *", "day_or": True}}]}


# ---------------------------------------------------------------- sources

def test_pull_steps_local_and_docker():
    assert df.build_pull_steps({"type": "local", "path": "/srv/prefect/flows"}) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/srv/prefect/flows"}}]
    assert df.build_pull_steps({"type": "docker", "image": "r:5000/flows/weather:1.0", "working_dir": None}) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/flows"}}]


def test_pull_steps_s3_reference_block_never_secrets():
    steps = df.build_pull_steps({
        "type": "s3", "bucket": "flows", "folder": "/weather/", "endpoint_url": "http://127.0.0.1:8333",
        "credentials": {"block": "lab-s3", "aws_access_key_id": "AK", "aws_secret_access_key": "SECRET"}})
    assert steps == [{"prefect_aws.deployments.steps.pull_from_s3": {
        "requires": "prefect-aws", "bucket": "flows", "folder": "weather",
        "credentials": "{{ prefect.blocks.aws-credentials.lab-s3 }}",
        "client_parameters": {"endpoint_url": "http://127.0.0.1:8333"}}}]
    assert "SECRET" not in repr(steps) and "aws_access_key_id" not in repr(steps)


def test_pull_steps_s3_without_block_refused():
    with pytest.raises(ValueError, match="credentials.block"):
        df.build_pull_steps({"type": "s3", "bucket": "b", "credentials": None})


@pytest.mark.parametrize("entrypoint", ["weather.py", "weather.py:", ":flow", "/abs/weather.py:w", "../x.py:w",
                                        "w.py:bad-name", None])
def test_bad_entrypoints(entrypoint):
    with pytest.raises(ValueError):
        df.parse_entrypoint(entrypoint)


def test_good_entrypoint():
    assert df.parse_entrypoint("flows/weather.py:weather") == ("flows/weather.py", "weather")
