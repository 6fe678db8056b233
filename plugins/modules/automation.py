#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: automation
short_description: Manage a Prefect automation
version_added: 0.1.0
description:
  - Creates, updates or deletes an automation (a trigger and the actions it runs) on a
    Prefect 3 server over its REST API.
  - The automation is found by its O(name). Prefect does not keep names unique; the module
    refuses to act when the server holds more than one automation of that name (it lists
    their IDs), so that it never changes or deletes the wrong one.
  - 'How the module decides whether something changed: the server fills defaults into
    what it stores (the trigger''s C(id), C(match_related), C(threshold) and so on, the
    C(source) of a deployment action, C(within) as a number of seconds). The module fills
    the same defaults (those of Prefect 3.9) into O(trigger) and the actions before it
    compares them with the server''s copy, key by key: a key given in the task, or one
    whose Prefect default is known, must be equal; a key the server adds that the module
    does not know (a field of a later Prefect version) is not compared. Lists of events
    that Prefect keeps as sets (C(after), C(expect), C(for_each)) are compared without
    regard to order, numbers by value (V(90) equals V(90.0)).'
  - So removing from the task a key whose default the module knows is a change that sets
    it back to that default (for example removing C(message) from a
    C(change-flow-run-state) action).
  - An update replaces the whole automation (C(PUT)), which gives its triggers new IDs and
    restarts their evaluation; when only O(enabled) differs, only that is changed.
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
    details:
      - The trigger IDs the server generates are left out of the diff.
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the automation, the key the module finds it by.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the automation, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  description:
    description:
      - Description of the automation. Left unchanged when not given.
    type: str
  enabled:
    description:
      - Whether the server evaluates the automation.
    type: bool
    default: true
  tags:
    description:
      - Tags of the automation. The order does not matter. Left unchanged when not given.
    type: list
    elements: str
  trigger:
    description:
      - The trigger, as Prefect's API and C(prefect automation create) take it, a dict with
        C(type) V(event) (the default), V(compound) or V(sequence).
      - 'An V(event) trigger: C(posture) (V(Reactive) or V(Proactive), required),
        C(expect), C(after), C(for_each) (lists of event names or labels), C(match),
        C(match_related) (resource labels), C(threshold), C(within).'
      - A V(compound) trigger has C(triggers), C(require) (a number, V(any) or V(all)) and
        C(within); a V(sequence) trigger has C(triggers) and C(within).
      - C(within) is a number of seconds (V(90)), a string of digits, or an ISO 8601
        duration (V(PT1M30S)); a V(Proactive) trigger needs 10 seconds at least (0 or
        none means 10).
      - Required when O(state=present).
    type: dict
  actions:
    description:
      - The actions to run when the automation triggers, each a dict with its C(type)
        (required) and the fields of that type, as Prefect's API takes them.
      - 'For example V({type: change-flow-run-state, state: CRASHED, message: ...}),
        V({type: run-deployment, deployment_id: ..., parameters: {...}}),
        V({type: send-notification, block_document_id: ..., body: ...}),
        V({type: pause-work-pool, work_pool_id: ...}).'
      - The server checks them; a type it does not know is refused with the list of the
        types it knows.
      - The order matters. Required when O(state=present) (may be empty).
    type: list
    elements: dict
  actions_on_trigger:
    description:
      - Actions to run when the automation enters the triggered state, as in O(actions).
      - Left unchanged when not given; V([]) removes them.
    type: list
    elements: dict
  actions_on_resolve:
    description:
      - Actions to run when the automation resolves, as in O(actions).
      - Left unchanged when not given; V([]) removes them.
    type: list
    elements: dict
notes:
  - Automations are evaluated by the server's triggers service (on by default in
    C(prefect server start)); a server started with it off stores them but never fires them.
seealso:
  - name: Prefect automations
    description: Automations, triggers and actions in the Prefect documentation.
    link: https://docs.prefect.io/v3/concepts/automations
  - name: Detect zombie flows
    description: The automation that marks flow runs Crashed when their heartbeats stop.
    link: https://docs.prefect.io/v3/advanced/detect-zombie-flows
