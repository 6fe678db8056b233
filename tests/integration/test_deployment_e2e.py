# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""End to end: a flow registered with each code source runs to Completed on a real worker.

* local: a process worker runs the flow from the shared directory;
* s3: the module uploads the code to a real SeaweedFS server; the process worker
  downloads it with prefect-aws's pull_from_s3 and the credentials of an
  aws-credentials block (the local copy is deleted first, so the code can only
  come from S3);
* docker: an image holding the flow is built FROM the local prefecthq/prefect
  image; a docker worker runs it in a container (host network, to reach the
  server on 127.0.0.1). Skipped, saying why, when there is no Docker engine or no
  Prefect image.
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import time

import pytest

from fixtures_s3_worker import docker_image_exists, docker_ready
from test_deployment import deployment

PREFECT_PYTHON = sys.executable
PROCESS_POOL = "e2e-process"
DOCKER_POOL = "e2e-docker"
PREFECT_IMAGE = "prefecthq/prefect:3.9.1-python3.11"


def flow_logs(api, flow_run_id, want, timeout=30):
    """The run's log messages, waiting a little for `want` to arrive (logs are sent in batches)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = api.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200})
        messages = [entry["message"] for entry in logs]
        if any(want in m for m in messages) or time.monotonic() > deadline:
            return messages
        time.sleep(1)


def run_and_wait(run_module, prefect_api, worker, dep_name, city, timeout=300):
    result = run_module("flow_run", {"deployment": dep_name, "parameters": {"city": city}, "wait": True,
                                     "wait_timeout": timeout, "poll_interval": 1}, timeout=timeout + 120)
    assert not result["failed"], "%s\n--- worker log ---\n%s" % (result.get("msg"), worker.log_tail())
    assert result["changed"] is True
    assert result["state"] == "Completed" and result["state_type"] == "COMPLETED", result
    assert result["flow_run"]["parameters"]["city"] == city
    messages = flow_logs(prefect_api, result["flow_run_id"], "%s:" % city)
    assert any(m.startswith("%s: " % city) and "degrees for 3 days" in m for m in messages), messages
    return result


def test_local_source_runs_completed(run_module, prefect_api, prefect_worker, unique_name, flows_dir):
    worker = prefect_worker(PROCESS_POOL)
    name = unique_name("local")
    result = run_module("deployment", {
        "name": name, "entrypoint": "weather.py:weather", "work_pool_name": PROCESS_POOL,
        "source": {"type": "local", "path": str(flows_dir)}, "prefect_python": PREFECT_PYTHON,
        "schedules": [{"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris"}]})
    assert result["changed"] and not result["failed"], result
    run = run_and_wait(run_module, prefect_api, worker, "weather/%s" % name, "Lyon")
    assert any("set_working_directory" in m for m in run["logs"]), run["logs"]


def test_s3_source_runs_completed(run_module, prefect_api, prefect_worker, unique_name, flows_dir, s3_server):
    worker = prefect_worker(PROCESS_POOL)
    block = unique_name("e2e-s3")
    # the credentials block is made the Ansible way, with selfhosted.prefect.block_document
    made = run_module("block_document", {"block_type": "aws-credentials", "name": block, "data": {
        "aws_access_key_id": s3_server.access_key, "aws_secret_access_key": s3_server.secret_key,
        "region_name": s3_server.region, "aws_client_parameters": {"endpoint_url": s3_server.endpoint_url}}})
    assert made["changed"] and not made["failed"], made
    name = unique_name("s3")
    result = run_module("deployment", {
        "name": name, "entrypoint": "weather.py:weather", "work_pool_name": PROCESS_POOL,
        "source": {"type": "s3", "path": str(flows_dir), "bucket": s3_server.bucket, "folder": "e2e/%s" % name,
                   "endpoint_url": s3_server.endpoint_url, "credentials": {"block": block}},
        "prefect_python": PREFECT_PYTHON})
    assert result["changed"] and not result["failed"], result
    assert "e2e/%s/weather.py" % name in result["s3_upload"]["uploaded"]
    shutil.rmtree(flows_dir)  # from now on the code exists only in S3
    run = run_and_wait(run_module, prefect_api, worker, "weather/%s" % name, "Oslo")
    assert any("pull_from_s3" in m for m in run["logs"]), run["logs"]


@pytest.fixture(scope="module")
def flow_image(tmp_path_factory):
    if not docker_ready():
        pytest.skip("no Docker engine answers `docker info` here")
    if not docker_image_exists(PREFECT_IMAGE):
        pytest.skip("image %s is not present (lab/build makes it); the docker source is only checked for"
                    " registration in test_deployment.py" % PREFECT_IMAGE)
    context = tmp_path_factory.mktemp("flow-image")
    shutil.copy(str(__import__("fixtures_s3_worker").FLOWS_DIR / "weather.py"), str(context / "weather.py"))
    (context / "Dockerfile").write_text(
        "FROM %s\nCOPY weather.py /opt/prefect/flows/weather.py\nWORKDIR /opt/prefect/flows\n" % PREFECT_IMAGE)
    tag = "selfhosted-prefect-test/weather:%s" % secrets.token_hex(4)
    build = subprocess.run(["docker", "build", "-q", "-t", tag, str(context)], capture_output=True, text=True,
                           timeout=600, check=False)
    assert build.returncode == 0, build.stderr
    yield tag
    subprocess.run(["docker", "image", "rm", "-f", tag], capture_output=True, check=False)


def test_docker_source_runs_completed(run_module, prefect_api, prefect_worker, unique_name, flow_image, flows_dir):
    worker = prefect_worker(DOCKER_POOL, worker_type="docker")
    name = unique_name("docker")
    result = run_module("deployment", {
        "name": name, "entrypoint": "weather.py:weather", "work_pool_name": DOCKER_POOL,
        "source": {"type": "docker", "image": flow_image, "working_dir": "/opt/prefect/flows",
                   "introspect_path": str(flows_dir)},
        "prefect_python": PREFECT_PYTHON,
        # the image is local (never pulled); host network so the container reaches the server on 127.0.0.1
        "job_variables": {"image_pull_policy": "Never", "network_mode": "host", "auto_remove": True}})
    assert result["changed"] and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert dep["job_variables"]["image"] == flow_image
    run_and_wait(run_module, prefect_api, worker, "weather/%s" % name, "Rome", timeout=400)
