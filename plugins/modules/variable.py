#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: variable
short_description: Manage a Prefect variable
version_added: 0.1.0
description:
  - Creates, updates or deletes a variable on a Prefect 3 server over its REST API.
  - Variables hold configuration that flows read with C(Variable.get()); they are not
    secret (use M(selfhosted.prefect.block_document) with the V(secret) block type for secrets).
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
      - Name of the variable (letters, digits, dashes and underscores).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the variable, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  value:
    description:
      - The value, any JSON value (string, number, boolean, list or dict), at most 5000
        characters as JSON.
      - Required to create a variable; when not given (or null), an existing variable
        keeps its value.
      - Types matter, V("1") and V(1) are different values.
    type: raw
  tags:
    description:
      - Tags of the variable. The order does not matter.
      - When not given, an existing variable keeps its tags.
    type: list
    elements: str
seealso:
  - name: Prefect variables
    description: Variables in the Prefect documentation.
    link: https://docs.prefect.io/v3/concepts/variables
"""

EXAMPLES = r"""
- name: A string variable
  selfhosted.prefect.variable:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    name: s3_endpoint
    value: http://127.0.0.1:8333

- name: A structured variable with tags
  selfhosted.prefect.variable:
    name: etl_settings
    value:
      batch_size: 500
      targets: [warehouse, archive]
    tags: [etl]

- name: Remove a variable
  selfhosted.prefect.variable:
    name: old_setting
    state: absent
"""

RETURN = r"""
variable:
  description:
    - The variable after the change (as predicted in check mode); empty after
      O(state=absent).
  returned: always
  type: dict
  contains:
    id:
      description: ID of the variable (missing in check mode for a new variable).
      type: str
      returned: when the variable exists
    name:
      description: Name of the variable.
      type: str
      returned: when O(state=present)
    value:
      description: Value of the variable.
      type: raw
      returned: when O(state=present)
    tags:
      description: Tags of the variable.
      type: list
      elements: str
      returned: when O(state=present)
  sample:
    id: 0b8c6c36-2b5a-4d0e-9f1b-5a6a3e1f4d21
    name: etl_settings
    value: {batch_size: 500}
    tags: [etl]
"""

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import equal
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import prefect_api_argument_spec


def describe(variable):
    if not variable:
        return {}
    described = {
        "name": variable.get("name"),
        "value": variable.get("value"),
        "tags": list(variable.get("tags") or []),
    }
    if variable.get("id"):
        described["id"] = variable["id"]
    return described


def same_tags(a, b):
    return sorted(set(a or [])) == sorted(set(b or []))


class VariableManager(PrefectManager):
    def __init__(self, module, client):
        super(VariableManager, self).__init__(module, client)
        self.name = self.params["name"]
        self.path = "/variables/name/%s" % quote(self.name, safe="")
        self.header = "variable %s" % self.name

    def absent(self):
        current = self.client.get_or_none(self.path)
        if current is None:
            return self.result(False, header=self.header, variable={})
        if not self.check_mode:
            self.client.delete_if_exists(self.path)
        return self.result(True, describe(current), {}, self.header, variable={})

    def present(self):
        p = self.params
        current = self.client.get_or_none(self.path)
        if current is None:
            if p["value"] is None:
                self.fail("value is required to create variable %r" % self.name)
            body = {"name": self.name, "value": p["value"], "tags": p["tags"] or []}
            after = body if self.check_mode else self.client.post("/variables/", body)
            return self.result(True, {}, describe(body), self.header, variable=describe(after))

        update = {}
        if p["value"] is not None and not equal(current.get("value"), p["value"]):
            update["value"] = p["value"]
        if p["tags"] is not None and not same_tags(current.get("tags"), p["tags"]):
            update["tags"] = p["tags"]
        after = dict(current)
        after.update(update)
        if update and not self.check_mode:
            self.client.patch(self.path, update)
            after = self.client.get_or_none(self.path) or after
        return self.result(update, describe(current), describe(after), self.header, variable=describe(after))


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        value=dict(type="raw"),
        tags=dict(type="list", elements="str"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, VariableManager)


if __name__ == "__main__":
    main()
