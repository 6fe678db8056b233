#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: server_info
short_description: Read facts about a Prefect server
version_added: 0.1.0
description:
  - Reads, over the REST API of a Prefect 3 server, its version and readiness, its work
    pools and queues, deployments, variables, and its recent flow runs counted by state.
  - Changes nothing.
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
  - selfhosted.prefect.attributes.INFO_MODULE
options:
  gather:
    description:
      - Which facts to read. V(server) is always read.
    type: list
    elements: str
    choices: [server, work_pools, deployments, variables, flow_runs]
    default: [server, work_pools, deployments, variables, flow_runs]
  flow_runs_since:
    description:
      - Count flow runs expected to start from this time until now.
      - An ISO 8601 time (V(2026-01-31T00:00:00Z)) or a duration back from now, that is a
        number followed by V(s), V(m), V(h), V(d) or V(w) (V(30m), V(24h), V(7d)).
    type: str
    default: 24h
  flow_runs_limit:
    description:
      - At most this many of the most recent flow runs are read and counted.
    type: int
    default: 200
"""

EXAMPLES = r"""
- name: Is the server up, and how did the last day go?
  selfhosted.prefect.server_info:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    gather: [server, flow_runs]
  register: prefect

- name: Fail when flow runs failed in the last day
  ansible.builtin.assert:
    that: prefect.flow_runs.by_state_type.FAILED | default(0) == 0
"""

RETURN = r"""
server:
  description: The server.
  returned: always
  type: dict
  contains:
    api_url:
      description: The API URL used.
      type: str
      returned: always
    version:
      description: Prefect version of the server.
      type: str
      returned: always
    ready:
      description: Whether C(/api/ready) answers OK (the database is reachable).
      type: bool
      returned: always
    healthy:
      description: Whether C(/api/health) answers true.
      type: bool
      returned: always
  sample: {api_url: "http://127.0.0.1:4200/api", version: 3.9.1, ready: true, healthy: true}
work_pools:
  description: Work pools, each with its queues.
  returned: when V(work_pools) is gathered
  type: list
  elements: dict
  sample:
    - name: local-process
      type: process
      status: READY
      is_paused: false
      concurrency_limit: 4
      description: null
      queues: [{name: default, priority: 1, concurrency_limit: null, is_paused: false}]
deployments:
  description: Deployments with the name of their flow.
  returned: when V(deployments) is gathered
  type: list
  elements: dict
  sample:
    - name: nightly
      flow_name: etl
      full_name: etl/nightly
      id: 9d7c3d0f-5a77-4f0b-8f4e-2c1b9b1f3e11
      work_pool_name: local-process
      work_queue_name: default
      paused: false
      status: READY
      tags: []
      schedules: 1
variables:
  description: Variables with their values and tags.
  returned: when V(variables) is gathered
  type: list
  elements: dict
  sample: [{name: s3_endpoint, value: "http://127.0.0.1:8333", tags: []}]
flow_runs:
  description: The most recent flow runs since O(flow_runs_since), counted by state.
  returned: when V(flow_runs) is gathered
  type: dict
  contains:
    since:
      description: Start of the period, UTC.
      type: str
      returned: always
    total:
      description: Number of flow runs read.
      type: int
      returned: always
    truncated:
      description: Whether more flow runs than O(flow_runs_limit) exist in the period.
      type: bool
      returned: always
    by_state_type:
      description: Counts by state type (C(COMPLETED), C(FAILED), C(RUNNING), ...).
      type: dict
      returned: always
    by_state_name:
      description: Counts by state name (C(Completed), C(Late), C(Crashed), ...).
      type: dict
      returned: always
    runs:
      description: The runs, most recent first.
      type: list
      elements: dict
      returned: always
  sample:
    since: "2026-01-30T12:00:00+00:00"
    total: 2
    truncated: false
    by_state_type: {COMPLETED: 1, FAILED: 1}
    by_state_name: {Completed: 1, Failed: 1}
    runs:
      - {id: 1b6e..., name: brave-fox, deployment_id: 9d7c..., state_type: COMPLETED, state_name: Completed,
         expected_start_time: "2026-01-31T08:00:00Z", start_time: "2026-01-31T08:00:02Z", end_time: "2026-01-31T08:00:09Z"}
