#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: work_pool
short_description: Manage a Prefect work pool, its queues and its base job template
version_added: 0.1.0
description:
  - Creates, updates or deletes a work pool on a Prefect 3 server over its REST API,
    together with the pool's work queues and its base job template.
  - When the pool is created, its base job template is the server's default template for
    the pool's O(type) (what the Prefect UI and CLI use), unless O(base_job_template) is
    given. The defaults are read from the server
    (C(GET /api/collections/views/aggregate-worker-metadata), which the server answers
    from the Prefect collection registry or, offline, from the copy bundled with it), so
    the target host needs no C(prefect) package.
  - O(job_variables) set the defaults of the template's job variables
    (C(variables.properties.<name>.default)) on top of that template.
  - A pool's type cannot change in place. The module refuses such a change with a clear
    message; delete the pool (O(state=absent)) and create it again if that is intended
    (deployments that used it must then be applied again).
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
attributes:
  check_mode:
    support: full
    details:
      - Queue priorities that the server renumbers as a side effect of another queue's
        priority change are not predicted.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  name:
    description:
      - Name of the work pool. The server refuses names starting with C(prefect).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the pool, V(absent) deletes it (with its queues).
    type: str
    choices: [present, absent]
    default: present
  type:
    description:
      - Worker type of the pool, for example V(process), V(docker), V(kubernetes), V(ecs).
      - Required to create a pool. Must be a type the server knows (the module lists them
        when it is not), unless O(base_job_template) is given, which allows custom worker
        types.
      - Cannot be changed on an existing pool.
    type: str
  description:
    description:
      - Description of the pool. Left unchanged when not given.
    type: str
  paused:
    description:
      - Whether the pool is paused (no work is handed out). Left unchanged when not given.
    type: bool
  concurrency_limit:
    description:
      - Maximum number of flow runs of the pool running at the same time.
      - V(-1) removes the limit. Left unchanged when not given.
    type: int
  queues:
    description:
      - Work queues of the pool. Listed queues are created or updated; only the fields
        given are managed.
      - The pool's V(default) queue always exists; it may be listed to manage its fields.
      - Queues that are not listed are kept unless O(purge_queues=true).
    type: list
    elements: dict
    suboptions:
      name:
        description: Name of the queue.
        type: str
        required: true
      description:
        description: Description of the queue.
        type: str
      priority:
        description:
          - Priority of the queue in the pool, V(1) being the highest. Priorities are
            unique within a pool; the server moves other queues down to make room.
        type: int
      concurrency_limit:
        description:
          - Maximum number of flow runs of the queue running at the same time; V(-1)
            removes the limit.
        type: int
      paused:
        description: Whether the queue is paused.
        type: bool
  purge_queues:
    description:
      - Delete the pool's queues that O(queues) does not list (never the V(default) queue).
    type: bool
    default: false
  base_job_template:
    description:
      - The complete base job template (C(job_configuration) and C(variables)), as the
        output of C(prefect work-pool get-default-base-job-template).
      - When not given, the server's default template for O(type) is used when the pool is
        created, when O(job_variables) is given, or when the pool's template is empty;
        otherwise the existing template is left alone.
      - In a playbook, keep Prefect's C({{ placeholders }}) away from Ansible's templating,
        for example by loading the template with C(lookup('file', ...) | from_json) or by
        marking strings C(!unsafe).
    type: dict
  job_variables:
    description:
      - Defaults for the job variables of the base job template, a dict of variable names
        and values. Each sets C(variables.properties.<name>.default) of the template.
        A dict value is merged into a dict default.
      - An unknown variable name is refused with the list of the template's variables.
    type: dict
  pinned_job_variables:
    description:
      - Job variables fixed by the pool, a dict of variable names and values that
        deployments and flow runs cannot override.
      - Each named variable leaves the template's C(variables) (so the UI no longer offers
        it) and each C({{ name }}) placeholder of its C(job_configuration) becomes the value
        itself; the worker builds every job from that configuration, so a deployment's
        job variable of that name is ignored.
      - For a docker pool, pin C(privileged), C(volumes), C(network_mode) and C(networks)
        so that whoever may register a deployment cannot ask for a privileged container,
        a host mount or the host's network (the C(worker) role does this by default).
      - Applied on top of O(base_job_template), or the server's default template for the
        pool's type, after O(job_variables); a name in both is refused.
    type: dict
notes:
  - Deleting a pool deletes its queues; deployments that used them keep existing without
    a queue until they are applied again.
  - The values of the environment variables in the pool's base job template (the default
    of its C(env) variable, set by O(job_variables) C(env), and the C(env) of its
    C(job_configuration), set by O(pinned_job_variables) C(env)) are masked in the result,
    the diff and the echoed module arguments (the names stay; a new or changed value
    shows as C(******** (changed)) in the diff), as they may hold secrets. The module
    compares the real values.
