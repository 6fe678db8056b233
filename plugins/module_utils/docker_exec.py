# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A minimal ``docker exec`` over the Docker Engine API, for modules that run a command
in a container (the ``tenant`` module runs ``psql`` in the PostgreSQL container).

Standard library only (no Docker SDK, no ``requests``, no community.docker; from
ansible-core only ``env_fallback`` for the argument spec): one
``http.client`` connection per request over the engine's unix socket. Only the four
endpoints ``docker exec`` needs are used; API paths are unversioned, so any engine
that still serves them answers (every engine since API 1.25).

Interface (stable; other modules may build on it)
-------------------------------------------------
``DEFAULT_DOCKER_HOST``
    ``"unix:///var/run/docker.sock"``.

``docker_exec_argument_spec()``
    A fresh dict with the shared options: ``docker_host`` (env ``DOCKER_HOST``, else
    ``DEFAULT_DOCKER_HOST``; alias ``docker_url`` as in community.docker) and
    ``timeout`` (seconds per socket operation, default 60), to merge into a
    module's ``argument_spec``. Modules document them in their own DOCUMENTATION.

``DockerExecClient(docker_host=DEFAULT_DOCKER_HOST, timeout=60)``
    Raises ``DockerExecError`` at once if ``docker_host`` is not a ``unix://`` URL
    (TCP and SSH engines are not supported).
``client.inspect_container(name)`` -> dict, or ``None`` when no such container (404).
``client.exec_run(container, cmd, env=None, user=None)`` -> ``(exit_code, stdout_bytes, stderr_bytes)``
    Creates the exec (``POST /containers/{id}/exec``), starts it attached without a
    TTY (``POST /exec/{id}/start``), reads the multiplexed answer until the command
    ends, then reads its exit code (``GET /exec/{id}/json``; -1 if the engine has
    none). Output is returned as bytes, undecoded. ``env`` is a dict; its
    values travel only in the request body, never in an error message.
    The client's ``timeout`` is also the command's overall limit: a command whose
    output has not ended that many seconds after it started (even one that keeps
    printing) raises ``DockerExecError`` ("the command ran longer than N s"); the engine
    offers no way to stop an exec, so it may go on running in the container.
``client.request(method, path, body=None, headers=None, raw=None, timeout=None, total_timeout=None, overdue=None)``
    -> ``(status, bytes)``
    One raw request (``body`` is sent as JSON, ``raw`` as a tar archive; ``headers``
    are added, never shown in errors; ``timeout`` overrides the client's for this
    request); raises ``DockerExecError`` on connection errors and non-2xx answers
    (``allow_404=True`` lets 404 through). ``timeout`` bounds each socket operation;
    ``total_timeout`` (seconds), when given, bounds the whole request, the reading of a
    streamed answer included (read in chunks against the monotonic clock): past it,
    ``DockerExecError`` with ``overdue`` as its detail (default "took longer than N s"),
    attribute ``overdue=True``. ``image_build.py`` builds and pushes images with it.

``demux_stream(data)`` -> ``(stdout_bytes, stderr_bytes)``
    Splits a non-TTY attach stream: frames of an 8-byte header (stream type byte,
    three zero bytes, big-endian uint32 payload length) followed by the payload;
    stream 1 is stdout, 2 stderr (0, stdin, is counted as stdout). Raises
    ``ValueError`` on a truncated frame.

``DockerExecError(Exception)``
    ``str(err)`` names the socket and the engine's message (its JSON ``message``);
    attributes ``socket_path``, ``status`` (HTTP status, ``None`` for connection
    errors), ``detail``.
"""

from __future__ import annotations

import json
import socket
import struct
import time

from http.client import HTTPConnection, HTTPException
from urllib.parse import quote

from ansible.module_utils.basic import env_fallback

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
DEFAULT_TIMEOUT = 60
_CHUNK = 64 * 1024
_HEADER = struct.Struct(">BxxxL")


def docker_exec_argument_spec():
    return dict(
        docker_host=dict(type="str", fallback=(env_fallback, ["DOCKER_HOST"]), default=DEFAULT_DOCKER_HOST,
                         aliases=["docker_url"]),
        timeout=dict(type="int", default=DEFAULT_TIMEOUT),
    )


class DockerExecError(Exception):
    def __init__(self, socket_path, detail, status=None, action=None, overdue=False):
        self.socket_path = socket_path
        self.status = status
        self.detail = detail
        self.action = action
        self.overdue = overdue
        where = "unix://%s" % socket_path if str(socket_path).startswith("/") else socket_path
        parts = ["Docker engine at %s" % where]
        if action:
            parts.append(action)
        if status is not None:
            parts.append("HTTP %s" % status)
        super().__init__("%s: %s" % (", ".join(parts), detail))


def socket_path_of(docker_host):
    """The socket path of a ``unix://`` docker host; ``ValueError`` for anything else."""
    host = (docker_host or DEFAULT_DOCKER_HOST).strip()
    if not host.startswith("unix://"):
        raise ValueError("docker_host %r is not supported: only a local engine socket (unix:///path) is; "
                         "run the module on the machine whose engine holds the container" % host)
    path = host[len("unix://"):]
    if not path.startswith("/"):
        raise ValueError("docker_host %r: the socket path must be absolute (unix:///var/run/docker.sock)" % host)
    return path


class _UnixHTTPConnection(HTTPConnection):
    def __init__(self, path, timeout):
        super().__init__("localhost", timeout=timeout)
        self._socket_path = path

    def connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._socket_path)
        except BaseException:
            sock.close()
            raise
        self.sock = sock


