# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures for integration tests: a real Prefect server and a way to run modules as Ansible does.

Fixtures (reuse them from any tests/integration/test_*.py):

``prefect_server`` (session)
    A real ``prefect server start`` from this venv on a free 127.0.0.1 port, with a
    temporary PREFECT_HOME, SQLite and basic auth on. Attributes: ``api_url``
    (``http://127.0.0.1:PORT/api``), ``auth_string`` (``admin:<random>``),
    ``home``, ``log_path``; methods ``client(**kw)`` (a ``PrefectClient`` for
    checking state over the API), ``module_args()`` (``{"api_url", "api_auth_string"}``)
    and ``run_module(...)`` (see below).
    Set PREFECT_TEST_API_URL and PREFECT_TEST_AUTH_STRING to use an already running
    server instead.

``prefect_api`` (session)
    ``prefect_server.client()``.

``run_module`` (function)
    ``run_module(name, args, check=False, diff=False, connect=True, env=None,
    timeout=300) -> dict``: runs ``ansible localhost -m selfhosted.prefect.<name>
    -a <json>`` with the collection resolvable as ``selfhosted.prefect`` and returns
    the module's result dict as Ansible saw it (including ``diff`` and ``failed``),
    plus ``_rc``, ``_stdout``, ``_stderr``, ``_elapsed``. With ``connect`` the
    server's ``api_url``/``api_auth_string`` are added unless ``args`` sets them.
    Strings holding ``{{``/``{%`` are wrapped in ``{% raw %}`` so Ansible passes them
    through untemplated. The module runs under /usr/bin/python3 (which has no
    ``prefect`` package) when it exists, or PREFECT_TEST_MODULE_PYTHON.

``unique_name`` (function)
    ``unique_name("pool")`` -> ``"pool-<test>-<random>"``, lower case, safe for Prefect names.

``assert_no_secret`` (function)
    ``assert_no_secret(result, *values)`` fails if any value appears anywhere in a
    ``run_module`` result (result JSON, diff, stdout, stderr).

``unreachable_api_url`` (function)
    ``http://127.0.0.1:<free port>/api``, where nothing listens.

``free_port()`` (plain function)
    A TCP port free on 127.0.0.1 right now.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

COLLECTION_ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 180


def _collections_path(base):
    """A directory D such that D/ansible_collections/selfhosted/prefect is this collection."""
    parents = COLLECTION_ROOT.parents
    if COLLECTION_ROOT.name == "prefect" and parents[0].name == "selfhosted" and parents[1].name == "ansible_collections":
        return parents[2]
    link_parent = Path(base) / "ansible_collections" / "selfhosted"
    link_parent.mkdir(parents=True, exist_ok=True)
    link = link_parent / "prefect"
    if not link.exists():
        link.symlink_to(COLLECTION_ROOT, target_is_directory=True)
    return Path(base)


_COLLECTIONS_BASE = tempfile.mkdtemp(prefix="selfhosted-prefect-colls-")
COLLECTIONS_PATH = _collections_path(_COLLECTIONS_BASE)
if str(COLLECTIONS_PATH) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_PATH))

# pylint: disable=wrong-import-position
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import PrefectClient  # noqa: E402


# A stdout callback that writes every task result (as Ansible's callbacks see it,
# `diff` included) as JSON lines to $JSON_CAPTURE_FILE and prints them too.
_CAPTURE_CALLBACK = '''
from __future__ import annotations

DOCUMENTATION = """
name: json_capture
type: stdout
short_description: test helper, task results as JSON lines
description: test helper
"""

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json_capture"

    def _record(self, result, status):
        data = dict(getattr(result, "result", None) or result._result)
        data["_status"] = status
        line = json.dumps(data, default=str, sort_keys=True)
        with open(os.environ["JSON_CAPTURE_FILE"], "a") as handle:
            handle.write(line + "\\n")
        self._display.display(line)

    def v2_runner_on_ok(self, result):
        self._record(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")
'''


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _raw_jinja(value):
    """Wrap strings holding Jinja markers so that Ansible does not template them."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return "{% raw %}" + value + "{% endraw %}"
    if isinstance(value, dict):
        return {k: _raw_jinja(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_raw_jinja(v) for v in value]
    return value


class ModuleRunner:
    """Runs collection modules through the real `ansible` ad-hoc command."""

    def __init__(self, workdir, default_args=None):
        self.workdir = Path(workdir)
        self.default_args = default_args or {}
        self.callback_dir = self.workdir / "callback_plugins"
        self.callback_dir.mkdir(parents=True, exist_ok=True)
        (self.callback_dir / "json_capture.py").write_text(_CAPTURE_CALLBACK)
        self.python = os.environ.get("PREFECT_TEST_MODULE_PYTHON") or (
            "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable)
        self._count = 0

    def run(self, name, args=None, check=False, diff=False, connect=True, env=None, timeout=300):
        fqcn = name if "." in name else "selfhosted.prefect.%s" % name
        module_args = dict(self.default_args) if connect else {}
        module_args.update(args or {})
        self._count += 1
        capture = self.workdir / ("result-%d.jsonl" % self._count)
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ANSIBLE_"))}
        run_env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH),
            "ANSIBLE_CALLBACK_PLUGINS": str(self.callback_dir),
            "ANSIBLE_STDOUT_CALLBACK": "json_capture",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.workdir / "tmp-remote"),
            "ANSIBLE_HOME": str(self.workdir / "ansible-home"),
            "JSON_CAPTURE_FILE": str(capture),
            # The deployment module's flow cache: per test session, never the user's ~/.cache.
            "XDG_CACHE_HOME": str(self.workdir / "xdg-cache"),
        })
        run_env.update(env or {})
        cmd = [str(VENV_BIN / "ansible"), "localhost", "-m", fqcn,
               "-e", "ansible_python_interpreter=%s" % self.python]
        if module_args:
            cmd += ["-a", json.dumps(_raw_jinja(module_args))]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        start = time.monotonic()
        proc = subprocess.run(cmd, cwd=str(self.workdir), env=run_env, capture_output=True, text=True,
                              timeout=timeout, check=False)
        elapsed = time.monotonic() - start
        results = []
        if capture.exists():
            results = [json.loads(line) for line in capture.read_text().splitlines() if line.strip()]
        if not results:
            raise AssertionError("ansible produced no task result (rc=%s)\nstdout:\n%s\nstderr:\n%s"
                                 % (proc.returncode, proc.stdout, proc.stderr))
        result = results[-1]
        result["_rc"] = proc.returncode
        result["_stdout"] = proc.stdout
        result["_stderr"] = proc.stderr
        result["_elapsed"] = elapsed
        result["failed"] = bool(result.get("failed")) or result["_status"] in ("failed", "unreachable")
        result.setdefault("changed", False)
        return result


class PrefectServer:
    """A running Prefect server (see the module docstring)."""

    def __init__(self, api_url, auth_string, home=None, log_path=None, process=None):
        self.api_url = api_url
        self.auth_string = auth_string
        self.home = home
        self.log_path = log_path
        self.process = process
        self.runner = None

    @property
    def port(self):
        return int(re.search(r":(\d+)/", self.api_url).group(1))

    def client(self, **kwargs):
        options = dict(api_url=self.api_url, auth_string=self.auth_string, retries=3, retry_timeout=30)
        options.update(kwargs)
        return PrefectClient(**options)

    def module_args(self):
        return {"api_url": self.api_url, "api_auth_string": self.auth_string}

    def run_module(self, name, args=None, check=False, diff=False, connect=True, env=None, timeout=300):
        return self.runner.run(name, args, check=check, diff=diff, connect=connect, env=env, timeout=timeout)

    def log_tail(self, lines=60):
        if not self.log_path or not Path(self.log_path).exists():
            return ""
        return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])


def _wait_ready(api_url, process, deadline):
    last = None
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return "server exited with code %s" % process.returncode
        try:
            with urllib.request.urlopen(api_url + "/ready", timeout=5) as resp:
                if resp.status == 200:
                    return None
        except (urllib.error.URLError, OSError) as exc:
            last = exc
        time.sleep(0.5)
    return "not ready after %ss (last error: %s)" % (SERVER_START_TIMEOUT, last)


def _start_server(tmp_root):
    home = tmp_root / "prefect-home"
    home.mkdir()
    port = free_port()
    auth_string = "admin:%s" % secrets.token_urlsafe(18)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update({
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_API_AUTH_STRING": auth_string,
        "PREFECT_SERVER_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///%s" % (home / "prefect.db"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "PREFECT_SERVER_UI_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": "127.0.0.1",
    })
    log_path = tmp_root / "server.log"
    log = open(log_path, "wb")  # pylint: disable=consider-using-with
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(tmp_root),
    )
    server = PrefectServer("http://127.0.0.1:%d/api" % port, auth_string, home=home, log_path=log_path,
                           process=process)
    server._log_handle = log  # pylint: disable=protected-access
    return server


def _stop_server(server):
    process = server.process
    if process is None:
        return
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    server._log_handle.close()  # pylint: disable=protected-access


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    tmp_root = tmp_path_factory.mktemp("prefect-server")
    external_url = os.environ.get("PREFECT_TEST_API_URL")
    if external_url:
        server = PrefectServer(external_url.rstrip("/"), os.environ.get("PREFECT_TEST_AUTH_STRING"))
    else:
        server = _start_server(tmp_root)
    try:
        if server.process is not None:
            problem = _wait_ready(server.api_url, server.process, time.monotonic() + SERVER_START_TIMEOUT)
            if problem:
                raise RuntimeError("Prefect server did not start: %s\n%s" % (problem, server.log_tail()))
        server.runner = ModuleRunner(tmp_root / "ansible", default_args=server.module_args())
        yield server
    finally:
        _stop_server(server)
        shutil.rmtree(_COLLECTIONS_BASE, ignore_errors=True)


@pytest.fixture(scope="session")
def prefect_api(prefect_server):
    return prefect_server.client()


@pytest.fixture
def run_module(prefect_server):
    return prefect_server.run_module


@pytest.fixture
def unreachable_api_url():
    """An API URL on 127.0.0.1 where nothing listens."""
    return "http://127.0.0.1:%d/api" % free_port()


@pytest.fixture
def unique_name(request):
    def make(prefix):
        test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:30]
        return "%s-%s-%s" % (prefix, test, secrets.token_hex(3))
    return make


def _assert_secret_absent(result, *secret_values):
    blob = json.dumps(result, default=str)
    for value in secret_values:
        if value:
            assert value not in blob, "a secret value leaked into the module output"


@pytest.fixture
def assert_no_secret():
    """``assert_no_secret(result, *values)``: fail if any value appears anywhere in a
    run_module result (result JSON, diff, stdout, stderr)."""
    return _assert_secret_absent


# S3 server, workers and sample flows for the deployment/flow_run tests (shared by every module).
from fixtures_s3_worker import flows_dir, prefect_worker, s3_server  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