seealso:
  - name: Prefect work pools
    description: Work pools, queues and base job templates in the Prefect documentation.
    link: https://docs.prefect.io/v3/concepts/work-pools
"""

EXAMPLES = r"""
- name: A process work pool with the server's default template
  selfhosted.prefect.work_pool:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    name: local-process
    type: process
    concurrency_limit: 4

- name: A docker pool whose runs use a given image and network, with two queues
  selfhosted.prefect.work_pool:
    name: docker-pool
    type: docker
    job_variables:
      image: registry.example.org:5000/flows:1.2.0
      env:
        PREFECT_LOGGING_LEVEL: INFO
    # Deployments cannot ask for these (a privileged container, a host mount, the host network).
    pinned_job_variables:
      privileged: false
      volumes: []
      network_mode: null
      networks: [prefect]
    queues:
      - name: critical
        priority: 1
        concurrency_limit: 2
      - name: bulk
        priority: 5
    purge_queues: true
  environment:
    PREFECT_API_URL: http://127.0.0.1:4200/api
    PREFECT_API_AUTH_STRING: "{{ prefect_auth_string }}"

- name: A pool with a template kept in a file
  selfhosted.prefect.work_pool:
    name: custom
    type: process
    base_job_template: "{{ lookup('ansible.builtin.file', 'process-template.json') | from_json }}"

- name: Remove a pool
  selfhosted.prefect.work_pool:
    name: old-pool
    state: absent
"""

RETURN = r"""
work_pool:
  description:
    - The pool as the server describes it after the change (as predicted in check mode).
    - The values of the environment variables of C(base_job_template) are masked (see the notes).
    - Empty after O(state=absent).
  returned: always
  type: dict
  sample:
    name: local-process
    type: process
    description: null
    is_paused: false
    concurrency_limit: 4
    status: NOT_READY
    base_job_template:
      job_configuration: {command: "{{ command }}"}
      variables: {type: object, properties: {}}
queues:
  description: The pool's queues after the change, ordered by priority.
  returned: when O(state=present)
  type: list
  elements: dict
  sample:
    - name: default
      priority: 1
      concurrency_limit: null
      is_paused: false
      description: The work pool's default queue.
