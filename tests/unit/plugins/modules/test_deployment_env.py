# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deployment module's result never shows the values of job_variables.env (they may be
secrets): run end to end against a small stand-in of Prefect's API on 127.0.0.1."""

from __future__ import annotations

import http.server
import json
import threading
import uuid

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.modules import deployment

SECRET, OTHER_SECRET = "s3cr3t-T0KEN-value", "n3w-s3cr3t-T0KEN"


class FakePrefect(http.server.BaseHTTPRequestHandler):
    """Just what the deployment module asks when it creates or updates a deployment."""

    def _reply(self, status, payload=None):
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self):
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        stored = self.server.deployment
        answers = {
            "/api/admin/version": "3.9.1",
            "/api/work_pools/pool": {"name": "pool", "type": "process"},
            "/api/flows/name/weather": self.server.flow,
            "/api/deployments/name/weather/nightly": stored,
        }
        found = answers.get(self.path)
        return self._reply(200, found) if found is not None else self._reply(404, {"detail": "Not found"})

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        body = self._body()
        if self.path == "/api/flows/":
            self.server.flow = self.server.flow or {"id": str(uuid.uuid4()), "name": body["name"]}
            return self._reply(200, self.server.flow)
        if self.path == "/api/deployments/":
            self.server.deployment = dict(body, id=str(uuid.uuid4()), schedules=[])
            return self._reply(201, self.server.deployment)
        return self._reply(404, {"detail": "Not found"})

    def do_PATCH(self):  # noqa: N802  pylint: disable=invalid-name
        self.server.deployment.update(self._body())
        return self._reply(204)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def prefect():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrefect)
    server.flow, server.deployment = None, None
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.api_url = "http://127.0.0.1:%d/api" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def run(capsys, prefect, tmp_path, env):
    (tmp_path / "weather.py").write_text("x = 1\n")
    args = {"api_url": prefect.api_url, "name": "nightly", "flow_name": "weather", "entrypoint": "weather.py:weather",
            "parameter_openapi_schema": {"type": "object", "properties": {}},
            "source": {"type": "local", "path": str(tmp_path)}, "work_pool_name": "pool",
            "job_variables": {"env": env, "image": "flows:1"}, "_ansible_diff": True}
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            deployment.main()
    result = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result.get("msg")
    return result


def test_env_values_are_masked_in_result_diff_and_invocation(prefect, tmp_path, capsys):
    created = run(capsys, prefect, tmp_path, {"API_TOKEN": SECRET, "TZ": "Europe/Paris"})
    assert prefect.deployment["job_variables"]["env"] == {"API_TOKEN": SECRET, "TZ": "Europe/Paris"}
    text = json.dumps(created)
    assert SECRET not in text and "Europe/Paris" not in text
    assert created["changed"] is True
    assert created["deployment"]["job_variables"] == {"env": {"API_TOKEN": "********", "TZ": "********"},
                                                      "image": "flows:1"}
    assert created["diff"]["after"]["job_variables"]["env"] == {"API_TOKEN": "******** (changed)",
                                                                "TZ": "******** (changed)"}
    assert created["invocation"]["module_args"]["job_variables"]["env"] == {"API_TOKEN": "********",
                                                                            "TZ": "********"}

    same = run(capsys, prefect, tmp_path, {"API_TOKEN": SECRET, "TZ": "Europe/Paris"})
    assert same["changed"] is False and SECRET not in json.dumps(same)

    rotated = run(capsys, prefect, tmp_path, {"API_TOKEN": OTHER_SECRET, "TZ": "Europe/Paris"})
    assert prefect.deployment["job_variables"]["env"]["API_TOKEN"] == OTHER_SECRET
    text = json.dumps(rotated)
    assert rotated["changed"] is True and SECRET not in text and OTHER_SECRET not in text
    assert rotated["diff"]["before"]["job_variables"]["env"] == {"API_TOKEN": "********", "TZ": "********"}
    assert rotated["diff"]["after"]["job_variables"]["env"] == {"API_TOKEN": "******** (changed)", "TZ": "********"}


@pytest.mark.parametrize("view", [None, {}, {"job_variables": None}, {"job_variables": {"env": "{{ env }}"}},
                                  {"job_variables": {"image": "x"}}])
def test_views_without_an_env_dict_are_kept(view):
    assert deployment.masked_env_pair(view, view) == (view, view)
