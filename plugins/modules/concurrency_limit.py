#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: concurrency_limit
short_description: Manage a Prefect global concurrency limit
version_added: 0.1.0
description:
  - Creates, updates or deletes a global concurrency limit (or rate limit) on a Prefect 3
    server over its REST API (C(/api/v2/concurrency_limits/)), what flows and tasks take
    slots of with C(prefect.concurrency.sync.concurrency("name")) or
    C(rate_limit("name")), and what C(prefect gcl) manages.
  - The limit is found by its O(name).
  - The slots in use (C(active_slots)) and the slots refused (C(denied_slots)) are
    counters the server keeps while flows run; the module never sets them, so applying a
    limit again does not free the slots that running flows hold.
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the limit, without C(/), C(%), C(&), C(>) or C(<). A name that is a UUID
        is refused, as the API reads it as an ID.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the limit, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  limit:
    description:
      - Number of slots, V(0) or more (V(0) lets nothing through while the limit is active).
      - Required when O(state=present).
    type: int
  active:
    description:
      - Whether the limit is enforced. An inactive limit lets everything through.
    type: bool
    default: true
  slot_decay_per_second:
    description:
      - Slots freed per second, V(0) or more. V(0) (the default) makes a concurrency limit
        (slots are freed when released); more makes a rate limit, as
        C(prefect.concurrency.sync.rate_limit) needs.
    type: float
    default: 0
seealso:
  - name: Global concurrency limits
    description: Global concurrency and rate limits in the Prefect documentation.
    link: https://docs.prefect.io/v3/how-to-guides/workflows/global-concurrency-limits
"""

EXAMPLES = r"""
- name: At most 4 flows write to the warehouse at once
  selfhosted.prefect.concurrency_limit:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    name: warehouse-writes
    limit: 4

- name: At most 10 calls a second to a partner API (a rate limit)
  selfhosted.prefect.concurrency_limit:
    name: partner-api
    limit: 10
    slot_decay_per_second: 10

- name: Switch a limit off without deleting it
  selfhosted.prefect.concurrency_limit:
    name: warehouse-writes
    limit: 4
    active: false

- name: Remove a limit
  selfhosted.prefect.concurrency_limit:
    name: warehouse-writes
    state: absent
"""

RETURN = r"""
concurrency_limit:
  description:
    - The limit as the server describes it after the change (as predicted in check mode);
      empty after O(state=absent).
  returned: always
  type: dict
  contains:
    id:
      description: ID of the limit (missing in check mode for a new limit).
      type: str
      returned: when the limit exists
    name:
      description: Name of the limit.
      type: str
      returned: when O(state=present)
    limit:
      description: Number of slots.
      type: int
      returned: when O(state=present)
    active:
      description: Whether the limit is enforced.
      type: bool
      returned: when O(state=present)
    slot_decay_per_second:
      description: Slots freed per second.
      type: float
      returned: when O(state=present)
    active_slots:
      description: Slots in use now (read only).
      type: int
      returned: when the limit exists
    denied_slots:
      description: Slots refused so far (read only).
      type: int
      returned: when the limit exists
  sample:
    id: 6a1c9b7e-0f0e-4b8e-9d43-6f2b7c9a1e55
    name: warehouse-writes
    limit: 4
    active: true
    slot_decay_per_second: 0.0
    active_slots: 1
    denied_slots: 0
"""

import re

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import equal
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    prefect_api_argument_spec,
)

# What the module manages; the rest of the server's answer is returned as it is.
MANAGED = ("limit", "active", "slot_decay_per_second")
RETURNED = ("id", "name", "limit", "active", "slot_decay_per_second", "active_slots", "denied_slots")
# Characters the server refuses in a name (prefect.types.Name).
BAD_NAME_RE = re.compile(r"[/%&><]")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")


def validate(params):
    """Messages for the parameters the server would refuse (or misread), in order."""
    problems = []
    name = params.get("name") or ""
    if not name.strip():
        problems.append("name must not be empty")
    elif BAD_NAME_RE.search(name):
        problems.append("name %r holds a character the server refuses in names (/ %% & > <)" % name)
    elif UUID_RE.match(name.strip("{}")):
        problems.append("name %r is a UUID, which the API reads as the ID of a limit; choose another name" % name)
    if params.get("state") == "present":
        if params.get("limit") is None:
            problems.append("limit is required to create or update concurrency limit %r" % name)
        elif params["limit"] < 0:
            problems.append("limit must be 0 or more, got %d" % params["limit"])
    decay = params.get("slot_decay_per_second")
    if decay is not None and decay < 0:
        problems.append("slot_decay_per_second must be 0 or more, got %s" % decay)
    return problems


def desired(params):
    """The managed fields as the API takes them."""
    return {
        "limit": params["limit"],
        "active": params["active"],
        "slot_decay_per_second": float(params["slot_decay_per_second"] or 0.0),
    }


def changes(wanted, current):
    """The fields of `wanted` that differ from the server's `current` limit (a PATCH body)."""
    return dict((key, value) for key, value in wanted.items() if not equal(value, (current or {}).get(key)))


def describe(limit, keep_counters=True):
    """The limit for the result (keep_counters) or the diff (managed fields and name only)."""
    if not limit:
        return {}
    keys = RETURNED if keep_counters else ("name",) + MANAGED
    return dict((key, limit[key]) for key in keys if key in limit)


class ConcurrencyLimitManager(PrefectManager):
    def __init__(self, module, client):
        super(ConcurrencyLimitManager, self).__init__(module, client)
        problems = validate(self.params)
        if problems:
            self.fail("; ".join(problems))
        self.name = self.params["name"]
        self.path = "/v2/concurrency_limits/%s" % quote(self.name, safe="")
        self.header = "concurrency limit %s" % self.name

    def read(self):
        current = self.client.get_or_none(self.path)
        # A server that read the name as something else answers another limit: not ours.
        if current is not None and current.get("name") != self.name:
            return None
        return current

    def absent(self):
        current = self.read()
        if current is None:
            return self.result(False, header=self.header, concurrency_limit={})
        if not self.check_mode:
            self.client.delete_if_exists("/v2/concurrency_limits/%s" % current["id"])
        return self.result(True, describe(current, False), {}, self.header, concurrency_limit={})

    def present(self):
        wanted = desired(self.params)
        current = self.read()
        if current is None:
            body = dict(name=self.name, **wanted)
            if self.check_mode:
                return self.result(True, {}, describe(body, False), self.header, concurrency_limit=describe(body))
            # Names are unique: a create repeated after a lost answer, or racing another
            # run, is answered 409 and the limit made meanwhile is updated instead.
            try:
                created = self.client.post("/v2/concurrency_limits/", body, idempotent=True)
            except PrefectAPIError as exc:
                if exc.status != 409:
                    raise
                current = self.read()
                if current is None:
                    raise
            else:
                return self.result(True, {}, describe(body, False), self.header, concurrency_limit=describe(created))

        update = changes(wanted, current)
        after = dict(current, **update)
        if update and not self.check_mode:
            self.client.patch("/v2/concurrency_limits/%s" % current["id"], update)
            after = self.client.get_or_none("/v2/concurrency_limits/%s" % current["id"]) or after
        return self.result(bool(update), describe(current, False), describe(after, False), self.header,
                           concurrency_limit=describe(after))


def argument_spec():
    spec = prefect_api_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        limit=dict(type="int"),
        active=dict(type="bool", default=True),
        slot_decay_per_second=dict(type="float", default=0.0),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, ConcurrencyLimitManager)


if __name__ == "__main__":
    main()
