#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: flow_run
short_description: Start a run of a Prefect 3 deployment and optionally wait for its end
version_added: 0.1.0
description:
  - Creates a flow run of a deployment (named C(flow/deployment), or by id) with parameters, as
    C(prefect deployment run) does. A worker of the deployment's work pool then runs it.
  - With O(wait=true), polls the run until it reaches a final state (C(Completed), C(Failed),
    C(Crashed) or C(Cancelled)) and, with O(fail_on_failure=true), fails unless it C(Completed).
  - Starting a run is an action, not a state, so every call starts a new run and reports a change,
    unless O(idempotency_key) names a run that already exists.
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
attributes:
  check_mode:
    support: full
    details:
      - No run is started. The module checks that the deployment exists and reports a change,
        or no change when O(idempotency_key) names an existing run.
  diff_mode:
    support: none
    details:
      - Starting a run has no before and after to compare.
  idempotent:
    support: partial
    details:
      - Not idempotent by nature, each call starts a new run.
      - With O(idempotency_key), a second call with the same key finds the first run and reports
        no change.
options:
  deployment:
    description:
      - The deployment, as C(flow_name/deployment_name) or as its id.
    type: str
    required: true
  parameters:
    description:
      - Parameter values of the run, over the deployment's default parameters.
    type: dict
  job_variables:
    description:
      - Job variables of this run, over the deployment's.
    type: dict
  tags:
    description:
      - Tags added to the deployment's tags for this run.
    type: list
    elements: str
  run_name:
    description:
      - Name of the run. The server makes one up when not set.
    type: str
  work_queue_name:
    description:
      - Work queue of the deployment's pool to send the run to, instead of the deployment's.
    type: str
  idempotency_key:
    description:
      - A key unique to this run of this flow. When a run with this key already exists, no new run is
        started and the existing one is returned (and waited for with O(wait)).
    type: str
  wait:
    description:
      - Wait until the run reaches a final state.
    type: bool
    default: false
  wait_timeout:
    description:
      - Seconds to wait with O(wait=true). When they pass the module fails and the run goes on.
    type: int
    default: 600
  poll_interval:
    description:
      - Seconds between two reads of the run's state while waiting.
    type: float
    default: 2.0
  fail_on_failure:
    description:
      - With O(wait=true), fail when the final state is not C(Completed).
    type: bool
    default: true
  log_lines:
    description:
      - With O(wait=true), how many of the run's last log lines to return (V(0) for none).
    type: int
    default: 20
notes:
  - A worker must poll the deployment's work pool for the run to start; otherwise it stays
    C(Scheduled) and O(wait=true) ends with a timeout.
  - The run is always created with an idempotency key, O(idempotency_key) or, when it is not set,
    one generated for this invocation of the module (C(ansible-) followed by a random UUID, in the
    C(idempotency_key) of RV(flow_run)). The server answers a second creation with the same key with
    the run the first one made, so the module may repeat a creation whose answer was lost (a timeout,
    a reset connection, an HTTP 5xx) without starting a second run.
  - The values of the run's C(job_variables.env) are masked in the result (the names stay), as they
    may hold secrets.
seealso:
  - module: selfhosted.prefect.deployment
"""

EXAMPLES = r"""
- name: Run the weather flow for Lyon and wait for it
  selfhosted.prefect.flow_run:
    deployment: weather/three-times-a-day
    parameters:
      city: Lyon
    wait: true
    wait_timeout: 300
  register: run

- name: Show how it ended
  ansible.builtin.debug:
    msg: "{{ run.flow_run.name }} ended {{ run.state }}"

- name: Start the nightly backfill once, whatever the number of playbook runs
  selfhosted.prefect.flow_run:
    deployment: weather/backfill
    idempotency_key: backfill-2024-01
"""

RETURN = r"""
flow_run_id:
  description: Id of the run (None in check mode when no run exists yet).
  returned: always
  type: str
  sample: 5b1f4a7e-5d2f-4e0b-9a54-3f3f9b0b8c11
state:
  description: Name of the run's state at the end (C(Scheduled) right after creation without O(wait)).
  returned: always
  type: str
  sample: Completed
state_type:
  description: Type of the run's state (C(SCHEDULED), C(PENDING), C(RUNNING), C(COMPLETED), C(FAILED),
    C(CRASHED), C(CANCELLED)...).
  returned: always
  type: str
  sample: COMPLETED
final:
  description: Whether the run reached a final state.
  returned: always
  type: bool
flow_run:
  description:
    - The run as the server returns it (id, name, state, parameters, deployment_id, idempotency_key,
      start/end times...).
    - The values of C(job_variables.env) are masked.
  returned: always
  type: dict
deployment_id:
  description: Id of the deployment.
  returned: always
  type: str
logs:
  description: The last log messages of the run, oldest first, with O(wait=true).
  returned: when O(wait=true) and the run has logs
  type: list
  elements: str
elapsed:
  description: Seconds spent waiting.
  returned: when O(wait=true)
  type: float