"""

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import prefect_api_argument_spec

SECTIONS = ["server", "work_pools", "deployments", "variables", "flow_runs"]
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_since(value, now=None):
    """ISO 8601 time or a duration back from `now` (30m, 24h, 7d) -> aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    text = (value or "").strip()
    match = re.match(r"^(\d+)\s*([smhdw])$", text)
    if match:
        return now - timedelta(**{UNITS[match.group(2)]: int(match.group(1))})
    iso = text[:-1] + "+00:00" if text.endswith("Z") else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError("flow_runs_since must be an ISO 8601 time or a duration such as 30m, 24h, 7d; got %r" % value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.astimezone(timezone.utc)


def gather_server(client):
    return {
        "api_url": client.api_url,
        "version": client.server_version or client.get_server_version(),
        "ready": client.is_ready(),
        "healthy": client.health() is True,
    }


def gather_work_pools(client):
    pools = []
    for pool in client.post_paginated("/work_pools/filter"):
        path = "/work_pools/%s/queues/filter" % quote(pool["name"], safe="")
        queues = client.post_paginated(path)
        pools.append({
            "id": pool.get("id"),
            "name": pool.get("name"),
            "type": pool.get("type"),
            "status": pool.get("status"),
            "is_paused": pool.get("is_paused"),
            "concurrency_limit": pool.get("concurrency_limit"),
            "description": pool.get("description"),
            "queues": [
                {"name": q.get("name"), "priority": q.get("priority"), "concurrency_limit": q.get("concurrency_limit"),
                 "is_paused": q.get("is_paused"), "status": q.get("status")}
                for q in sorted(queues, key=lambda q: (q.get("priority") or 0, q.get("name")))
            ],
        })
    return sorted(pools, key=lambda p: p["name"])


def gather_deployments(client):
    deployments = client.post_paginated("/deployments/filter")
    flow_ids = sorted(set(d.get("flow_id") for d in deployments if d.get("flow_id")))
    flows = {}
    if flow_ids:
        for flow in client.post_paginated("/flows/filter", {"flows": {"id": {"any_": flow_ids}}}):
            flows[flow["id"]] = flow.get("name")
    result = []
    for d in deployments:
        flow_name = flows.get(d.get("flow_id"))
        result.append({
            "id": d.get("id"),
            "name": d.get("name"),
            "flow_name": flow_name,
            "full_name": "%s/%s" % (flow_name, d.get("name")) if flow_name else d.get("name"),
            "work_pool_name": d.get("work_pool_name"),
            "work_queue_name": d.get("work_queue_name"),
            "paused": d.get("paused"),
            "status": d.get("status"),
            "tags": d.get("tags") or [],
            "schedules": len(d.get("schedules") or []),
        })
    return sorted(result, key=lambda d: d["full_name"])


def gather_variables(client):
    return sorted(
        ({"name": v.get("name"), "value": v.get("value"), "tags": v.get("tags") or []}
         for v in client.post_paginated("/variables/filter")),
        key=lambda v: v["name"])


def gather_flow_runs(client, since, limit):
    now = datetime.now(timezone.utc)
    body = {
        "flow_runs": {"expected_start_time": {"after_": since.isoformat(), "before_": now.isoformat()}},
        "sort": "EXPECTED_START_TIME_DESC",
    }
    runs = client.post_paginated("/flow_runs/filter", body, max_items=limit + 1)
    truncated = len(runs) > limit
    runs = runs[:limit]
    by_type, by_name, listed = {}, {}, []
    for run in runs:
        state = run.get("state") or {}
        state_type = state.get("type") or run.get("state_type") or "UNKNOWN"
        state_name = state.get("name") or run.get("state_name") or "Unknown"
        by_type[state_type] = by_type.get(state_type, 0) + 1
        by_name[state_name] = by_name.get(state_name, 0) + 1
        listed.append({
            "id": run.get("id"),
            "name": run.get("name"),
            "deployment_id": run.get("deployment_id"),
            "work_pool_name": run.get("work_pool_name"),
            "state_type": state_type,
            "state_name": state_name,
            "expected_start_time": run.get("expected_start_time"),
            "start_time": run.get("start_time"),
            "end_time": run.get("end_time"),
        })
    return {
        "since": since.isoformat(),
        "total": len(listed),
        "truncated": truncated,
        "by_state_type": by_type,
        "by_state_name": by_name,
        "runs": listed,
    }


class ServerInfoManager(PrefectManager):
    """Reads; never writes."""

    def __init__(self, module, client):
        super(ServerInfoManager, self).__init__(module, client)
        if self.params["flow_runs_limit"] < 1:
            self.fail("flow_runs_limit must be 1 or more")
        try:
            self.since = parse_since(self.params["flow_runs_since"])
        except ValueError as exc:
            self.fail(str(exc))

    def run(self):
        p = self.params
        gather = set(p["gather"]) | {"server"}
        result = dict(changed=False, server=gather_server(self.client))
        if "work_pools" in gather:
            result["work_pools"] = gather_work_pools(self.client)
        if "deployments" in gather:
            result["deployments"] = gather_deployments(self.client)
        if "variables" in gather:
            result["variables"] = gather_variables(self.client)
        if "flow_runs" in gather:
            result["flow_runs"] = gather_flow_runs(self.client, self.since, p["flow_runs_limit"])
        return result


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        gather=dict(type="list", elements="str", choices=SECTIONS, default=list(SECTIONS)),
        flow_runs_since=dict(type="str", default="24h"),
        flow_runs_limit=dict(type="int", default=200),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, ServerInfoManager)


if __name__ == "__main__":
    main()