"""

EXAMPLES = r"""
# Prefect's documented automation for self-hosted servers: a flow run whose heartbeats
# stop (its process died with its machine or worker) is marked Crashed instead of
# staying Running. The flow runs must send heartbeats
# (PREFECT_FLOWS_HEARTBEAT_FREQUENCY=30 in the environment of the workers).
- name: Mark zombie flow runs Crashed
  selfhosted.prefect.automation:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    name: Crash zombie flow runs
    description: Flow runs without a heartbeat for 90 s are marked Crashed.
    trigger:
      type: event
      posture: Proactive
      after: [prefect.flow-run.heartbeat]
      expect:
        - prefect.flow-run.heartbeat
        - prefect.flow-run.Completed
        - prefect.flow-run.Failed
        - prefect.flow-run.Cancelled
        - prefect.flow-run.Crashed
      match:
        prefect.resource.id: [prefect.flow-run.*]
      for_each: [prefect.resource.id]
      threshold: 1
      within: 90
    actions:
      - type: change-flow-run-state
        state: CRASHED
        message: Flow run marked as crashed due to missing heartbeats.

- name: Run a clean-up deployment when a flow run of the ETL fails
  selfhosted.prefect.automation:
    name: etl-failure-cleanup
    trigger:
      posture: Reactive
      expect: [prefect.flow-run.Failed]
      match_related:
        prefect.resource.id: "prefect.flow.{{ etl_flow_id }}"
        prefect.resource.role: flow
    actions:
      - type: run-deployment
        deployment_id: "{{ cleanup_deployment.deployment.id }}"
        parameters: {full: false}

- name: Keep it, but switched off
  selfhosted.prefect.automation:
    name: etl-failure-cleanup
    enabled: false
    trigger: "{{ etl_failure_trigger }}"
    actions: "{{ etl_failure_actions }}"

- name: Remove an automation
  selfhosted.prefect.automation:
    name: Crash zombie flow runs
    state: absent
"""

RETURN = r"""
automation:
  description:
    - The automation as the server holds it after the change (as predicted in check mode,
      without IDs for a new one); empty after O(state=absent).
    - C(after), C(expect) and C(for_each) are sorted.
  returned: always
  type: dict
  contains:
    id:
      description: ID of the automation (missing in check mode for a new automation).
      type: str
      returned: when the automation exists
    name:
      description: Name of the automation.
      type: str
      returned: when O(state=present)
    description:
      description: Description of the automation.
      type: str
      returned: when O(state=present)
    enabled:
      description: Whether the automation is evaluated.
      type: bool
      returned: when O(state=present)
    tags:
      description: Tags of the automation.
      type: list
      elements: str
      returned: when O(state=present)
    trigger:
      description: The trigger, with the server's defaults filled in.
      type: dict
      returned: when O(state=present)
    actions:
      description: The actions, with the server's defaults filled in.
      type: list
      elements: dict
      returned: when O(state=present)
    actions_on_trigger:
      description: The actions run when the automation triggers.
      type: list
      elements: dict
      returned: when O(state=present)
    actions_on_resolve:
      description: The actions run when the automation resolves.
      type: list
      elements: dict
      returned: when O(state=present)
  sample:
    id: 3cecbb50-090c-4235-8a3a-3130cdbe5a03
    name: Crash zombie flow runs
    description: ""
    enabled: true
    tags: []
    trigger:
      type: event
      id: b580f773-0ce1-4d44-b0a0-902591267396
      posture: Proactive
      after: [prefect.flow-run.heartbeat]
      expect: [prefect.flow-run.Cancelled, prefect.flow-run.Completed, prefect.flow-run.Crashed,
               prefect.flow-run.Failed, prefect.flow-run.heartbeat]
      match: {prefect.resource.id: [prefect.flow-run.*]}
      match_related: {}
      for_each: [prefect.resource.id]
      threshold: 1
      within: 90.0
    actions:
      - {type: change-flow-run-state, name: null, state: CRASHED, force: false,
         message: Flow run marked as crashed due to missing heartbeats.}
    actions_on_trigger: []
    actions_on_resolve: []
changed_fields:
  description:
    - The fields of an existing automation that differed from the task (and were changed,
      or would be in check mode), among V(enabled), V(description), V(tags), V(trigger),
      V(actions), V(actions_on_trigger) and V(actions_on_resolve).
  returned: when an existing automation changed
  type: list
  elements: str
  sample: [trigger]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.automation import AutomationManager
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import prefect_api_argument_spec


def argument_spec():
    spec = prefect_api_argument_spec()
    spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        description=dict(type="str"),
        enabled=dict(type="bool", default=True),
        tags=dict(type="list", elements="str"),
        trigger=dict(type="dict"),
        actions=dict(type="list", elements="dict"),
        actions_on_trigger=dict(type="list", elements="dict"),
        actions_on_resolve=dict(type="list", elements="dict"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    run_module(module, AutomationManager)


if __name__ == "__main__":
    main()
