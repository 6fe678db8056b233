# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The flow_run module end to end against a small stand-in of Prefect's API on 127.0.0.1.

The stand-in does what Prefect's ``POST /deployments/{id}/create_flow_run`` does with an
``idempotency_key`` (the run already made with that key is answered again) and can lose
the answer of a creation it has applied (the connection is closed before the reply), as a
proxy timing out or a network cut would.
"""

from __future__ import annotations

import http.server
import json
import threading
import uuid

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.modules import flow_run

DEPLOYMENT = {"id": "5b1f4a7e-5d2f-4e0b-9a54-3f3f9b0b8c11", "name": "nightly", "flow_id": "f-1",
              "work_pool_name": "pool"}
SECRET = "s3cr3t-T0KEN-value"


class FakePrefect(http.server.BaseHTTPRequestHandler):
    """Answers what flow_run asks; ``server.runs`` holds the runs it created."""

    def _reply(self, status, payload):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802  pylint: disable=invalid-name
        if self.path == "/api/admin/version":
            return self._reply(200, "3.9.1")
        if self.path == "/api/deployments/name/weather/nightly":
            return self._reply(200, DEPLOYMENT)
        return self._reply(404, {"detail": "Not found"})

    def do_POST(self):  # noqa: N802  pylint: disable=invalid-name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        server = self.server
        if self.path == "/api/flow_runs/filter":
            keys = body["flow_runs"]["idempotency_key"]["any_"]
            return self._reply(200, [r for r in server.runs if r["idempotency_key"] in keys])
        if self.path != "/api/deployments/%s/create_flow_run" % DEPLOYMENT["id"]:
            return self._reply(404, {"detail": "Not found"})
        server.create_requests.append(body)
        key = body.get("idempotency_key")
        run = next((r for r in server.runs if key is not None and r["idempotency_key"] == key), None)
        status = 200
        if run is None:
            status = 201
            run = {"id": str(uuid.uuid4()), "name": "run-%d" % (len(server.runs) + 1), "idempotency_key": key,
                   "deployment_id": DEPLOYMENT["id"], "parameters": body.get("parameters") or {},
                   "job_variables": body.get("job_variables") or {},
                   "state": {"type": "SCHEDULED", "name": "Scheduled"}}
            server.runs.append(run)
        if server.lose_answers > 0:
            # applied, but the client never hears of it
            server.lose_answers -= 1
            self.close_connection = True
            return None
        return self._reply(status, run)

    def log_message(self, *args):  # quiet
        pass


@pytest.fixture
def prefect():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrefect)
    server.runs, server.create_requests, server.lose_answers = [], [], 0
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.api_url = "http://127.0.0.1:%d/api" % server.server_address[1]
    yield server
    server.shutdown()
    server.server_close()


def run_module(capsys, args):
    """Runs the module's main(); returns its JSON result."""
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            flow_run.main()
    return json.loads(capsys.readouterr().out)


def test_a_lost_answer_does_not_start_a_second_run(prefect, capsys):
    prefect.lose_answers = 1
    result = run_module(capsys, {"api_url": prefect.api_url, "deployment": "weather/nightly", "retries": 2})
    assert not result.get("failed"), result.get("msg")
    # the creation was sent twice (the first answer was lost), the server made one run
    assert len(prefect.create_requests) == 2 and len(prefect.runs) == 1
    first, second = prefect.create_requests
    assert first["idempotency_key"] == second["idempotency_key"]
    assert first["idempotency_key"].startswith("ansible-")
    assert result["changed"] is True and result["flow_run_id"] == prefect.runs[0]["id"]
    assert result["flow_run"]["idempotency_key"] == first["idempotency_key"]


def test_each_invocation_generates_its_own_key(prefect, capsys):
    args = {"api_url": prefect.api_url, "deployment": "weather/nightly"}
    one, two = run_module(capsys, args), run_module(capsys, args)
    assert one["flow_run_id"] != two["flow_run_id"] and len(prefect.runs) == 2
    assert len(set(r["idempotency_key"] for r in prefect.create_requests)) == 2


def test_a_given_key_is_sent_and_finds_the_existing_run(prefect, capsys):
    args = {"api_url": prefect.api_url, "deployment": "weather/nightly", "idempotency_key": "backfill-2024-01"}
    first = run_module(capsys, args)
    again = run_module(capsys, args)
    assert [r["idempotency_key"] for r in prefect.create_requests] == ["backfill-2024-01"]
    assert first["changed"] is True and again["changed"] is False
    assert again["flow_run_id"] == first["flow_run_id"]


def test_run_environment_values_are_not_in_the_result(prefect, capsys):
    result = run_module(capsys, {
        "api_url": prefect.api_url, "deployment": "weather/nightly",
        "job_variables": {"env": {"API_TOKEN": SECRET, "TZ": "Europe/Paris"}, "image": "flows:1"}})
    # the server got the values; the result shows the names only
    assert prefect.runs[0]["job_variables"]["env"]["API_TOKEN"] == SECRET
    assert SECRET not in json.dumps(result) and "Europe/Paris" not in json.dumps(result)
    assert result["flow_run"]["job_variables"] == {"env": {"API_TOKEN": "********", "TZ": "********"},
                                                   "image": "flows:1"}
    assert result["invocation"]["module_args"]["job_variables"]["env"] == {"API_TOKEN": "********",
                                                                           "TZ": "********"}
