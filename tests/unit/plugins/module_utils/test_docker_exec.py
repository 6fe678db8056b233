# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""docker_exec: frame parsing, docker_host checks, and the exec round trip against a fake engine
listening on a unix socket (the real engine is exercised by tests/integration/test_tenant.py)."""

from __future__ import annotations

import json
import os
import socketserver
import struct
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils.docker_exec import (
    DockerExecClient,
    DockerExecError,
    demux_stream,
    socket_path_of,
)


def frame(kind, payload):
    return struct.pack(">BxxxL", kind, len(payload)) + payload


# -- frames ----------------------------------------------------------------------------
def test_demux_splits_stdout_and_stderr_in_order():
    data = frame(1, b"one\n") + frame(2, b"err1\n") + frame(1, b"two\n") + frame(2, b"err2")
    assert demux_stream(data) == (b"one\ntwo\n", b"err1\nerr2")


def test_demux_empty_stream_and_empty_frames():
    assert demux_stream(b"") == (b"", b"")
    assert demux_stream(frame(1, b"") + frame(2, b"")) == (b"", b"")


def test_demux_length_is_big_endian_and_payload_may_hold_header_like_bytes():
    payload = b"x" * 300 + b"\x02\x00\x00\x00\x00\x00\x00\x05"
    data = frame(1, payload)
    assert data[4:8] == b"\x00\x00\x01\x34"
    assert demux_stream(data) == (payload, b"")


def test_demux_stdin_frames_count_as_stdout():
    assert demux_stream(frame(0, b"a") + frame(1, b"b")) == (b"ab", b"")


@pytest.mark.parametrize("data, where", [
    (b"\x01\x00\x00", "header"),
    (frame(1, b"hello")[:-1], "5 bytes announced, 4 left"),
    (frame(1, b"ok") + b"\x02\x00", "header"),
])
def test_demux_refuses_truncated_streams(data, where):
    with pytest.raises(ValueError, match=where):
        demux_stream(data)


# -- docker_host -----------------------------------------------------------------------
def test_socket_path_of_unix_urls():
    assert socket_path_of("unix:///var/run/docker.sock") == "/var/run/docker.sock"
    assert socket_path_of(None) == "/var/run/docker.sock"
    assert socket_path_of("") == "/var/run/docker.sock"


@pytest.mark.parametrize("host", ["tcp://127.0.0.1:2375", "ssh://me@box", "/var/run/docker.sock",
                                  "unix://relative.sock"])
def test_other_docker_hosts_are_refused_clearly(host):
    with pytest.raises(DockerExecError, match="not supported|must be absolute") as err:
        DockerExecClient(host)
    assert host in str(err.value)


# -- a fake engine -----------------------------------------------------------------------
class FakeEngine(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path):
        self.requests = []
        self.exit_code = 3
        self.pending_polls = 0
        self.stop = threading.Event()  # ends the endless output of /exec/e2/start
        super().__init__(path, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # pylint: disable=arguments-differ
        pass

    def _send(self, status, body, content_type="application/json", close=False):
        data = json.dumps(body).encode() if not isinstance(body, bytes) else body
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if close:
            self.send_header("Connection", "close")
        else:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        if close:
            self.wfile.flush()
            self.close_connection = True

    def _stream_forever(self):
        """A command that prints a line every 20 ms and never ends (until the test stops it)."""
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.docker.multiplexed-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            while not self.server.stop.wait(0.02):
                self.wfile.write(frame(1, b"y\n"))
                self.wfile.flush()
        except OSError:  # the client went away
            pass

    def _body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def do_GET(self):  # pylint: disable=invalid-name
        engine = self.server
        engine.requests.append(("GET", self.path, None))
        if self.path == "/containers/pg/json":
            self._send(200, {"Id": "abc", "State": {"Running": True, "Status": "running"}})
        elif self.path == "/exec/e1/json":
            if engine.pending_polls:
                engine.pending_polls -= 1
                self._send(200, {"Running": True, "ExitCode": None})
            else:
                self._send(200, {"Running": False, "ExitCode": engine.exit_code})
        else:
            self._send(404, {"message": "No such container: %s" % self.path.split("/")[2]})

    def do_POST(self):  # pylint: disable=invalid-name
        body = self._body()
        self.server.requests.append(("POST", self.path, body))
        if self.path == "/containers/pg/exec":
            self._send(201, {"Id": "e1"})
        elif self.path == "/containers/chatty/exec":
            self._send(201, {"Id": "e2"})
        elif self.path == "/exec/e2/start":
            self._stream_forever()
        elif self.path == "/exec/e1/start":
            # Like the engine: no length, the raw multiplexed stream, then the connection closes.
            self._send(200, frame(1, b"out ") + frame(2, b"warn") + frame(1, b"put"),
                       content_type="application/vnd.docker.multiplexed-stream", close=True)
        else:
            self._send(409, {"message": "container %s is not running" % self.path.split("/")[2]})


@pytest.fixture
def engine():
    directory = tempfile.mkdtemp(prefix="fake-docker-")  # short path: unix socket paths are limited
    path = os.path.join(directory, "docker.sock")
    server = FakeEngine(path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, path
    server.stop.set()
    server.shutdown()
    server.server_close()
    os.unlink(path)
    os.rmdir(directory)


def test_exec_round_trip(engine):
    server, path = engine
    server.pending_polls = 2
    client = DockerExecClient("unix://" + path, timeout=5)
    assert client.inspect_container("pg")["State"]["Running"] is True
    rc, out, err = client.exec_run("pg", ["psql", "-c", "SELECT 1"], env={"A": "1", "PW": "s3cret"})
    assert (rc, out, err) == (3, b"out put", b"warn")
    create = [r for r in server.requests if r[1] == "/containers/pg/exec"][0][2]
    assert create["Cmd"] == ["psql", "-c", "SELECT 1"]
    assert sorted(create["Env"]) == ["A=1", "PW=s3cret"]
    assert create["AttachStdout"] and create["AttachStderr"] and not create["Tty"]
    start = [r for r in server.requests if r[1] == "/exec/e1/start"][0][2]
    assert start == {"Detach": False, "Tty": False}
    assert len([r for r in server.requests if r[1] == "/exec/e1/json"]) == 3


def test_missing_container_is_none(engine):
    dummy, path = engine
    assert DockerExecClient("unix://" + path).inspect_container("nope") is None


def test_engine_errors_name_socket_and_message_but_not_env(engine):
    dummy, path = engine
    with pytest.raises(DockerExecError) as err:
        DockerExecClient("unix://" + path).exec_run("stopped", ["true"], env={"PW": "s3cret"})
    text = str(err.value)
    assert path in text and "container stopped is not running" in text and "409" in text
    assert "s3cret" not in text
    assert err.value.status == 409


def test_connection_errors_name_the_socket(tmp_path):
    path = str(tmp_path / "absent.sock")
    with pytest.raises(DockerExecError) as err:
        DockerExecClient("unix://" + path).inspect_container("pg")
    assert path in str(err.value)
    assert err.value.status is None


def test_a_command_that_keeps_printing_is_stopped_at_the_timeout(engine):
    """The socket timeout never fires while output keeps coming: the client's timeout bounds the
    whole run. (Bounded here: a client without that limit would read until the test stops the
    stream.)"""
    server, path = engine
    client = DockerExecClient("unix://" + path, timeout=1)
    outcome = {}

    def call():
        try:
            outcome["result"] = client.exec_run("chatty", ["yes"])
        except DockerExecError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=call, daemon=True)
    started = time.monotonic()
    worker.start()
    worker.join(10)
    still_running = worker.is_alive()
    server.stop.set()
    worker.join(5)
    assert not still_running, "exec_run was still reading the output 10 s after a 1 s timeout"
    assert "error" in outcome, "exec_run returned instead of failing: %r" % (outcome.get("result"),)
    assert time.monotonic() - started < 5
    assert "the command ran longer than 1 s" in str(outcome["error"])
    assert "exec in container chatty" in str(outcome["error"]) and path in str(outcome["error"])
    assert outcome["error"].overdue is True


def test_a_total_timeout_does_not_cut_a_stream_that_ends_in_time(engine):
    server, path = engine
    client = DockerExecClient("unix://" + path, timeout=5)
    assert client.exec_run("pg", ["true"]) == (3, b"out put", b"warn")
    status, data = client.request("GET", "/containers/pg/json", total_timeout=5)
    assert status == 200 and json.loads(data)["Id"] == "abc"
    assert len(server.requests) == 4
