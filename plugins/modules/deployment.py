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
                M(selfhosted.prefect.block_document)) the workers read the S3 credentials from. Required.
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
            parameters from. Without it (and without O(source.build)), give O(flow_name) (and optionally
            O(parameter_openapi_schema)).
        type: path
      registry_credentials:
        description:
          - With V(docker), the name of a C(docker-registry-credentials) block (see
            M(selfhosted.prefect.block_document)) for a private registry.
          - The deployment's job variables point the workers at the block (C(registry_credentials), as a
            block reference), so a docker worker logs in with it before it pulls the image; no worker needs
            the password in its own configuration.
          - With O(source.build), the image is also looked up and pushed with these credentials.
        type: str
      build:
        description:
          - With V(docker), build the image from the flow's code on this host's Docker engine and push it
            to O(source.image), a repository without a tag.
          - The tag is C(sha-) and 12 hex digits of the SHA-256 of the build context (the files under
            O(source.build.path), made into an archive that is the same for the same files) and
            O(source.build.args). When the registry already holds that tag, nothing is built or pushed, and
            the deployment is unchanged; edited code gets a new tag, and the deployment moves to it.
          - The engine builds and pushes, as C(docker build) and C(docker push) would on that host, so it
            must trust the registry (the P(selfhosted.prefect.registry#role) role puts its CA in
            C(/etc/docker/certs.d) of the hosts in C(registry_trust_hosts)). No Docker SDK or buildx is
            needed; the module talks to the engine's unix socket.
          - The flow's name and parameters are read from O(source.build.path) unless
            O(source.introspect_path) is given.
        type: dict
        suboptions:
          path:
            description:
              - The build context, holding the flow's code (and its C(requirements.txt), if any).
            type: path
            required: true
          dockerfile:
            description:
              - A Dockerfile of the context, relative to O(source.build.path).
              - When not given and O(source.build.base_image) is, a Dockerfile is written into the context
                archive (not into the directory) - C(FROM) the base image, the code copied to
                O(source.working_dir), and C(pip install -r requirements.txt) when the context has one
                (which needs a package index the engine can reach). When neither is given, the context's
                C(Dockerfile) is used.
            type: str
          base_image:
            description:
              - The image the generated Dockerfile starts from, holding Prefect and the flow's dependencies,
                for example a base image of this registry, C(registry.example.internal:5000/flows/base:3.9.1).
                Its name (not its content) is part of the tag, so give a rebuilt base image a new tag.
            type: str
          args:
            description:
              - Build arguments (C(--build-arg)); part of the tag.
            type: dict
          exclude:
            description:
              - Glob patterns of files and directories left out of the context, matched against the path
                relative to O(source.build.path) and against each name.
              - Defaults to C(__pycache__), C(*.pyc), C(.git), C(.venv), C(.DS_Store).
            type: list
            elements: str
          pull:
            description:
              - Pull a newer base image before building (the engine must reach its registry).
            type: bool
            default: false
          push:
            description:
              - Push the image to its registry. With V(false) the image only exists on this engine, and
                whether it must be built is asked of the engine instead of the registry.
            type: bool
            default: true
          docker_host:
            description:
              - The engine's socket (C(unix://) only).
            type: str
            default: unix:///var/run/docker.sock
          timeout:
            description:
              - Seconds the build, and the push, may take.
            type: int
            default: 600
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
  introspection_timeout:
    description:
      - Seconds the Python process that reads the flow (see O(prefect_python) and O(introspection))
        may run. When they pass the process is killed and the module fails, instead of waiting for
        a flow file that blocks when it is imported.
    type: float
    default: 120
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
  crash_retries:
    description:
      - How many times a run of this deployment that ended V(Crashed) after it had started (its process,
        container, worker, machine or Docker engine died, or its heartbeats stopped) is scheduled again.
        The same flow run goes back to V(Scheduled) (named V(AwaitingRetry), as the UI's retry does) with
        the same parameters, and the next free worker of the pool runs it; its run count tells the attempts.
      - Prefect retries only runs that fail in their code (the flow's C(retries)); a crashed run is never
        retried by Prefect itself. The module therefore keeps an automation on the server named
        C(Retry crashed runs of <flow>/<deployment>) beside the deployment; V(0) removes it, and
        O(state=absent) removes it with the deployment. Not managed when not set.
      - A run that crashed before it ever ran (its infrastructure could not be made, for example an image
        that cannot be pulled) is not retried, as its run count stays 0 and retrying would loop for as long
        as the cause lasts.
      - Between 0 and 10. Choose it per deployment, since a retried run executes its code again from the
        start; use it for flows that can run twice (idempotent writes).
      - Automations run in the server's triggers service (on by default).
    type: int
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
  - The values of C(job_variables.env) (a run's environment, which may hold secrets) are masked in the
    result, the diff and the echoed arguments; the names of the variables stay, and a changed value
    shows as C(******** (changed)) in the diff.
seealso:
  - module: selfhosted.prefect.flow_run
  - module: selfhosted.prefect.work_pool
  - module: selfhosted.prefect.block_document
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

- name: Build the flow's image from its code, push it to our registry, register it for a Docker pool
  selfhosted.prefect.deployment:
    name: weather-image
    entrypoint: weather.py:weather
    source:
      type: docker
      image: registry.lab.internal:5000/flows/weather  # tagged sha-<hash of the code>
      registry_credentials: lab-registry               # a docker-registry-credentials block
      build:
        path: /srv/flows/weather
        base_image: registry.lab.internal:5000/flows/base:3.9.1
    work_pool_name: docker-pool

- name: A deployment whose crashed runs (worker or machine died under them) are run again, twice at most
  selfhosted.prefect.deployment:
    name: nightly-load
    entrypoint: load.py:load
    source:
      type: local
      path: /srv/prefect/flows
    work_pool_name: process-pool
    crash_retries: 2

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
      description: Job variables; the values of C(env) are masked.
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
image:
  description: The image O(source.build) made (would make, in check mode).
  returned: when O(source.build) is given and O(state=present)
  type: dict
  contains:
    name:
      description: The image reference the deployment uses.
      type: str
      sample: registry.lab.internal:5000/flows/weather:sha-65bd2408ad5c
    repository:
      description: The repository.
      type: str
    tag:
      description: The tag made from the build context.
      type: str
      sample: sha-65bd2408ad5c
    existed:
      description: Whether the registry (or with O(source.build.push=false), the engine) already had it.
      type: bool
    built:
      description: Whether the engine built it in this run.
      type: bool
    pushed:
      description: Whether it was pushed in this run.
      type: bool
    files:
      description: Number of files of the build context.
      type: int
    dockerfile:
      description: The Dockerfile used, relative to the context (C(.selfhosted-prefect.Dockerfile) when written
        by the module).
      type: str
flow_name:
  description: The flow's name (read from the code or given).
  returned: always
  type: str
  sample: weather
crash_retry_automation:
  description:
    - The automation that retries the deployment's crashed runs (see O(crash_retries)), as the server holds
      it after the run (predicted in check mode); empty when there is none.
  returned: when O(crash_retries) is set
  type: dict
  sample: {"name": "Retry crashed runs of weather/nightly", "enabled": true}
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

from urllib.parse import quote

from ansible.module_utils.common.text.converters import to_native

from ansible_collections.selfhosted.prefect.plugins.module_utils.automation import AutomationManager
from ansible_collections.selfhosted.prefect.plugins.module_utils.deployment_fields import (
    actual_deployment_fields,
    check_source,
    code_dir,
    create_body,
    deployment_changes,
    deployment_view,
    desired_fields,
    parse_entrypoint,
    result_view,
    update_body,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.flow_reader import FlowReadError, FlowReader
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.masking import (
    JOB_VARIABLES_ENV,
    MaskedArgsModule,
    mask_secrets,
    masked_changes_pair,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    PrefectAPIError,
    prefect_api_argument_spec,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.schedules import (
    describe_schedule,
    desired_schedules,
    plan_has_changes,
    plan_schedules,
    planned_schedule_view,
    schedule_api_body,
)


# The values of the runs' environment may be secrets: results show their names only.
ENV_PATHS = [JOB_VARIABLES_ENV]


def mask_env(view):
    """A copy of a deployment view with the values of job_variables.env masked."""
    return mask_secrets(view, ENV_PATHS)


def masked_env_pair(before, after):
    """(before, after) of the diff with the env values masked, a changed one as SECRET_CHANGED_MASK."""
    return masked_changes_pair(before, after, ENV_PATHS)


CRASH_RETRIES_MAX = 10


def crash_retry_params(flow_name, name, deployment_id, retries):
    """The options (as the automation module takes them) of the automation that schedules again a
    run of the deployment that crashed after it started (run count 1..retries); absent for 0."""
    params = dict(name="Retry crashed runs of %s/%s" % (flow_name, name), state="absent", enabled=True,
                  description=None, tags=None, trigger=None, actions=None, actions_on_trigger=None,
                  actions_on_resolve=None)
    if not retries:
        return params
    params.update(
        state="present",
        description="Managed by selfhosted.prefect.deployment (crash_retries: %d): a run of %s/%s that ends"
                    " Crashed after it started is scheduled again, at most %d time(s)."
                    % (retries, flow_name, name, retries),
        trigger=dict(
            type="event", posture="Reactive", expect=["prefect.flow-run.Crashed"],
            # The run count is the number of times the run entered Running: 0 for a run that
            # never started, which is not retried (it would loop while its cause lasts).
            match={"prefect.resource.id": "prefect.flow-run.*",
                   "prefect.run-count": [str(n) for n in range(1, retries + 1)]},
            match_related={"prefect.resource.id": "prefect.deployment.%s" % deployment_id,
                           "prefect.resource.role": "deployment"},
            for_each=["prefect.resource.id"], threshold=1, within=0),
        actions=[dict(type="change-flow-run-state", state="SCHEDULED", name="AwaitingRetry",
                      message="Crashed after it started; scheduled again (crash_retries: %d)." % retries)],
    )
    return params


def crash_retries_of(automation):
    """How many retries an existing crash-retry automation grants (0 when there is none)."""
    if not automation:
        return 0
    counts = ((automation.get("trigger") or {}).get("match") or {}).get("prefect.run-count") or []
    return len(counts) if isinstance(counts, list) else 1


class DeploymentManager(PrefectManager):
    """A deployment of a flow. The input is checked and the flow read (``flow_reader.py``) when the
    manager is made, before the server is asked anything."""

    def __init__(self, module, client):
        super(DeploymentManager, self).__init__(module, client)
        p = self.params
        self.reader = None
        try:
            if p["state"] == "present":
                missing = [o for o in ("entrypoint", "source", "work_pool_name") if not p.get(o)]
                if missing:
                    self.fail("state=present needs %s" % ", ".join(missing))
                check_source(p["source"])
            if p.get("crash_retries") is not None and not 0 <= p["crash_retries"] <= CRASH_RETRIES_MAX:
                raise ValueError("crash_retries must be between 0 and %d, got %d"
                                 % (CRASH_RETRIES_MAX, p["crash_retries"]))
            self.schedules = desired_schedules(p.get("schedules"))
            self.flow_name, self.schema = self.read_flow()
        except (ValueError, FlowReadError) as exc:
            self.fail(to_native(exc), **getattr(exc, "details", {}))
        self.name = p["name"]
        self.path = "/deployments/name/%s/%s" % (quote(self.flow_name, safe=""), quote(self.name, safe=""))
        self.header = "deployment %s/%s" % (self.flow_name, self.name)

    def read_flow(self):
        """flow_name and parameter schema (None when not managed), read from the code when needed."""
        p = self.params
        directory = code_dir(p["source"]) if p.get("source") else None
        if p.get("entrypoint"):
            parse_entrypoint(p["entrypoint"])
        if p["state"] == "absent" and p.get("flow_name"):
            return p["flow_name"], None
        self.reader = FlowReader(self.module)
        flow_name, schema = self.reader.resolve(p.get("entrypoint"), directory, p.get("flow_name"),
                                                p.get("parameter_openapi_schema"))
        for warning in self.reader.warnings:
            self.warn(warning)
        if flow_name is None:
            if p["state"] == "absent":
                raise ValueError("state=absent needs flow_name (or entrypoint and source so it can be read)")
            raise ValueError("flow_name is required when the code is not on this host (docker source without"
                             " source.introspect_path or source.build)")
        return flow_name, schema

    def result(self, changed, before=None, after=None, header=None, **values):
        """The module result, the values of job_variables.env masked in the deployment and the diff."""
        before, after = masked_env_pair(before, after)
        if "deployment" in values:
            values["deployment"] = mask_env(values["deployment"])
        return super(DeploymentManager, self).result(changed, before, after, header, **values)

    def values(self, deployment):
        """The return values every run has."""
        return dict(deployment=deployment, flow_name=self.flow_name,
                    introspection=self.reader.info if self.reader else {"source": "given"})

    def crash_retry(self, deployment_id, retries, apply):
        """(changed, retries the server's automation grants now, automation after) for the automation
        of O(crash_retries); it is written only when ``apply`` and not in check mode."""
        params = crash_retry_params(self.flow_name, self.name, deployment_id, retries)
        manager = AutomationManager(self.module, self.client, params=params)
        manager.check_mode = self.check_mode or not apply
        current = manager.find()
        if retries and deployment_id is None:
            # A deployment yet to be made (check mode): its automation would be made with it.
            return True, crash_retries_of(current), {"name": params["name"], "enabled": True}
        result = manager.present(current) if retries else manager.absent(current)
        self._warnings.extend(manager._warnings)  # pylint: disable=protected-access
        return result["changed"], crash_retries_of(current), result.get("automation") or {}

    def absent(self):
        existing = self.client.get_or_none(self.path)
        # The automation that retries its crashed runs goes with the deployment.
        retry_changed = self.crash_retry(None, 0, apply=True)[0]
        if existing and not self.check_mode:
            self.client.delete_if_exists("/deployments/%s" % existing["id"])
        return self.result(existing is not None or retry_changed, deployment_view(existing) if existing else {}, {},
                           self.header, **self.values({}))

    def present(self):
        p = self.params
        existing = self.client.get_or_none(self.path)
        if existing is None or existing.get("work_pool_name") != p["work_pool_name"]:
            # A deployment already in the pool proves the pool exists (deleting a pool detaches it).
            if self.client.get_or_none("/work_pools/%s" % quote(p["work_pool_name"], safe="")) is None:
                self.fail("work pool %r does not exist on the Prefect server; create it first"
                          " (selfhosted.prefect.work_pool)" % p["work_pool_name"])
        sync = self.s3() if p["source"]["type"] == "s3" else None
        registry_block = self.registry_credentials() if p["source"].get("registry_credentials") else None
        builder = self.image(registry_block) if p["source"].get("build") else None
        try:
            desired = desired_fields(p, self.schema, image=builder.ref if builder else None,
                                     registry_credentials_id=registry_block["id"] if registry_block else None)
        except ValueError as exc:
            self.fail(to_native(exc))

        changes = plan = None
        if existing is None:
            changed, before = True, {}
            after = {k: v for k, v in desired.items() if v is not None}
            after["schedules"] = [describe_schedule(c) for c in self.schedules or []]
        else:
            changes = deployment_changes(desired, actual_deployment_fields(existing))
            if self.schedules is not None:
                plan = plan_schedules(self.schedules, existing.get("schedules") or [])
            changed = bool(changes) or bool(plan and plan_has_changes(plan))
            before = deployment_view(existing)
            after = copy.deepcopy(before)
            after.update(changes)
            if plan is not None:
                after["schedules"] = planned_schedule_view(plan)
        values = {}
        retries = p["crash_retries"]
        retry_changed = False
        if retries is not None:
            retry_changed, retries_before, values["crash_retry_automation"] = self.crash_retry(
                existing["id"] if existing else None, retries, apply=False)
            if existing is not None:
                before["crash_retries"] = retries_before
            after["crash_retries"] = retries
            changed = changed or retry_changed
        if sync is not None:
            changed = changed or sync.changed
            before["s3_objects"], after["s3_objects"] = sync.diff_objects()
            values["s3_upload"] = sync.result()
        if builder is not None:
            changed = changed or builder.changed

        final = existing
        if changed and not self.check_mode:
            if sync is not None:
                self.s3(sync)
            if builder is not None:
                self.image(registry_block, builder)
            if existing is None:
                self.create(desired)
            else:
                self.update(existing["id"], changes, plan, desired)
            final = self.client.get_or_none(self.path)
            if retry_changed:
                values["crash_retry_automation"] = self.crash_retry(final["id"], retries, apply=True)[2]
        if builder is not None:
            values["image"] = builder.result()
        values.update(self.values(result_view(final, self.flow_name, self.name, desired, self.schedules)))
        return self.result(changed, before, after, self.header, **values)

    def s3(self, sync=None):
        """Plan the S3 upload, or apply the planned ``sync`` (imported here: only S3 sources pay for it)."""
        from ansible_collections.selfhosted.prefect.plugins.module_utils.s3_sync import (  # pylint: disable=import-outside-toplevel
            S3Error,
            S3Sync,
        )
        try:
            if sync is None:
                sync = S3Sync(self.params["source"], self.client)
                sync.make_plan()
            else:
                sync.apply()
        except S3Error as exc:
            self.fail(to_native(exc))
        return sync

    def registry_credentials(self):
        """The ``docker-registry-credentials`` block named by ``source.registry_credentials`` (with its
        password, which stays in the module)."""
        name = self.params["source"]["registry_credentials"]
        block = self.client.get_or_none("/block_types/slug/docker-registry-credentials/block_documents/name/%s"
                                        % quote(name, safe=""), params={"include_secrets": True})
        if block is None:
            self.fail("the docker-registry-credentials block %r does not exist on the Prefect server; create it"
                      " first (selfhosted.prefect.block_document, fields username, password, registry_url)" % name)
        data = block.get("data") or {}
        registry_url = (data.get("registry_url") or "").split("://")[-1].rstrip("/")
        image = self.params["source"]["image"] or ""
        if registry_url and not image.startswith(registry_url + "/"):
            self.warn("the docker-registry-credentials block %r is for %s, but source.image %s is not in that"
                      " registry" % (name, registry_url, image))
        return block

    def image(self, registry_block, builder=None):
        """Plan the image of ``source.build`` (imported here: only builds pay for it), or apply ``builder``."""
        from ansible_collections.selfhosted.prefect.plugins.module_utils.image_build import (  # pylint: disable=import-outside-toplevel
            ImageBuildError,
            ImageBuilder,
        )
        source = self.params["source"]
        try:
            if builder is None:
                data = (registry_block or {}).get("data") or {}
                credentials = (data["username"], data.get("password") or "") if data.get("username") else None
                builder = ImageBuilder(source["image"], source["build"], source["working_dir"], credentials)
                builder.plan()
            else:
                builder.apply()
        except ImageBuildError as exc:
            self.fail(to_native(exc))
        return builder

    def create(self, desired):
        """Create the flow (if needed) then the deployment. A flow made here is deleted again
        when the server refuses the deployment, so a refused input leaves nothing behind."""
        flow_existed = self.client.get_or_none("/flows/name/%s" % quote(self.flow_name, safe="")) is not None
        # Both are upserts (the server answers an existing flow, updates an existing deployment), so
        # they may be repeated after an error that leaves their fate unknown.
        flow = self.client.post("/flows/", {"name": self.flow_name}, idempotent=True)
        try:
            self.client.post("/deployments/", create_body(desired, flow["id"], self.name, self.schedules or []),
                             idempotent=True)
        except PrefectAPIError:
            if not flow_existed:
                try:
                    self.client.delete_if_exists("/flows/%s" % flow["id"])
                except PrefectAPIError:
                    pass
            raise

    def update(self, dep_id, changes, plan, desired):
        """PATCH the changed fields, then the schedules one by one (their ids and anchors stay)."""
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
            self.client.post("/deployments/%s/schedules" % dep_id, [schedule_api_body(c) for c in plan["create"]])


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
            registry_credentials=dict(type="str", no_log=False),
            build=dict(type="dict", options=dict(
                path=dict(type="path", required=True),
                dockerfile=dict(type="str"),
                base_image=dict(type="str"),
                args=dict(type="dict"),
                exclude=dict(type="list", elements="str"),
                pull=dict(type="bool", default=False),
                push=dict(type="bool", default=True),
                docker_host=dict(type="str", default="unix:///var/run/docker.sock"),
                timeout=dict(type="int", default=600),
            )),
        )),
        prefect_python=dict(type="path"),
        introspection=dict(type="str", choices=["static", "import"], default="static"),
        introspection_cache=dict(type="bool", default=True),
        introspection_cache_dir=dict(type="path"),
        introspection_timeout=dict(type="float", default=120.0),
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
        crash_retries=dict(type="int"),
        state=dict(type="str", choices=["present", "absent"], default="present"),
    )
    module = MaskedArgsModule(argument_spec=argument_spec, supports_check_mode=True, masked_paths=ENV_PATHS)
    run_module(module, DeploymentManager)


if __name__ == "__main__":
    main()
