# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The work_pool module's result never shows the values of the env of the pool's base job
template (set by job_variables.env or pinned_job_variables.env; they may be secrets), while
it compares the real values: run end to end against a small stand-in of Prefect's API on
127.0.0.1."""

from __future__ import annotations

import copy
import http.server
import json
import threading

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.module_utils import masking
from ansible_collections.selfhosted.prefect.plugins.modules import work_pool

SECRET, OTHER_SECRET = "s3cr3t-T0KEN-value", "n3w-s3cr3t-T0KEN"

PROCESS_TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}", "labels": "{{ labels }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "title": "Command"},
            "env": {"type": "object", "title": "Environment Variables", "additionalProperties": {"type": "string"}},
            "labels": {"type": "object", "title": "Labels"},
        },
    },
}
METADATA = {"prefect": {"process": {"type": "process", "default_base_job_configuration": PROCESS_TEMPLATE}}}


class FakePrefect(http.server.BaseHTTPRequestHandler):
    """Just what the work_pool module asks; ``server.pools`` holds the pools as stored."""

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
        if self.path == "/api/admin/version":
            return self._reply(200, "3.9.1")
        if self.path == "/api/collections/views/aggregate-worker-metadata":
            return self._reply(200, METADATA)
        name = self.path[len("/api/work_pools/"):]
        if self.path.startswith("/api/work_pools/") and name in self.server.pools:
            return self._reply(200, self.server.pools[name])
        return self._reply(404, {"detail": "Not found"})

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        body = self._body()
        if self.path == "/api/work_pools/":
            pool = {"description": None, "is_paused": False, "concurrency_limit": None, "base_job_template": {},
                    "status": "NOT_READY"}
            pool.update(body)
            self.server.pools[body["name"]] = pool
            return self._reply(201, pool)
        if self.path.endswith("/queues/filter"):
            queue = {"name": "default", "description": "The work pool's default queue.", "priority": 1,
                     "concurrency_limit": None, "is_paused": False}
            return self._reply(200, [queue] if body.get("offset") == 0 else [])
        return self._reply(404, {"detail": "Not found"})

    def do_PATCH(self):  # noqa: N802  pylint: disable=invalid-name
        self.server.patches.append(self._body())
        self.server.pools[self.path[len("/api/work_pools/"):]].update(self.server.patches[-1])
        return self._reply(204)

    def do_DELETE(self):  # noqa: N802  pylint: disable=invalid-name
        found = self.server.pools.pop(self.path[len("/api/work_pools/"):], None)
        return self._reply(204) if found else self._reply(404, {"detail": "Not found"})

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def prefect():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrefect)
    server.pools, server.patches = {}, []
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.api_url = "http://127.0.0.1:%d/api" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def run(capsys, prefect, **args):
    args.update(api_url=prefect.api_url, type="process", _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            work_pool.main()
    result = json.loads(capsys.readouterr().out)
    assert not result.get("failed"), result.get("msg")
    return result


def template_of(result_or_pool):
    return (result_or_pool.get("work_pool") or result_or_pool)["base_job_template"]


def test_env_default_values_are_masked_in_result_diff_and_invocation(prefect, capsys):
    env = {"API_TOKEN": SECRET, "TZ": "Europe/Paris"}
    created = run(capsys, prefect, name="pool", job_variables={"env": env})
    assert template_of(prefect.pools["pool"])["variables"]["properties"]["env"]["default"] == env
    text = json.dumps(created)
    assert SECRET not in text and "Europe/Paris" not in text
    assert created["changed"] is True
    assert template_of(created)["variables"]["properties"]["env"]["default"] == {"API_TOKEN": "********",
                                                                                 "TZ": "********"}
    # The rest of the template stays readable.
    assert template_of(created)["job_configuration"] == PROCESS_TEMPLATE["job_configuration"]
    assert template_of(created)["variables"]["properties"]["env"]["title"] == "Environment Variables"
    assert template_of(created["diff"]["after"])["variables"]["properties"]["env"]["default"] == {
        "API_TOKEN": "******** (changed)", "TZ": "******** (changed)"}
    assert created["invocation"]["module_args"]["job_variables"] == {"env": {"API_TOKEN": "********",
                                                                             "TZ": "********"}}

    same = run(capsys, prefect, name="pool", job_variables={"env": env})
    assert same["changed"] is False and not prefect.patches and SECRET not in json.dumps(same)

    rotated = run(capsys, prefect, name="pool", job_variables={"env": dict(env, API_TOKEN=OTHER_SECRET)})
    assert template_of(prefect.pools["pool"])["variables"]["properties"]["env"]["default"]["API_TOKEN"] == OTHER_SECRET
    text = json.dumps(rotated)
    assert rotated["changed"] is True and SECRET not in text and OTHER_SECRET not in text
    assert template_of(rotated["diff"]["before"])["variables"]["properties"]["env"]["default"] == {
        "API_TOKEN": "********", "TZ": "********"}
    assert template_of(rotated["diff"]["after"])["variables"]["properties"]["env"]["default"] == {
        "API_TOKEN": "******** (changed)", "TZ": "********"}


def test_pinned_env_values_are_masked(prefect, capsys):
    pinned = {"env": {"API_TOKEN": SECRET}, "labels": {"team": "data"}}
    created = run(capsys, prefect, name="pinned", pinned_job_variables=pinned)
    assert template_of(prefect.pools["pinned"])["job_configuration"]["env"] == {"API_TOKEN": SECRET}
    assert SECRET not in json.dumps(created)
    assert template_of(created)["job_configuration"]["env"] == {"API_TOKEN": "********"}
    assert template_of(created)["job_configuration"]["labels"] == {"team": "data"}
    assert template_of(created["diff"]["after"])["job_configuration"]["env"] == {"API_TOKEN": "******** (changed)"}
    assert created["invocation"]["module_args"]["pinned_job_variables"] == {"env": {"API_TOKEN": "********"},
                                                                            "labels": {"team": "data"}}

    same = run(capsys, prefect, name="pinned", pinned_job_variables=pinned)
    assert same["changed"] is False and not prefect.patches

    removed = run(capsys, prefect, name="pinned", state="absent")
    assert removed["changed"] is True and SECRET not in json.dumps(removed)
    assert template_of(removed["diff"]["before"])["job_configuration"]["env"] == {"API_TOKEN": "********"}


def test_given_template_env_is_masked_in_check_mode_and_invocation(prefect, capsys):
    template = copy.deepcopy(PROCESS_TEMPLATE)
    template["variables"]["properties"]["env"]["default"] = {"API_TOKEN": SECRET}
    template["job_configuration"]["env"] = {"DB_PASSWORD": OTHER_SECRET, "FROM_VARIABLE": "{{ env }}"}
    predicted = run(capsys, prefect, name="given", base_job_template=template, _ansible_check_mode=True)
    text = json.dumps(predicted)
    assert SECRET not in text and OTHER_SECRET not in text and not prefect.pools
    assert template_of(predicted)["job_configuration"]["env"] == {"DB_PASSWORD": "********",
                                                                  "FROM_VARIABLE": "********"}
    assert predicted["invocation"]["module_args"]["base_job_template"]["variables"]["properties"]["env"] == {
        "type": "object", "title": "Environment Variables", "additionalProperties": {"type": "string"},
        "default": {"API_TOKEN": "********"}}


def test_env_values_are_not_logged_on_the_target(monkeypatch):
    seen = {}

    def fake_log(self, msg, log_args=None):  # pylint: disable=unused-argument
        seen["msg"] = msg

    monkeypatch.setattr(masking.AnsibleModule, "log", fake_log)
    args = {"name": "pool", "job_variables": {"env": {"API_TOKEN": SECRET}}, "pinned_job_variables": {"x": 1}}
    with patch_module_args(args):
        module = masking.MaskedArgsModule(argument_spec=dict(
            name=dict(type="str"), job_variables=dict(type="dict"), pinned_job_variables=dict(type="dict")),
            masked_paths=work_pool.ARGUMENT_ENV_PATHS)
    assert "API_TOKEN" in seen["msg"] and SECRET not in seen["msg"]
    assert module.params["job_variables"]["env"]["API_TOKEN"] == SECRET


@pytest.mark.parametrize("before, after, expected", [
    (None, None, (None, None)),
    ({}, {}, ({}, {})),
    ({"a": {"env": "{{ env }}"}}, {"a": {"env": {"K": "v"}}},
     ({"a": {"env": "{{ env }}"}}, {"a": {"env": {"K": "******** (changed)"}}})),
    ({"a": {"env": {"K": "v", "L": "w"}}}, {"a": {"env": {"K": "v", "M": "w"}}},
     ({"a": {"env": {"K": "********", "L": "********"}}},
      {"a": {"env": {"K": "********", "M": "******** (changed)"}}})),
    ({"a": {"env": {"K": "v"}}}, {}, ({"a": {"env": {"K": "********"}}}, {})),
])
def test_masked_changes_pair_keeps_names(before, after, expected):
    assert masking.masked_changes_pair(before, after, [("a", "env", "*")]) == expected