def demux_stream(data):
    stdout, stderr = [], []
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < _HEADER.size:
            raise ValueError("truncated frame header at byte %d of %d" % (pos, size))
        kind, length = _HEADER.unpack_from(data, pos)
        pos += _HEADER.size
        if size - pos < length:
            raise ValueError("truncated frame at byte %d: %d bytes announced, %d left" % (pos, length, size - pos))
        (stderr if kind == 2 else stdout).append(data[pos:pos + length])
        pos += length
    return b"".join(stdout), b"".join(stderr)


def _engine_message(body):
    text = body.decode("utf-8", "replace").strip()
    try:
        parsed = json.loads(text)
    except ValueError:
        return text or "(empty answer)"
    if isinstance(parsed, dict) and parsed.get("message"):
        return str(parsed["message"])
    return text


def _arm(sock, deadline, per_operation):
    """Let the next socket operation wait no longer than `per_operation` nor past `deadline`;
    socket.timeout at once when the deadline has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise socket.timeout("deadline passed")
    sock.settimeout(remaining if per_operation is None else min(per_operation, remaining))


def _read_until(resp, sock, deadline, per_operation):
    """The whole body of `resp`, read in chunks, each read bounded by `deadline` (monotonic)."""
    chunks = []
    while True:
        _arm(sock, deadline, per_operation)
        chunk = resp.read1(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class DockerExecClient(object):
    def __init__(self, docker_host=DEFAULT_DOCKER_HOST, timeout=DEFAULT_TIMEOUT):
        try:
            self.socket_path = socket_path_of(docker_host)
        except ValueError as exc:
            raise DockerExecError(docker_host, str(exc)) from None
        self.timeout = timeout

    def request(self, method, path, body=None, allow_404=False, action=None, headers=None, raw=None,
                timeout=None, total_timeout=None, overdue=None):
        per_operation = timeout or self.timeout
        deadline = time.monotonic() + total_timeout if total_timeout else None
        action = action or "%s %s" % (method, path)
        sent = {"Host": "docker"}
        payload = None
        if body is not None:
            payload = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        elif raw is not None:
            payload = raw
            sent["Content-Type"] = "application/x-tar"
        sent.update(headers or {})
        conn = _UnixHTTPConnection(self.socket_path, per_operation)
        try:
            conn.request(method, path, body=payload, headers=sent)
            if deadline is None:
                resp = conn.getresponse()
                data = resp.read()
            else:
                # Kept here: the connection forgets its socket when it hands an answer that
                # lasts until the connection closes (a stream) over to `resp`.
                sock = conn.sock
                _arm(sock, deadline, per_operation)
                resp = conn.getresponse()
                data = _read_until(resp, sock, deadline, per_operation)
            status = resp.status
        except (OSError, HTTPException) as exc:
            if deadline is not None and time.monotonic() >= deadline:
                raise DockerExecError(self.socket_path, overdue or "took longer than %s s" % total_timeout,
                                      action=action, overdue=True) from None
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else (str(exc) or type(exc).__name__)
            if isinstance(exc, socket.timeout):
                reason = "no answer within %s s" % per_operation
            raise DockerExecError(self.socket_path, reason, action=action) from None
        finally:
            conn.close()
        if status == 404 and allow_404:
            return status, data
        if not 200 <= status < 300:
            raise DockerExecError(self.socket_path, _engine_message(data), status=status, action=action)
        return status, data

    def _json(self, method, path, body=None, allow_404=False, action=None):
        status, data = self.request(method, path, body, allow_404=allow_404, action=action)
        if status == 404:
            return None
        try:
            return json.loads(data.decode("utf-8")) if data else None
        except ValueError:
            raise DockerExecError(self.socket_path, "answer is not JSON: %r" % data[:200], status=status,
                                  action=action) from None

    def inspect_container(self, name):
        return self._json("GET", "/containers/%s/json" % quote(name, safe=""), allow_404=True,
                          action="inspecting container %s" % name)

    def exec_run(self, container, cmd, env=None, user=None):
        action = "exec in container %s" % container
        config = {"AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Tty": False,
                  "Cmd": list(cmd)}
        if env:
            config["Env"] = ["%s=%s" % item for item in env.items()]
        if user:
            config["User"] = user
        created = self._json("POST", "/containers/%s/exec" % quote(container, safe=""), config, action=action)
        exec_id = quote(created["Id"], safe="")
        dummy, stream = self.request("POST", "/exec/%s/start" % exec_id, {"Detach": False, "Tty": False},
                                     action=action, total_timeout=self.timeout,
                                     overdue="the command ran longer than %s s (the engine cannot stop it: it"
                                             " may still be running in the container)" % self.timeout)
        try:
            stdout, stderr = demux_stream(stream)
        except ValueError as exc:
            raise DockerExecError(self.socket_path, "unreadable output stream: %s" % exc, action=action) from None
        # The stream ends when the command does; the engine may record the exit code a moment later.
        deadline = time.monotonic() + self.timeout
        while True:
            info = self._json("GET", "/exec/%s/json" % exec_id, action=action) or {}
            if info.get("ExitCode") is not None or not info.get("Running") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        code = info.get("ExitCode")
        return (code if code is not None else -1), stdout, stderr


__all__ = ["DEFAULT_DOCKER_HOST", "DockerExecClient", "DockerExecError", "demux_stream",
           "docker_exec_argument_spec", "socket_path_of"]