"""

import re
import time
import uuid

from urllib.parse import quote

from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.masking import (
    JOB_VARIABLES_ENV,
    MaskedArgsModule,
    mask_secrets,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import prefect_api_argument_spec

FINAL_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Module option -> field of the create_flow_run body.
RUN_FIELDS = (("parameters", "parameters"), ("job_variables", "job_variables"), ("tags", "tags"),
              ("run_name", "name"), ("work_queue_name", "work_queue_name"), ("idempotency_key", "idempotency_key"))
# The values of a run's environment may be secrets: the result shows their names only.
ENV_PATHS = [JOB_VARIABLES_ENV]


def generated_idempotency_key():
    """A key of its own for a run this module invocation creates (see the notes)."""
    return "ansible-%s" % uuid.uuid4()


def masked_run(flow_run):
    """The run for the result: the values of job_variables.env masked."""
    return mask_secrets(flow_run, ENV_PATHS) if isinstance(flow_run, dict) else flow_run


def state_of(flow_run):
    state = (flow_run or {}).get("state") or {}
    return state.get("type") or (flow_run or {}).get("state_type"), state.get("name") or (flow_run or {}).get("state_name")


class FlowRunManager(PrefectManager):
    """Starts a flow run of a deployment (once per idempotency key) and optionally waits for it."""

    def find_deployment(self, ref):
        if UUID_RE.match(ref):
            deployment = self.client.get_or_none("/deployments/%s" % ref)
        elif ref.count("/") == 1 and all(ref.split("/")):
            flow_name, name = ref.split("/")
            deployment = self.client.get_or_none("/deployments/name/%s/%s"
                                                 % (quote(flow_name, safe=""), quote(name, safe="")))
        else:
            self.fail("deployment %r must be flow_name/deployment_name or a deployment id" % ref)
        if deployment is None:
            self.fail("deployment %r not found on the Prefect server" % ref)
        return deployment

    def find_by_idempotency_key(self, deployment, key):
        runs = self.client.post("/flow_runs/filter", {
            "flow_runs": {"idempotency_key": {"any_": [key]}},
            "deployments": {"id": {"any_": [deployment["id"]]}},
            "limit": 1,
        })
        return runs[0] if runs else None

    def read_logs(self, flow_run_id):
        count = self.params["log_lines"]
        if count <= 0:
            return []
        logs = self.client.post("/logs/filter", {
            "logs": {"flow_run_id": {"any_": [flow_run_id]}},
            "sort": "TIMESTAMP_DESC",
            "limit": count,
        }) or []
        return [entry.get("message", "") for entry in reversed(logs)]

    def run(self):
        p = self.params
        deployment = self.find_deployment(p["deployment"])
        existing = None
        if p.get("idempotency_key"):
            existing = self.find_by_idempotency_key(deployment, p["idempotency_key"])
        result = self.result(existing is None, deployment_id=deployment["id"])

        if self.check_mode and existing is None:
            result.update(flow_run_id=None, flow_run={}, state=None, state_type=None, final=False)
            return result

        if existing is None:
            body = dict((field, p[option]) for option, field in RUN_FIELDS if p.get(option) is not None)
            # With a key the server makes one run however many times the request arrives, so the
            # client may repeat it after an error that leaves its fate unknown.
            body.setdefault("idempotency_key", generated_idempotency_key())
            flow_run = self.client.post("/deployments/%s/create_flow_run" % deployment["id"], body,
                                        idempotent=True)
        else:
            flow_run = existing

        if p["wait"] and not self.check_mode:
            flow_run = self.wait(flow_run, deployment, result)

        state_type, state_name = state_of(flow_run)
        result.update(flow_run_id=flow_run["id"], flow_run=masked_run(flow_run), state=state_name,
                      state_type=state_type, final=state_type in FINAL_STATES)
        if p["wait"] and p["fail_on_failure"] and state_type != "COMPLETED" and not self.check_mode:
            message = ((flow_run.get("state") or {}).get("message") or "").strip()
            self.fail("flow run %s (%s) of %s ended %s%s" % (
                flow_run.get("name"), flow_run["id"], p["deployment"], state_name,
                (": " + message) if message else ""), **result)
        return result

    def wait(self, flow_run, deployment, result):
        """Poll until the run is final; fail with its last logs on timeout. Adds elapsed and logs."""
        p = self.params
        start = time.monotonic()
        deadline = start + max(0, p["wait_timeout"])
        interval = max(0.2, p["poll_interval"])
        while True:
            state_type, _name = state_of(flow_run)
            if state_type in FINAL_STATES:
                break
            if time.monotonic() >= deadline:
                result.update(flow_run_id=flow_run["id"], flow_run=masked_run(flow_run),
                              state=state_of(flow_run)[1], state_type=state_type, final=False,
                              elapsed=round(time.monotonic() - start, 1),
                              logs=self.read_logs(flow_run["id"]))
                msg = ("flow run %s (%s) of %s did not end within %ss: it is still %s (is a worker polling work"
                       " pool %r?)" % (flow_run.get("name"), flow_run["id"], p["deployment"], p["wait_timeout"],
                                       state_of(flow_run)[1], deployment.get("work_pool_name")))
                self.fail(msg, **result)
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            flow_run = self.client.get("/flow_runs/%s" % flow_run["id"])
        result["elapsed"] = round(time.monotonic() - start, 1)
        result["logs"] = self.read_logs(flow_run["id"])
        return flow_run


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        deployment=dict(type="str", required=True),
        parameters=dict(type="dict"),
        job_variables=dict(type="dict"),
        tags=dict(type="list", elements="str"),
        run_name=dict(type="str"),
        work_queue_name=dict(type="str"),
        idempotency_key=dict(type="str", no_log=False),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=600),
        poll_interval=dict(type="float", default=2.0),
        fail_on_failure=dict(type="bool", default=True),
        log_lines=dict(type="int", default=20),
    )
    module = MaskedArgsModule(argument_spec=argument_spec, supports_check_mode=True, masked_paths=ENV_PATHS)
    run_module(module, FlowRunManager)


if __name__ == "__main__":
    main()