"""

from urllib.parse import quote

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import equal
from ansible_collections.selfhosted.prefect.plugins.module_utils.job_template import (
    TemplateError,
    apply_job_variables,
    known_worker_types,
    pin_job_variables,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.masking import (
    TEMPLATE_ENV_DEFAULT,
    TEMPLATE_ENV_PINNED,
    MaskedArgsModule,
    mask_secrets,
    masked_changes_pair,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    prefect_api_argument_spec,
)

WORKER_METADATA_PATH = "/collections/views/aggregate-worker-metadata"
QUEUE_FIELDS = ("description", "priority", "concurrency_limit", "is_paused")
DEFAULT_QUEUE = "default"
# The values of the runs' environment may be secrets: results show their names only.
POOL_ENV_PATHS = [("base_job_template",) + TEMPLATE_ENV_DEFAULT, ("base_job_template",) + TEMPLATE_ENV_PINNED]
ARGUMENT_ENV_PATHS = POOL_ENV_PATHS + [("job_variables", "env", "*"), ("pinned_job_variables", "env", "*")]


def _limit(value):
    """Module value of a concurrency limit -> API value (-1 means no limit)."""
    if value is None:
        return None
    return None if value < 0 else value


def queue_snapshot(queue):
    return dict((field, queue.get(field)) for field in QUEUE_FIELDS)


def pool_snapshot(pool, queues):
    if not pool:
        return {}
    return {
        "name": pool.get("name"),
        "type": pool.get("type"),
        "description": pool.get("description"),
        "is_paused": pool.get("is_paused"),
        "concurrency_limit": pool.get("concurrency_limit"),
        "base_job_template": pool.get("base_job_template") or {},
        "queues": dict((q["name"], queue_snapshot(q)) for q in queues or []),
    }


def desired_queue_fields(spec):
    wanted = {}
    if spec.get("description") is not None:
        wanted["description"] = spec["description"]
    if spec.get("priority") is not None:
        wanted["priority"] = spec["priority"]
    if spec.get("concurrency_limit") is not None:
        wanted["concurrency_limit"] = _limit(spec["concurrency_limit"])
    if spec.get("paused") is not None:
        wanted["is_paused"] = spec["paused"]
    return wanted


class WorkPoolManager(PrefectManager):
    def __init__(self, module, client):
        super(WorkPoolManager, self).__init__(module, client)
        self.p = self.params
        self.name = self.p["name"]
        self.path = "/work_pools/%s" % quote(self.name, safe="")
        self.header = "work pool %s" % self.name
        self._worker_types = None

    def result(self, changed, before=None, after=None, header=None, **values):
        """The module result, the values of the template's env masked in the pool and the diff."""
        before, after = masked_changes_pair(before, after, POOL_ENV_PATHS)
        if "work_pool" in values:
            values["work_pool"] = mask_secrets(values["work_pool"], POOL_ENV_PATHS)
        return super(WorkPoolManager, self).result(changed, before, after, header, **values)

    # -- reading ---------------------------------------------------------------
    def read_pool(self):
        return self.client.get_or_none(self.path)

    def read_queues(self):
        queues = self.client.post_paginated(self.path + "/queues/filter")
        return sorted(queues, key=lambda q: (q.get("priority") or 0, q.get("name")))

    def worker_types(self):
        if self._worker_types is None:
            try:
                metadata = self.client.get(WORKER_METADATA_PATH)
            except PrefectAPIError as exc:
                if exc.status in (404, 405):
                    metadata = {}
                else:
                    raise
            self._worker_types = known_worker_types(metadata)
        return self._worker_types

    # -- validation ------------------------------------------------------------
    def validate_queues(self):
        queues = self.p["queues"] or []
        names = [q["name"] for q in queues]
        duplicates = sorted(set(n for n in names if names.count(n) > 1))
        if duplicates:
            self.fail("queues lists these names more than once: %s" % ", ".join(duplicates))
        priorities = [q["priority"] for q in queues if q.get("priority") is not None]
        if any(p < 1 for p in priorities):
            self.fail("queue priorities must be 1 or greater (1 is the highest)")
        if len(set(priorities)) != len(priorities):
            self.fail("queue priorities must be unique within a pool; got %s"
                      % ", ".join(str(p) for p in sorted(priorities)))
        for q in queues:
            if q.get("concurrency_limit") is not None and q["concurrency_limit"] < -1:
                self.fail("queue %s: concurrency_limit must be -1 (no limit) or 0 and above" % q["name"])
        if self.p["concurrency_limit"] is not None and self.p["concurrency_limit"] < -1:
            self.fail("concurrency_limit must be -1 (no limit) or 0 and above")

    def resolve_type(self, current):
        wanted = self.p["type"]
        if current is not None:
            if wanted and wanted != current.get("type"):
                self.fail(
                    "Work pool %r exists with type %r; its type cannot be changed to %r in place."
                    " Delete the pool (state: absent) and create it again if that is intended."
                    % (self.name, current.get("type"), wanted),
                    current_type=current.get("type"))
            return current.get("type")
        if not wanted:
            self.fail("type is required to create work pool %r" % self.name)
        if self.p["base_job_template"] is None and wanted not in self.worker_types():
            known = sorted(self.worker_types())
            self.fail(
                "Unknown work pool type %r. The server knows these types: %s. For a custom worker"
                " type, pass base_job_template explicitly." % (wanted, ", ".join(known) or "(none reported)"),
                known_types=known)
        return wanted

    def desired_template(self, pool_type, current):
        """The base job template to enforce, or None to leave the current one alone."""
        base = self.p["base_job_template"]
        job_variables = self.p["job_variables"]
        pinned = self.p["pinned_job_variables"]
        current_template = (current or {}).get("base_job_template") or {}
        both = sorted(set(job_variables or {}) & set(pinned or {}))
        if both:
            self.fail("%s: both in job_variables and in pinned_job_variables; a pinned variable has"
                      " no default to set" % ", ".join(both))
        if base is None:
            if current is not None and not job_variables and not pinned and current_template:
                return None
            info = self.worker_types().get(pool_type)
            base = (info or {}).get("default_base_job_configuration")
            if not base:
                if current is not None and not job_variables and not pinned:
                    return None
                self.fail(
                    "The server offers no default base job template for work pool type %r;"
                    " pass base_job_template explicitly." % pool_type)
        try:
            template = apply_job_variables(base, job_variables)
        except TemplateError as exc:
            self.fail("job_variables: %s" % exc)
        try:
            return pin_job_variables(template, pinned)
        except TemplateError as exc:
            self.fail("pinned_job_variables: %s" % exc)

    # -- main ------------------------------------------------------------------
    def absent(self):
        current = self.read_pool()
        if current is None:
            return self.result(False, header=self.header, work_pool={})
        queues = self.read_queues()
        if not self.check_mode:
            self.client.delete_if_exists(self.path)
        return self.result(True, pool_snapshot(current, queues), {}, self.header, work_pool={})

    def present(self):
        current = self.read_pool()
        self.validate_queues()
        pool_type = self.resolve_type(current)
        template = self.desired_template(pool_type, current)
        check = self.check_mode
        changed = False

        fields = {}
        if self.p["description"] is not None:
            fields["description"] = self.p["description"]
        if self.p["paused"] is not None:
            fields["is_paused"] = self.p["paused"]
        if self.p["concurrency_limit"] is not None:
            fields["concurrency_limit"] = _limit(self.p["concurrency_limit"])
        if template is not None:
            fields["base_job_template"] = template

        body = dict(name=self.name, type=pool_type)
        body.update(fields)
        if current is None and not check:
            # Several hosts may converge one pool at once (the worker role runs on every
            # worker machine): when another created it between our read and our write, the
            # server answers 409 and the pool is updated like an existing one instead.
            try:
                created = self.client.post("/work_pools/", body)
            except PrefectAPIError as exc:
                if exc.status != 409:
                    raise
                current = self.read_pool()
                if current is None:
                    raise
                created = None
        else:
            created = None

        if current is None:
            if check and self.name.lower().startswith("prefect"):
                self.fail("Work pool %r would be refused by the server: names starting with"
                          " 'prefect' are reserved for internal use." % self.name)
            before_pool, before_queues = None, []
            changed = True
            if check:
                pool = dict(body)
                pool.setdefault("description", None)
                pool.setdefault("is_paused", False)
                pool.setdefault("concurrency_limit", None)
                pool.setdefault("base_job_template", {})
                queues = [{"name": DEFAULT_QUEUE, "description": "The work pool's default queue.",
                           "priority": 1, "concurrency_limit": None, "is_paused": False}]
            else:
                pool = created
                queues = self.read_queues()
        else:
            before_pool, before_queues = current, self.read_queues()
            update = dict((k, v) for k, v in fields.items() if not equal(current.get(k), v))
            pool, queues = current, before_queues
            if update:
                changed = True
                if check:
                    pool = dict(current)
                    pool.update(update)
                else:
                    self.client.patch(self.path, update)
                    pool = self.read_pool() or current

        queues_changed, queues = self.apply_queues(queues, check)
        changed = changed or queues_changed
        if queues_changed and not check:
            queues = self.read_queues()

        return self.result(changed, pool_snapshot(before_pool, before_queues), pool_snapshot(pool, queues),
                           self.header, work_pool=pool, queues=queues)

    def apply_queues(self, queues, check):
        """Create/update/purge queues. Returns (changed, queues as now known or predicted)."""
        specs = self.p["queues"]
        if specs is None:
            return False, queues
        by_name = dict((q["name"], dict(q)) for q in queues)
        changed = False
        ordered = sorted(specs, key=lambda s: (s.get("priority") is None, s.get("priority") or 0))
        for spec in ordered:
            wanted = desired_queue_fields(spec)
            existing = by_name.get(spec["name"])
            if existing is None:
                changed = True
                body = dict(name=spec["name"])
                body.update(wanted)
                if check:
                    predicted = {"name": spec["name"], "description": "", "priority": None,
                                 "concurrency_limit": None, "is_paused": False}
                    predicted.update(wanted)
                    by_name[spec["name"]] = predicted
                else:
                    by_name[spec["name"]] = self.client.post(self.path + "/queues", body)
                continue
            update = dict((k, v) for k, v in wanted.items() if not equal(existing.get(k), v))
            if update:
                changed = True
                if not check:
                    self.client.patch("%s/queues/%s" % (self.path, quote(spec["name"], safe="")), update)
                existing.update(update)
        if self.p["purge_queues"]:
            listed = set(s["name"] for s in specs)
            for name in sorted(by_name):
                if name == DEFAULT_QUEUE or name in listed:
                    continue
                changed = True
                if not check:
                    self.client.delete_if_exists("%s/queues/%s" % (self.path, quote(name, safe="")))
                del by_name[name]
        result = sorted(by_name.values(), key=lambda q: (q.get("priority") or 0, q.get("name")))
        return changed, result


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        type=dict(type="str"),
        description=dict(type="str"),
        paused=dict(type="bool"),
        concurrency_limit=dict(type="int"),
        queues=dict(
            type="list",
            elements="dict",
            options=dict(
                name=dict(type="str", required=True),
                description=dict(type="str"),
                priority=dict(type="int"),
                concurrency_limit=dict(type="int"),
                paused=dict(type="bool"),
            ),
        ),
        purge_queues=dict(type="bool", default=False),
        base_job_template=dict(type="dict"),
        pinned_job_variables=dict(type="dict"),
        job_variables=dict(type="dict"),
    )
    module = MaskedArgsModule(argument_spec=argument_spec, supports_check_mode=True, masked_paths=ARGUMENT_ENV_PATHS)
    run_module(module, WorkPoolManager)


if __name__ == "__main__":
    main()
