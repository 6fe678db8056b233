# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the flow image build: references, the reproducible context, the content tag,
the generated Dockerfile, and the engine calls (a fake engine client stands in for the Docker
engine here; the storage molecule scenario builds and pushes through a real one)."""

from __future__ import annotations

import base64
import io
import json
import os
import socketserver
import tarfile
import tempfile
import threading
import time

from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import image_build as ib
from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_fields import (
    check_source,
    code_dir,
    desired_fields,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.docker_exec import DockerExecError


def write(root, rel, text, mode=0o644):
    path = os.path.join(str(root), rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    return path


def test_split_image_and_registry():
    assert ib.split_image("reg.lab:5000/flows/weather") == ("reg.lab:5000/flows/weather", None)
    assert ib.split_image("reg.lab:5000/flows/weather:1.0") == ("reg.lab:5000/flows/weather", "1.0")
    assert ib.split_image("weather:latest") == ("weather", "latest")
    with pytest.raises(ib.ImageBuildError, match="digest"):
        ib.split_image("reg.lab:5000/flows/weather@sha256:abc")
    with pytest.raises(ib.ImageBuildError, match="not a valid tag"):
        ib.split_image("weather:-bad")
    assert ib.registry_of("reg.lab:5000/flows/weather") == "reg.lab:5000"
    assert ib.registry_of("localhost/weather") == "localhost"
    assert ib.registry_of("prefecthq/prefect") == "docker.io"
    assert ib.registry_of("weather") == "docker.io"


def test_context_archive_is_reproducible_and_follows_content(tmp_path):
    write(tmp_path, "weather.py", "print(1)\n")
    write(tmp_path, "lib/util.py", "X = 1\n", mode=0o755)
    write(tmp_path, "__pycache__/weather.cpython-311.pyc", "junk")
    write(tmp_path, ".git/HEAD", "ref")
    first, files = ib.context_archive(str(tmp_path), ib.DEFAULT_EXCLUDE)
    assert files == ["lib/util.py", "weather.py"]
    # Touching a file (new mtime, same bytes) gives the same archive and tag.
    later = time.time() + 100
    os.utime(os.path.join(str(tmp_path), "weather.py"), (later, later))
    again, _files = ib.context_archive(str(tmp_path), ib.DEFAULT_EXCLUDE)
    assert again == first
    assert ib.content_tag(first) == ib.content_tag(again)
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert sorted(members) == ["lib/util.py", "weather.py"]
    assert members["lib/util.py"].mode == 0o755 and members["weather.py"].mode == 0o644
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members.values())
    # An edit, a build argument or an extra (generated) file each move the tag.
    tag = ib.content_tag(first)
    assert ib.content_tag(first, {"PY": "3.11"}) != tag
    write(tmp_path, "weather.py", "print(2)\n")
    edited, _files = ib.context_archive(str(tmp_path), ib.DEFAULT_EXCLUDE)
    assert ib.content_tag(edited) != tag
    with_extra, _files = ib.context_archive(str(tmp_path), ib.DEFAULT_EXCLUDE, {"Dockerfile.x": "FROM a\n"})
    assert ib.content_tag(with_extra) != ib.content_tag(edited)
    assert tag.startswith("sha-") and len(tag) == 16


def test_generated_dockerfile():
    text = ib.generated_dockerfile("reg:5000/flows/base:3.9.1", "/opt/prefect/flows", False)
    assert "FROM reg:5000/flows/base:3.9.1\n" in text
    assert "COPY . /opt/prefect/flows\n" in text and "pip" not in text
    assert "pip install --no-cache-dir -r requirements.txt" in ib.generated_dockerfile("b", "/w", True)


class FakeEngine(object):
    """Records requests; answers like an engine whose registry holds ``present`` refs."""

    timeout = 600  # as DockerExecClient: the build timeout

    def __init__(self, present=(), local=(), refuse=False, build_error=None):
        self.present, self.local, self.refuse, self.build_error = set(present), set(local), refuse, build_error
        self.calls = []

    def request(self, method, path, **kwargs):
        self.calls.append((method, path, kwargs))
        if path.startswith("/distribution/"):
            if self.refuse:
                raise DockerExecError("/var/run/docker.sock", "no basic auth credentials", status=500)
            ref = path[len("/distribution/"):-len("/json")].replace("%2F", "/").replace("%3A", ":")
            if ref in self.present:
                return 200, b"{}"
            raise DockerExecError("/var/run/docker.sock", "manifest unknown", status=404)
        if path.startswith("/build"):
            if self.build_error:
                return 200, json.dumps({"errorDetail": {"message": self.build_error},
                                        "error": self.build_error}).encode()
            return 200, b'{"stream":"Step 1/3"}\n{"aux":{"ID":"sha256:1"}}\n'
        if "/push" in path:
            return 200, b'{"status":"Pushed"}\n'
        raise AssertionError(path)

    def _json(self, method, path, **kwargs):
        self.calls.append((method, path, kwargs))
        return {} if any(ref.replace(":", "%3A").replace("/", "%2F") in path for ref in self.local) else None


def builder(tmp_path, engine, **build):
    write(tmp_path, "weather.py", "print(1)\n")
    spec = {"path": str(tmp_path), "base_image": "reg:5000/flows/base:1"}
    spec.update(build)
    made = ib.ImageBuilder("reg:5000/flows/weather", spec, "/opt/prefect/flows", ("prefect", "s3cret"))
    made.engine = engine
    return made


def test_builder_builds_and_pushes_a_missing_image(tmp_path):
    engine = FakeEngine()
    made = builder(tmp_path, engine).plan()
    assert made.changed and made.ref.startswith("reg:5000/flows/weather:sha-")
    made.apply()
    assert made.result()["built"] and made.result()["pushed"]
    paths = [c[1] for c in engine.calls]
    assert paths[0].startswith("/distribution/") and any(p.startswith("/build?") for p in paths)
    build_call = [c for c in engine.calls if c[1].startswith("/build?")][0]
    assert "dockerfile=.selfhosted-prefect.Dockerfile" in build_call[1]
    assert build_call[2]["total_timeout"] == 600
    with tarfile.open(fileobj=io.BytesIO(build_call[2]["raw"])) as tar:
        assert sorted(tar.getnames()) == [".selfhosted-prefect.Dockerfile", "weather.py"]
    push_call = [c for c in engine.calls if "/push" in c[1]][0]
    auth = json.loads(base64.urlsafe_b64decode(push_call[2]["headers"]["X-Registry-Auth"]))
    assert auth == {"username": "prefect", "password": "s3cret", "serveraddress": "reg:5000"}
    # The credentials travel only in headers, never in a path or an action text.
    assert not any("s3cret" in c[1] or "s3cret" in str(c[2].get("action")) for c in engine.calls)


def test_builder_does_nothing_when_the_registry_has_the_tag(tmp_path):
    first = builder(tmp_path, FakeEngine()).plan()
    engine = FakeEngine(present=[first.ref])
    made = builder(tmp_path, engine).plan().apply()
    assert not made.changed and made.result()["existed"]
    assert [c[1].split("?")[0] for c in engine.calls] == ["/distribution/%s/json" % made.ref.replace("/", "%2F")
                                                          .replace(":", "%3A")]


def test_builder_pushes_a_local_image_without_building(tmp_path):
    ref = builder(tmp_path, FakeEngine()).plan().ref
    engine = FakeEngine(local=[ref])
    made = builder(tmp_path, engine).plan().apply()
    assert made.result()["pushed"] and not made.result()["built"]


def test_builder_errors(tmp_path):
    with pytest.raises(ib.ImageBuildError, match="refused the credentials"):
        builder(tmp_path, FakeEngine(refuse=True)).plan()
    with pytest.raises(ib.ImageBuildError, match="building .* failed: pip exploded"):
        builder(tmp_path, FakeEngine(build_error="pip exploded")).plan().apply()
    with pytest.raises(ib.ImageBuildError, match="inside source.build.path"):
        builder(tmp_path, FakeEngine(), dockerfile="../Dockerfile").plan()
    with pytest.raises(ib.ImageBuildError, match="is not a file"):
        builder(tmp_path, FakeEngine(), dockerfile="Dockerfile.missing").plan()
    with pytest.raises(ib.ImageBuildError, match="needs base_image"):
        builder(tmp_path, FakeEngine(), base_image=None).plan()
    write(tmp_path, "Dockerfile", "FROM x\n")
    assert builder(tmp_path, FakeEngine(), base_image=None).plan().dockerfile == "Dockerfile"
    with pytest.raises(ib.ImageBuildError, match="excluded"):
        builder(tmp_path, FakeEngine(), base_image=None, exclude=["Dockerfile"]).plan()
    with pytest.raises(ib.ImageBuildError, match="has a tag"):
        ib.ImageBuilder("reg:5000/flows/weather:1", {"path": str(tmp_path)}, "/w")


def test_deployment_fields_for_a_built_image(tmp_path):
    source = {"type": "docker", "image": "reg:5000/flows/weather", "working_dir": "/opt/prefect/flows",
              "build": {"path": str(tmp_path)}, "registry_credentials": "lab"}
    check_source(source)
    assert code_dir(source) == str(tmp_path)
    params = {"source": source, "entrypoint": "weather.py:weather", "work_pool_name": "docker-pool"}
    desired = desired_fields(params, None, image="reg:5000/flows/weather:sha-1", registry_credentials_id="b-1")
    assert desired["job_variables"] == {"image": "reg:5000/flows/weather:sha-1",
                                        "registry_credentials": {"$ref": {"block_document_id": "b-1"}}}
    with pytest.raises(ValueError, match="has a tag"):
        check_source(dict(source, image="reg:5000/flows/weather:1.0"))
    with pytest.raises(ValueError, match="does not apply to a local source"):
        check_source({"type": "local", "path": str(tmp_path), "build": {"path": str(tmp_path)}})


# -- a build that never ends, from an engine on a unix socket ------------------------------
class EndlessBuildEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """No image exists; ``POST /build`` answers a chunked progress stream that never ends
    (a line every 20 ms) until ``stop`` is set."""

    daemon_threads = True

    def __init__(self, path):
        self.stop = threading.Event()
        self.paths = []
        super().__init__(path, EndlessBuildHandler)


class EndlessBuildHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def do_GET(self):  # pylint: disable=invalid-name
        self.server.paths.append(self.path)
        body = b'{"message": "No such image"}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # pylint: disable=invalid-name
        self.server.paths.append(self.path)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True
        try:
            step = 0
            while not self.server.stop.wait(0.02):
                step += 1
                line = json.dumps({"stream": "Step %d: still working\n" % step}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client went away
            pass


@pytest.fixture
def endless_engine():
    directory = tempfile.mkdtemp(prefix="fake-docker-")  # short path: unix socket paths are limited
    path = os.path.join(directory, "docker.sock")
    server = EndlessBuildEngine(path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, path
    server.stop.set()
    server.shutdown()
    server.server_close()
    os.unlink(path)
    os.rmdir(directory)


def test_a_build_that_keeps_reporting_progress_stops_at_the_build_timeout(tmp_path, endless_engine):
    """The engine's progress lines keep the socket busy: source.build.timeout bounds the whole
    build. (Bounded here: a builder without that limit would read until the test stops the stream.)"""
    server, path = endless_engine
    write(tmp_path, "weather.py", "print(1)\n")
    made = ib.ImageBuilder("reg:5000/flows/weather", {"path": str(tmp_path), "base_image": "reg:5000/base:1",
                                                      "push": False, "docker_host": "unix://" + path, "timeout": 1},
                           "/opt/prefect/flows")
    assert made.plan().changed
    outcome = {}

    def call():
        try:
            outcome["result"] = made.apply().result()
        except ib.ImageBuildError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(10)
    still_running = worker.is_alive()
    server.stop.set()
    worker.join(5)
    assert not still_running, "the build was still being read 10 s after a 1 s build timeout"
    assert "error" in outcome, "apply() returned instead of failing: %r" % (outcome.get("result"),)
    assert time.monotonic() - started < 5
    assert "building %s" % made.ref in str(outcome["error"])
    assert "took longer than 1 s (source.build.timeout)" in str(outcome["error"])
    assert any(p.startswith("/build?") for p in server.paths)
