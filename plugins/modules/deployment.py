#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deployment
short_description: Register a flow as a Prefect 3 deployment from a shared directory, S3 or a Docker image
version_added: 0.1.0
description:
  - Creates, updates or deletes a deployment of a flow on a Prefect 3 server, for a work pool.
  - The flow's code comes from one of three sources, the Prefect 3 counterparts of Prefect 1's
    Local, S3 and Docker storage. O(source.type=local) is a directory every worker sees at the same
    path (for example shared over SSHFS); O(source.type=s3) is a bucket folder the module uploads the
    code to and the workers download it from; O(source.type=docker) is an image that holds the code.
  - The flow's name and parameter schema are read from O(entrypoint) with the C(prefect) library of
    the host where the code lives (see O(prefect_python)), so they are not repeated in the playbook.
  - Idempotent. The module reads the deployment first and only writes what differs. Schedules are
    compared one by one, ignoring what the server sets on its own (ids, creation dates, the anchor
    date of an interval schedule and the C(DTSTART) of an rrule when they were not given), and are
    changed through the deployment schedule endpoints so the schedules that stay keep their ids and
    anchors. A deployment that is already as asked is not written at all.
  - S3 uploads are idempotent too. Only files whose content (MD5, compared with the object's ETag)
    differs are uploaded.
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports whether the deployment, its schedules or the S3 code would change; uploads and
        writes nothing.
  diff_mode:
    support: full
    details:
      - Shows the managed fields and schedules before and after, and the S3 objects to upload
        (with their MD5).
  idempotent:
    support: full
    details:
      - A second run with the same input sends no write request at all (no POST, PATCH or upload).
options:
  name:
    description:
      - Name of the deployment (without the flow name).
    type: str
    required: true
  flow_name:
    description:
      - Name of the flow.
      - Read from O(entrypoint) when not given. Needed for O(source.type=docker) without
        O(source.introspect_path), and with O(state=absent) when the code cannot be read.
      - When given and the code can be read, it must be the name of the flow at O(entrypoint).
    type: str
  entrypoint:
    description:
      - The flow function, as C(path/to/file.py:function), relative to the code's root directory
        (O(source.path), or O(source.working_dir) inside the image).
      - Required with O(state=present).
    type: str
  source:
    description:
      - Where the workers get the flow's code from. Required with O(state=present).
    type: dict
    suboptions:
      type:
        description:
          - V(local) a directory at the same path on the workers (and on the host running the module).
          - V(s3) a folder of an S3 bucket; the module uploads O(source.path) to it.
          - V(docker) an image containing the code, for Docker work pools.
        type: str
        required: true
        choices: [local, s3, docker]
      path:
        description:
          - With V(local), the code directory, on the host running the module and on the workers.
          - With V(s3), the local directory whose files are uploaded.
          - Must exist and be a directory.
        type: path
      bucket:
        description:
          - With V(s3), the bucket. It must exist.
        type: str
      folder:
        description:
          - With V(s3), the folder (key prefix) of the bucket that holds this code; the bucket's root
            when empty. Give each deployment's code its own folder.
        type: str
        default: ''
        aliases: [prefix]
      endpoint_url:
        description:
          - With V(s3), the S3 endpoint of a non-AWS server (SeaweedFS, MinIO, Ceph), for example
            C(http://s3.example.internal:8333). Requests then use path-style URLs.
          - Defaults to the C(endpoint_url) of the credentials block's C(aws_client_parameters), or AWS.
          - Also put in the pull step's C(client_parameters). prefect-aws ignores those when the
            block has C(aws_client_parameters) of its own, so keep the endpoint in the block too.
        type: str
      region:
        description:
          - With V(s3), the region. Defaults to the block's C(region_name), or C(us-east-1).
        type: str
      validate_certs:
        description:
          - With V(s3), verify the S3 endpoint's TLS certificate when uploading.
        type: bool
        default: true
      credentials:
        description:
          - With V(s3), the S3 credentials. Required with V(s3).
          - The deployment never holds secrets. Its pull step names the block
            (C({{ prefect.blocks.aws-credentials.NAME }})) and the workers read it when a run starts.
        type: dict
        suboptions:
          block:
            description:
              - Name of an C(aws-credentials) block on the server (for example made with
                M(selfhosted.prefect.block)) the workers read the S3 credentials from. Required.
              - Its C(aws_client_parameters.endpoint_url) should name the S3 endpoint for non-AWS servers.
            type: str
            required: true
          aws_access_key_id:
            description:
              - Access key used by the module for the upload. Read from the block when not given.
            type: str
          aws_secret_access_key:
            description:
              - Secret key used by the module for the upload. Read from the block when not given.
            type: str
          aws_session_token:
            description:
              - Session token used by the module for the upload, with temporary credentials.
            type: str
      exclude:
        description:
          - With V(s3), glob patterns of files and directories not to upload, matched against the
            path relative to O(source.path) and against each file or directory name.
        type: list
        elements: str
        default: ['__pycache__', '*.pyc', '.git', '.venv', '.DS_Store']
      delete_extra:
        description:
          - With V(s3), delete the objects of the folder that have no local file any more.
        type: bool
        default: false
      image:
        description:
          - With V(docker), the image holding the code, for example C(registry.example.internal:5000/flows/weather:1.0).
            Put in the deployment's job variables as C(image).
        type: str
      working_dir:
        description:
          - With V(docker), the directory inside the image that holds the code; the pull step changes to it.
        type: str
        default: /opt/prefect/flows
      introspect_path:
        description:
          - With V(docker), a local copy of the image's code directory, to read the flow's name and
            parameters from. Without it, give O(flow_name) (and optionally O(parameter_openapi_schema)).
        type: path
  prefect_python:
    description:
      - Python interpreter with the C(prefect) package, used to read the flow's name and parameters
        from O(entrypoint) (in a separate process, in the code's directory).
      - When not set, the Python running the module is tried, then the one of the C(prefect)
        command found in E(PATH).
    type: path
  introspection:
    description:
      - V(static) reads the flow's name and parameters from the source code as C(prefect) does when
        flows cannot be imported (the file is not run, but its imports are).
      - V(import) runs the file and loads the flow, as C(prefect deploy) does.
    type: str
    choices: [static, import]
    default: static
  introspection_cache:
    description:
      - Keep what was read from the code (the flow's name and parameter schema) in a cache on the host
        that runs the module, and reuse it while the code and the Python environment that read it are
        unchanged, instead of starting a Python process that imports C(prefect) on every run.
      - An entry is reused only when every C(*.py) file under the code directory (the same paths,
        sizes and modification times), the interpreter, the directories of its C(sys.path) (a package
        installed, upgraded or removed changes them) and C(prefect)'s own files are as when it was
        written. Code directories with more than 5000 Python files are not cached.
      - The cache holds no secret. Check mode reads it but does not write it.
    type: bool
    default: true
  introspection_cache_dir:
    description:
      - Directory of the cache (created 0700).
      - Defaults to C(selfhosted-prefect/flows) under E(XDG_CACHE_HOME), or under C(~/.cache) of the
        user running the module.
    type: path
  parameter_openapi_schema:
    description:
      - The flow's parameter schema, when it cannot be read from the code. Overrides what is read.
    type: dict
  work_pool_name:
    description:
      - Work pool whose workers run the flow. It must exist. Required with O(state=present).
    type: str
  work_queue_name:
    description:
      - Work queue of the pool; created by the server if missing. The pool's default queue when not set.
    type: str
  job_variables:
    description:
      - Overrides of the work pool's base job template (for example C(env)). Not managed when not set,
        except that O(source.type=docker) always sets C(image).
    type: dict
  parameters:
    description:
      - Default parameter values of the deployment's runs. Not managed when not set.
    type: dict
  tags:
    description:
      - Tags of the deployment (compared without regard to order). Not managed when not set.
    type: list
    elements: str
  description:
    description:
      - Description of the deployment. Not managed when not set.
    type: str
  version:
    description:
      - Version label of the deployment. Not managed when not set.
    type: str
  schedules:
    description:
      - The deployment's schedules; V([]) removes them all. Not managed when not set.
      - Each has exactly one of O(schedules[].cron), O(schedules[].interval) or O(schedules[].rrule).
      - "Three times a day, as in the old guide, is C(cron: '0 8,13,18 * * *')."
    type: list
    elements: dict
    suboptions:
      cron:
        description: A cron expression, for example C(0 8,13,18 * * *).
        type: str
      day_or:
        description: With O(schedules[].cron), whether day of month and day of week are joined with OR (cron's usual meaning).
        type: bool
      interval:
        description: An interval in seconds.
        type: float
      anchor_date:
        description:
          - With O(schedules[].interval), the date-time intervals are counted from, ISO 8601
            (for example C(2024-01-01T08:00:00+01:00)).
          - When not set the server uses the time the schedule is created, and keeps it across runs of this module.
        type: str
      rrule:
        description: An iCalendar recurrence rule, for example C(FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9).
        type: str
      timezone:
        description: IANA time zone, for example C(Europe/Paris). UTC when not set.
        type: str
      active:
        description: Whether the schedule creates runs.
        type: bool
        default: true
      parameters:
        description: Parameter values of this schedule's runs, over the deployment's O(parameters).
        type: dict
      slug:
        description: A name for the schedule, unique in the deployment; it is then matched by slug.
        type: str
      max_scheduled_runs:
        description: Most runs this schedule keeps scheduled ahead.
        type: int
  paused:
    description:
      - Whether the deployment is paused (its schedules create no runs). Not managed when not set;
        new deployments are not paused.
    type: bool
  concurrency_limit:
    description:
      - Most runs of this deployment at the same time. V(0) removes the limit. Not managed when not set.
    type: int
  enforce_parameter_schema:
    description:
      - Whether the server refuses runs whose parameters do not fit the schema. Not managed when not
        set; new deployments enforce it.
    type: bool
  state:
    description:
      - V(present) creates or updates the deployment, V(absent) deletes it (with its schedules and
        scheduled runs; the flow, other deployments and uploaded code stay).
    type: str
    choices: [present, absent]
    default: present
notes:
  - The code must be readable on the host running the module, to read the flow's name and
    parameters, and (V(s3)) to upload it. Use C(delegate_to) to run it where the code is.
  - S3 uploads use the standard library (AWS Signature Version 4); C(boto3) is not needed.
  - Workers need C(prefect-aws) for V(s3) sources (the pull step's C(requires) installs it when missing
    and the worker can reach a package index).
seealso:
  - module: selfhosted.prefect.flow_run
  - module: selfhosted.prefect.work_pool
  - module: selfhosted.prefect.block
"""

EXAMPLES = r"""
- name: Register the weather flow from the shared flows directory, three times a day
  selfhosted.prefect.deployment:
    api_url: "{{ prefect_tenants.default.api_url }}"
    api_auth_string: "{{ lookup('file', prefect_tenants.default.credentials_file) }}"
    name: three-times-a-day
    entrypoint: weather.py:weather
    source:
      type: local
      path: /srv/prefect/flows
    work_pool_name: process-pool
    parameters:
      city: Paris
    schedules:
      - cron: "0 8,13,18 * * *"
        timezone: Europe/Paris
    tags: [weather]
    prefect_python: /opt/prefect/venv/bin/python

- name: Upload the flow to S3 and register it; workers read credentials from a block
  selfhosted.prefect.deployment:
    name: weather-s3
    entrypoint: weather.py:weather
    source:
      type: s3
      path: "{{ playbook_dir }}/flows"
      bucket: prefect-flows
      folder: weather
      endpoint_url: http://s3.lab.internal:8333
      credentials:
        block: flows-s3
    work_pool_name: process-pool
    schedules:
      - interval: 3600
  delegate_to: localhost

- name: Register a flow baked into an image, for a Docker work pool
  selfhosted.prefect.deployment:
    name: weather-docker
    flow_name: weather
    entrypoint: weather.py:weather
    source:
      type: docker
      image: registry.lab.internal:5000/flows/weather:1.0
      working_dir: /opt/prefect/flows
    work_pool_name: docker-pool
    job_variables:
      env:
        TZ: Europe/Paris

- name: Remove a deployment
  selfhosted.prefect.deployment:
    name: weather-s3
    flow_name: weather
    state: absent
"""

RETURN = r"""
deployment:
  description: The deployment as the server holds it after the run (what it would be, in check mode).
    Empty when absent.
  returned: always
  type: dict
  contains:
    id:
      description: Deployment id (None in check mode before creation).
      type: str
      sample: 0b9c43c2-0ff1-4c3b-a0a5-7d9e1c1c9a35
    name:
      description: C(flow/deployment), the name C(prefect deployment run) and M(selfhosted.prefect.flow_run) take.
      type: str
      sample: weather/three-times-a-day
    deployment_name:
      description: The deployment's own name.
      type: str
      sample: three-times-a-day
    flow_id:
      description: Flow id.
      type: str
    flow_name:
      description: Flow name.
      type: str
      sample: weather
    entrypoint:
      description: Entrypoint.
      type: str
    work_pool_name:
      description: Work pool.
      type: str
    work_queue_name:
      description: Work queue.
      type: str
    pull_steps:
      description: The pull steps workers run before the flow.
      type: list
      elements: dict
    job_variables:
      description: Job variables.
      type: dict
    parameters:
      description: Default parameters.
      type: dict
    paused:
      description: Whether the deployment is paused.
      type: bool
    schedules:
      description: The schedules, each with C(id), C(schedule) (C(cron)/C(interval)/C(rrule), C(timezone),
        C(anchor_date)...), C(active), C(parameters), C(slug).
      type: list
      elements: dict
s3_upload:
  description: What the S3 upload did (would do, in check mode). Only for O(source.type=s3).
  returned: when O(source.type=s3) and O(state=present)
  type: dict
  contains:
    bucket:
      description: Bucket.
      type: str
    folder:
      description: Folder.
      type: str
    uploaded:
      description: Keys uploaded.
      type: list
      elements: str
    unchanged:
      description: Number of files already up to date.
      type: int
    deleted:
      description: Keys deleted (O(source.delete_extra)).
      type: list
      elements: str
flow_name:
  description: The flow's name (read from the code or given).
  returned: always
  type: str
  sample: weather
introspection:
  description: Where the flow's name and parameter schema came from.
  returned: always
  type: dict
  contains:
    source:
      description: V(code) (read by a Python process that imports C(prefect)), V(cache) (an entry of
        O(introspection_cache) whose code and environment are unchanged) or V(given) (nothing read).
      type: str
      sample: cache
    cache:
      description: What the cache lookup found (V(hit), V(miss) and why, V(disabled)).
      type: str
      returned: when the code was to be read
      sample: "miss: the code changed"
    python:
      description: The interpreter that read the flow, or whose result was reused.
      type: str
      returned: when RV(introspection.source) is not V(given)
"""

import copy
import json
import os
import sys

from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    PrefectClient,
    prefect_api_argument_spec,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_compare import (
    ScheduleError,
    actual_deployment_fields,
    build_pull_steps,
    create_body,
    deployment_changes,
    actual_schedule_view,
    describe_schedule,
    normalize_schedules,
    parse_entrypoint,
    plan_has_changes,
    plan_s3_upload,
    plan_schedules,
    planned_schedule_view,
    s3_folder,
    schedule_api_body,
    update_body,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils import flow_cache
from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_s3 import (
    S3Client,
    S3Error,
    scan_directory,
)

RESULT_MARK = "@@SELFHOSTED_PREFECT_INTROSPECTION@@"

# Run by the interpreter that has `prefect`, in the code directory:
#   python -c INTROSPECT MODE ENTRYPOINT
# Prints RESULT_MARK + one JSON object on its own line.
INTROSPECT = r'''
import ast, json, sys
MARK = "@@SELFHOSTED_PREFECT_INTROSPECTION@@"
def out(**kw):
    sys.stdout.write("\n" + MARK + json.dumps(kw, default=str) + "\n")
    sys.stdout.flush()
    raise SystemExit(0)
mode, entrypoint = sys.argv[1], sys.argv[2]
path, func = entrypoint.rsplit(":", 1)
try:
    with open(path, "rb") as handle:
        source = handle.read()
except (IOError, OSError) as exc:
    out(error="missing", msg="cannot read the entrypoint file %s: %s" % (path, exc))
try:
    tree = ast.parse(source, filename=path)
except SyntaxError as exc:
    out(error="syntax", msg="the entrypoint file %s is not valid Python: %s" % (path, exc))
top = func.split(".")[0]
node = None
for item in tree.body:
    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and item.name == top:
        node = item
if node is None:
    out(error="notfound", msg="%s has no function %r at its top level" % (path, top))
if "." not in func:
    def is_flow(deco):
        if isinstance(deco, ast.Call):
            deco = deco.func
        return (isinstance(deco, ast.Name) and deco.id == "flow") or (
            isinstance(deco, ast.Attribute) and deco.attr == "flow")
    if isinstance(node, ast.ClassDef) or not any(is_flow(d) for d in node.decorator_list):
        out(error="notflow", msg="%s:%s is not a flow: decorate it with @flow (from prefect import flow)" % (path, func))
try:
    import prefect
except Exception as exc:
    out(error="noprefect", msg="%s: %s" % (type(exc).__name__, exc), python=sys.executable)
try:
    if mode == "import":
        from prefect.flows import load_flow_from_entrypoint
        from prefect.utilities.callables import parameter_schema
        flow = load_flow_from_entrypoint(entrypoint, use_placeholder_flow=False)
        name = flow.name
        schema = parameter_schema(flow)
    else:
        from prefect.flows import load_flow_arguments_from_entrypoint
        from prefect.utilities.callables import parameter_schema_from_entrypoint
        name = load_flow_arguments_from_entrypoint(entrypoint, arguments={"name"})["name"]
        schema = parameter_schema_from_entrypoint(entrypoint)
    schema = schema.model_dump(mode="json", exclude_unset=True)
except Exception as exc:
    out(error="introspection", msg="%s: %s" % (type(exc).__name__, exc))
out(flow_name=name, parameter_openapi_schema=schema, prefect_version=getattr(prefect, "__version__", None),
    python=sys.executable, sys_path=[p for p in sys.path if p], prefect_file=getattr(prefect, "__file__", None))
'''


def timezone_known(name):
    """False only when this host's time zone database is readable and lacks ``name``."""
    try:
        import zoneinfo  # pylint: disable=import-outside-toplevel
    except ImportError:
        return True
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except Exception:  # pylint: disable=broad-except
        pass
    try:  # not found: trust that only when the database is there at all (listing it costs ~40 ms)
        zones = zoneinfo.available_timezones()
    except Exception:  # pylint: disable=broad-except
        return True
    return not zones or name in zones or name == "UTC"


class DeploymentModule(object):
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.client = None
        self.warnings = []
        self.introspection_info = {}

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, **kwargs)

    # -- input ----------------------------------------------------------------------
    def validate_source(self):
        source = self.params["source"]
        kind = source["type"]
        if kind in ("local", "s3"):
            if not source.get("path"):
                self.fail("source.path is required for a %s source: the directory holding the flow code" % kind)
            if not os.path.isdir(source["path"]):
                self.fail("source.path %s is not a directory on this host (%s source)" % (source["path"], kind))
        if kind == "s3":
            if not source.get("bucket"):
                self.fail("source.bucket is required for an s3 source")
            credentials = source.get("credentials") or {}
            if not credentials.get("block"):
                self.fail("an s3 source needs credentials: set source.credentials.block to the name of an"
                          " aws-credentials block (the workers read it to download the code; the deployment"
                          " never holds secrets), and optionally source.credentials.aws_access_key_id and"
                          " aws_secret_access_key for the upload")
            if bool(credentials.get("aws_access_key_id")) != bool(credentials.get("aws_secret_access_key")):
                self.fail("source.credentials: give both aws_access_key_id and aws_secret_access_key, or neither"
                          " (then they are read from the block)")
        if kind == "docker" and not source.get("image"):
            self.fail("source.image is required for a docker source")
        for option, kinds in (("bucket", ("s3",)), ("credentials", ("s3",)), ("endpoint_url", ("s3",)),
                              ("image", ("docker",)), ("introspect_path", ("docker",))):
            if source.get(option) and kind not in kinds:
                self.fail("source.%s does not apply to a %s source" % (option, kind))

    def code_dir(self):
        """The local directory holding the code, or None when it is not on this host."""
        source = self.params["source"] or {}
        if source.get("type") in ("local", "s3"):
            return source.get("path")
        if source.get("type") == "docker":
            path = source.get("introspect_path")
            if path and not os.path.isdir(path):
                self.fail("source.introspect_path %s is not a directory on this host" % path)
            return path
        return None

    def python_candidates(self):
        if self.params.get("prefect_python"):
            return [self.params["prefect_python"]]
        candidates = [sys.executable]
        prefect_bin = self.module.get_bin_path("prefect")
        if prefect_bin:
            try:
                with open(prefect_bin, "rb") as handle:
                    first = handle.readline().decode("utf-8", "replace").strip()
                if first.startswith("#!"):
                    interpreter = first[2:].strip().split()[0]
                    if interpreter and interpreter not in candidates and os.path.exists(interpreter):
                        candidates.append(interpreter)
            except (IOError, OSError):
                pass
        return candidates

    def introspect(self, code_dir, entrypoint):
        """dict(flow_name, parameter_openapi_schema) read with `prefect` (or from the cache), or a failure."""
        path, _func = parse_entrypoint(entrypoint)
        if not os.path.isfile(os.path.join(code_dir, path)):
            self.fail("entrypoint file %s not found in %s" % (path, code_dir))
        tried = []
        code = self.code_stamps(code_dir)
        for python in self.python_candidates():
            if not os.path.exists(python):
                self.fail("prefect_python %s does not exist on this host" % python)
            key = flow_cache.cache_key(code_dir, entrypoint, self.params["introspection"], python)
            cached = self.cache_lookup(key, code, python)
            if cached is not None:
                return cached
            rc, out, err = self.module.run_command([python, "-c", INTROSPECT, self.params["introspection"], entrypoint],
                                                   cwd=code_dir)
            result = None
            for line in out.splitlines():
                if line.startswith(RESULT_MARK):
                    result = json.loads(line[len(RESULT_MARK):])
            if result is None:
                self.fail("reading the flow from %s with %s failed (rc=%s)" % (entrypoint, python, rc),
                          stdout=out, stderr=err)
            if result.get("error") == "noprefect":
                tried.append("%s (%s)" % (python, result.get("msg")))
                continue
            if result.get("error"):
                self.fail("cannot register %s: %s" % (entrypoint, result["msg"]))
            self.introspection_info.update(source="code", python=python)
            if code is not None:
                self.cache_store(key, code, flow_cache.environment_paths(python, result, code_dir), result)
            return result
        return {"error": "noprefect", "tried": tried}

    def introspection_view(self):
        info = dict(self.introspection_info)
        info.setdefault("source", "given")
        return info

    # -- the flow cache (module_utils/flow_cache.py) ------------------------------------
    @property
    def cache_dir(self):
        if not self.params["introspection_cache"]:
            return None
        return self.params["introspection_cache_dir"] or flow_cache.default_cache_dir()

    def code_stamps(self, code_dir):
        """Stamps of the code, taken once per run; None when the cache is off or cannot be used."""
        if not self.cache_dir:
            self.introspection_info["cache"] = "disabled"
            return None
        try:
            return flow_cache.code_stamps(code_dir)
        except flow_cache.TooManyFiles:
            self.introspection_info["cache"] = "skipped: more than %d Python files" % flow_cache.MAX_FILES
            return None

    def cache_lookup(self, key, code, python):
        if code is None:
            return None
        found, reason = flow_cache.load(self.cache_dir, key, code)
        self.introspection_info["cache"] = ("hit: " if found else "miss: ") + reason
        if found is None:
            return None
        self.introspection_info.update(source="cache", python=python)
        return found

    def cache_store(self, key, code, env_paths, result):
        if self.module.check_mode:
            return  # check mode leaves the host as it was, the cache included
        kept = dict((k, result[k]) for k in ("flow_name", "parameter_openapi_schema", "prefect_version") if k in result)
        error = flow_cache.store(self.cache_dir, key, code, env_paths, kept)
        if error:
            self.warnings.append(error)

    def resolve_flow(self):
        """flow_name and parameter schema (None when not managed)."""
        p = self.params
        flow_name = p.get("flow_name")
        schema = p.get("parameter_openapi_schema")
        entrypoint = p.get("entrypoint")
        code_dir = self.code_dir() if p.get("source") else None
        if entrypoint:
            try:
                parse_entrypoint(entrypoint)
            except ValueError as exc:
                self.fail(to_native(exc))
        if p["state"] == "absent" and flow_name:
            return flow_name, None
        need = entrypoint and code_dir and (flow_name is None or schema is None)
        if need:
            found = self.introspect(code_dir, entrypoint)
            if found.get("error") == "noprefect":
                if flow_name is None:
                    self.fail("cannot read the flow's name from %s: the prefect package is not importable with %s."
                              " Set prefect_python to a Python that has prefect (e.g. the workers' venv), or give"
                              " flow_name (and parameter_openapi_schema)" % (entrypoint, "; ".join(found["tried"])))
                self.warnings.append("prefect is not importable here (%s): the parameter schema is not managed;"
                                     " set prefect_python or parameter_openapi_schema" % "; ".join(found["tried"]))
            else:
                if flow_name is not None and flow_name != found["flow_name"]:
                    self.fail("flow_name %r does not match the flow at %s, which is named %r"
                              % (flow_name, entrypoint, found["flow_name"]))
                flow_name = found["flow_name"]
                if schema is None:
                    schema = found["parameter_openapi_schema"]
        if flow_name is None:
            if p["state"] == "absent":
                self.fail("state=absent needs flow_name (or entrypoint and source so it can be read)")
            self.fail("flow_name is required when the code is not on this host (docker source without"
                      " source.introspect_path)")
        return flow_name, schema

    def desired_fields(self, schema):
        p = self.params
        source = p["source"]
        desired = {
            "entrypoint": p["entrypoint"],
            "pull_steps": build_pull_steps(source),
            "work_pool_name": p["work_pool_name"],
            "work_queue_name": p.get("work_queue_name"),
            "parameters": p.get("parameters"),
            "parameter_openapi_schema": schema,
            "enforce_parameter_schema": p.get("enforce_parameter_schema"),
            "description": p.get("description"),
            "version": p.get("version"),
            "tags": p.get("tags"),
            "paused": p.get("paused"),
        }
        job_variables = copy.deepcopy(p.get("job_variables"))
        if source["type"] == "docker":
            job_variables = job_variables or {}
            job_variables["image"] = source["image"]
        desired["job_variables"] = job_variables
        if p.get("concurrency_limit") is not None:
            if p["concurrency_limit"] < 0:
                self.fail("concurrency_limit must be 0 (no limit) or more")
            desired["concurrency_limit"] = p["concurrency_limit"] or None
        return desired

    # -- S3 -------------------------------------------------------------------------
    def s3_client(self):
        source = self.params["source"]
        credentials = source.get("credentials") or {}
        block_name = credentials["block"]
        block = self.client.get_or_none("/block_types/slug/aws-credentials/block_documents/name/%s"
                                        % quote(block_name, safe=""), params={"include_secrets": True})
        if block is None:
            self.fail("the aws-credentials block %r does not exist on the Prefect server; create it first"
                      " (selfhosted.prefect.block) with the S3 credentials and aws_client_parameters.endpoint_url"
                      % block_name)
        data = block.get("data") or {}
        access_key = credentials.get("aws_access_key_id") or data.get("aws_access_key_id")
        secret_key = credentials.get("aws_secret_access_key") or data.get("aws_secret_access_key")
        token = credentials.get("aws_session_token") or data.get("aws_session_token")
        client_parameters = data.get("aws_client_parameters") or {}
        endpoint_url = source.get("endpoint_url") or client_parameters.get("endpoint_url")
        region = source.get("region") or data.get("region_name")
        if not access_key or not secret_key:
            self.fail("no S3 credentials for the upload: the block %r has no aws_access_key_id/aws_secret_access_key"
                      " and source.credentials gives none" % block_name)
        try:
            return S3Client(access_key, secret_key, region=region, endpoint_url=endpoint_url, session_token=token,
                            validate_certs=source.get("validate_certs", True))
        except S3Error as exc:
            self.fail(to_native(exc))

    def plan_s3(self):
        source = self.params["source"]
        s3 = self.s3_client()
        bucket = source["bucket"]
        folder = s3_folder(source.get("folder"))
        try:
            remote = s3.list_objects(bucket, folder + "/" if folder else "")
        except S3Error as exc:
            if exc.code == "NoSuchBucket" or (exc.status == 404 and not exc.code):
                self.fail("the S3 bucket %r does not exist at %s; create it first" % (bucket, s3.endpoint_url or "AWS"))
            self.fail(to_native(exc))
        local = scan_directory(source["path"], source.get("exclude"))
        if not local:
            self.fail("source.path %s has no file to upload" % source["path"])
        plan = plan_s3_upload(local, remote, folder, delete_extra=source.get("delete_extra"))
        return s3, plan, local, remote

    def apply_s3(self, s3, plan):
        source = self.params["source"]
        try:
            for relative, key in plan["upload"]:
                s3.put_file(source["bucket"], key, os.path.join(source["path"], relative))
            for key in plan["delete"]:
                s3.delete_object(source["bucket"], key)
        except S3Error as exc:
            self.fail(to_native(exc))

    # -- server reads ---------------------------------------------------------------
    def read_deployment(self, flow_name, name):
        return self.client.get_or_none("/deployments/name/%s/%s" % (quote(flow_name, safe=""), quote(name, safe="")))

    def check_work_pool(self, pool):
        if self.client.get_or_none("/work_pools/%s" % quote(pool, safe="")) is None:
            self.fail("work pool %r does not exist on the Prefect server; create it first"
                      " (selfhosted.prefect.work_pool)" % pool)

    # -- main -------------------------------------------------------------------------
    def run(self):
        p = self.params
        if p["state"] == "present":
            missing = [o for o in ("entrypoint", "source", "work_pool_name") if not p.get(o)]
            if missing:
                self.fail("state=present needs %s" % ", ".join(missing))
            self.validate_source()
        try:
            schedules = normalize_schedules(p.get("schedules")) if p.get("schedules") is not None else None
        except ScheduleError as exc:
            self.fail(to_native(exc))
        for index, canon in enumerate(schedules or []):
            if canon.get("timezone") and not timezone_known(canon["timezone"]):
                self.fail("schedules[%d]: unknown timezone %r (use an IANA name such as Europe/Paris)"
                          % (index, canon["timezone"]))
        flow_name, schema = self.resolve_flow()
        self.client = PrefectClient.from_module(self.module)
        try:
            if p["state"] == "absent":
                return self.absent(flow_name)
            return self.present(flow_name, schema, schedules)
        except PrefectAPIError as exc:
            self.module.fail_json(**exc.to_fail_kwargs())

    def absent(self, flow_name):
        name = self.params["name"]
        existing = self.read_deployment(flow_name, name)
        result = dict(changed=existing is not None, deployment={}, flow_name=flow_name,
                      introspection=self.introspection_view())
        if self.module._diff:
            result["diff"] = dict(before=self.view(existing) if existing else {}, after={})
        if existing and not self.module.check_mode:
            self.client.delete_if_exists("/deployments/%s" % existing["id"])
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)

    def view(self, deployment, schedules_view=None):
        fields = actual_deployment_fields(deployment)
        fields["schedules"] = schedules_view if schedules_view is not None else actual_schedule_view(
            deployment.get("schedules"))
        return fields

    def present(self, flow_name, schema, schedules):
        p = self.params
        name = p["name"]
        desired = self.desired_fields(schema)
        existing = self.read_deployment(flow_name, name)
        if existing is None or existing.get("work_pool_name") != p["work_pool_name"]:
            # A deployment already in the pool proves the pool exists (deleting a pool detaches it).
            self.check_work_pool(p["work_pool_name"])

        s3_plan = None
        if p["source"]["type"] == "s3":
            s3, s3_plan, local, remote = self.plan_s3()

        diff = {"before": {}, "after": {}}
        if existing is None:
            changed = True
            after = {k: v for k, v in desired.items() if v is not None}
            after["schedules"] = [describe_schedule(c) for c in schedules or []]
            diff["after"] = after
            changes, plan = None, None
        else:
            actual = actual_deployment_fields(existing)
            changes = deployment_changes(desired, actual)
            plan = plan_schedules(schedules, existing.get("schedules") or []) if schedules is not None else None
            changed = bool(changes) or bool(plan and plan_has_changes(plan))
            before = self.view(existing)
            after = copy.deepcopy(before)
            after.update(changes)
            if plan is not None:
                after["schedules"] = planned_schedule_view(plan)
            diff["before"], diff["after"] = before, after

        if s3_plan is not None:
            if s3_plan["upload"] or s3_plan["delete"]:
                changed = True
            keys = [k for _r, k in s3_plan["upload"]] + list(s3_plan["delete"])
            diff["before"]["s3_objects"] = dict((k, remote[k]) for k in sorted(keys) if k in remote)
            local_by_key = dict((k, local[r]) for r, k in s3_plan["upload"])
            diff["after"]["s3_objects"] = dict((k, local_by_key[k]) for k in sorted(local_by_key))

        if changed and not self.module.check_mode:
            if s3_plan is not None:
                self.apply_s3(s3, s3_plan)
            if existing is None:
                self.create(flow_name, name, desired, schedules)
            else:
                self.apply_update(existing, changes, plan, desired)
            final = self.read_deployment(flow_name, name)
        else:
            final = existing

        result = dict(changed=changed, flow_name=flow_name, introspection=self.introspection_view(),
                      deployment=self.result_view(final, flow_name, name, desired, schedules))
        if s3_plan is not None:
            result["s3_upload"] = dict(
                bucket=p["source"]["bucket"], folder=s3_folder(p["source"].get("folder")),
                uploaded=[k for _r, k in s3_plan["upload"]], unchanged=len(s3_plan["unchanged"]),
                deleted=list(s3_plan["delete"]))
        if self.module._diff:
            result["diff"] = diff
        for warning in self.warnings:
            self.module.warn(warning)
        self.module.exit_json(**result)

    def create(self, flow_name, name, desired, schedules):
        """Create the flow (if needed) then the deployment. A flow made here is deleted again
        when the server refuses the deployment, so a refused input leaves nothing behind."""
        flow_existed = self.client.get_or_none("/flows/name/%s" % quote(flow_name, safe="")) is not None
        flow = self.client.post("/flows/", {"name": flow_name})
        try:
            self.client.post("/deployments/", create_body(desired, flow["id"], name, schedules or []))
        except PrefectAPIError:
            if not flow_existed:
                try:
                    self.client.delete_if_exists("/flows/%s" % flow["id"])
                except PrefectAPIError:
                    pass
            raise

    def apply_update(self, existing, changes, plan, desired):
        dep_id = existing["id"]
        if changes:
            self.client.patch("/deployments/%s" % dep_id, update_body(changes, desired))
        if plan is None:
            return
        for actual in plan["delete"]:
            self.client.delete_if_exists("/deployments/%s/schedules/%s" % (dep_id, actual["id"]))
        for canon, actual, definition_changed in plan["update"]:
            self.client.patch("/deployments/%s/schedules/%s" % (dep_id, actual["id"]),
                              schedule_api_body(canon, for_update=True, include_definition=definition_changed))
        if plan["create"]:
            self.client.post("/deployments/%s/schedules" % dep_id,
                             [schedule_api_body(c) for c in plan["create"]])

    def result_view(self, deployment, flow_name, name, desired, schedules):
        if deployment is None:
            # check mode, not created yet
            out = {k: v for k, v in desired.items() if v is not None}
            out.update(id=None, flow_id=None, schedules=[describe_schedule(c) for c in schedules or []])
        else:
            out = actual_deployment_fields(deployment)
            out.update(id=deployment["id"], flow_id=deployment.get("flow_id"),
                       schedules=sorted(deployment.get("schedules") or [], key=lambda s: str(s.get("created"))))
        out.update(name="%s/%s" % (flow_name, name), deployment_name=name, flow_name=flow_name)
        return out


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        name=dict(type="str", required=True),
        flow_name=dict(type="str"),
        entrypoint=dict(type="str"),
        source=dict(type="dict", options=dict(
            type=dict(type="str", required=True, choices=["local", "s3", "docker"]),
            path=dict(type="path"),
            bucket=dict(type="str"),
            folder=dict(type="str", default="", aliases=["prefix"]),
            endpoint_url=dict(type="str"),
            region=dict(type="str"),
            validate_certs=dict(type="bool", default=True),
            credentials=dict(type="dict", no_log=False, options=dict(
                block=dict(type="str", required=True),
                aws_access_key_id=dict(type="str", no_log=True),
                aws_secret_access_key=dict(type="str", no_log=True),
                aws_session_token=dict(type="str", no_log=True),
            )),
            exclude=dict(type="list", elements="str",
                         default=["__pycache__", "*.pyc", ".git", ".venv", ".DS_Store"]),
            delete_extra=dict(type="bool", default=False),
            image=dict(type="str"),
            working_dir=dict(type="str", default="/opt/prefect/flows"),
            introspect_path=dict(type="path"),
        )),
        prefect_python=dict(type="path"),
        introspection=dict(type="str", choices=["static", "import"], default="static"),
        introspection_cache=dict(type="bool", default=True),
        introspection_cache_dir=dict(type="path"),
        parameter_openapi_schema=dict(type="dict"),
        work_pool_name=dict(type="str"),
        work_queue_name=dict(type="str"),
        job_variables=dict(type="dict"),
        parameters=dict(type="dict"),
        tags=dict(type="list", elements="str"),
        description=dict(type="str"),
        version=dict(type="str"),
        schedules=dict(type="list", elements="dict", options=dict(
            cron=dict(type="str"),
            day_or=dict(type="bool"),
            interval=dict(type="float"),
            anchor_date=dict(type="str"),
            rrule=dict(type="str"),
            timezone=dict(type="str"),
            active=dict(type="bool", default=True),
            parameters=dict(type="dict"),
            slug=dict(type="str"),
            max_scheduled_runs=dict(type="int"),
        ), mutually_exclusive=[("cron", "interval", "rrule")], required_one_of=[("cron", "interval", "rrule")]),
        paused=dict(type="bool"),
        concurrency_limit=dict(type="int"),
        enforce_parameter_schema=dict(type="bool"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    DeploymentModule(module).run()


if __name__ == "__main__":
    main()
