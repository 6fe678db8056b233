# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A deployment's own fields: what the user asks for, what the server holds, what differs.

Pure logic of the ``deployment`` module (no I/O but the ``os.path.isdir`` checks of
:func:`check_source` and :func:`code_dir`), unit-tested directly:

* :func:`check_source` and :func:`parse_entrypoint` check the ``source`` and
  ``entrypoint`` options; :func:`code_dir` is where the flow's code can be read on
  this host.
* :func:`build_pull_steps` makes the pull steps of the three code sources
  (local directory, S3 folder, Docker image).
* :func:`desired_fields` turns the module's options into the managed fields;
  :func:`actual_deployment_fields` reads them from a deployment of the API;
  :func:`deployment_changes` lists what differs.
* :func:`create_body` and :func:`update_body` are the bodies of the API calls
  (schedules are never sent in an update: ``schedules.py`` plans them one by one).
* :func:`deployment_view` and :func:`result_view` are what diffs and the
  ``deployment`` return value show.

Every check raises ``ValueError`` with the message the module fails with.
"""

from __future__ import annotations

import copy
import fnmatch
import os
import re

from ansible_collections.selfhosted.prefect.plugins.module_utils.schedules import (
    actual_schedule_view,
    describe_schedule,
    schedule_api_body,
)

# Fields of a deployment this collection manages, in the order they are shown in diffs.
DEPLOYMENT_FIELDS = (
    "entrypoint",
    "pull_steps",
    "work_pool_name",
    "work_queue_name",
    "job_variables",
    "parameters",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "description",
    "version",
    "tags",
    "paused",
    "concurrency_limit",
)

LOCAL_PULL_STEP = "prefect.deployments.steps.set_working_directory"
S3_PULL_STEP = "prefect_aws.deployments.steps.pull_from_s3"


# --------------------------------------------------------------------------------------
# deployment fields
# --------------------------------------------------------------------------------------
def actual_deployment_fields(deployment):
    """The managed fields of a deployment as read from ``GET /deployments/...``."""
    out = {}
    for field in DEPLOYMENT_FIELDS:
        if field == "concurrency_limit":
            gcl = deployment.get("global_concurrency_limit") or {}
            limit = gcl.get("limit") if isinstance(gcl, dict) else None
            if limit is None:
                limit = deployment.get("concurrency_limit")
            out[field] = limit
        else:
            out[field] = copy.deepcopy(deployment.get(field))
    return out


def _field_equal(field, desired, actual):
    if field == "tags":
        return sorted(set(desired or [])) == sorted(set(actual or []))
    if field in ("job_variables", "parameters", "parameter_openapi_schema"):
        return (desired or {}) == (actual or {})
    if field == "pull_steps":
        return (desired or []) == (actual or [])
    if field == "description":
        return (desired or None) == (actual or None)
    return desired == actual


def deployment_changes(desired, actual):
    """Fields whose desired value differs from the actual one.

    ``desired`` holds only the fields the user manages (a field left out, or None,
    is not compared, except ``concurrency_limit`` where None means no limit and
    is compared when present). Returns ``{field: desired_value}``.
    """
    changes = {}
    for field in DEPLOYMENT_FIELDS:
        if field not in desired:
            continue
        value = desired[field]
        if value is None and field != "concurrency_limit":
            continue
        if not _field_equal(field, value, actual.get(field)):
            changes[field] = copy.deepcopy(value)
    return changes


def update_body(changes, desired):
    """Body of ``PATCH /deployments/{id}`` for the changed fields.

    The server only resolves a work queue when it gets the pool name as well, so
    both go together. ``schedules`` are never sent here: they are managed one by
    one so their ids and anchors stay stable.
    """
    body = copy.deepcopy(changes)
    if "work_queue_name" in body or "work_pool_name" in body:
        if desired.get("work_pool_name"):
            body["work_pool_name"] = desired["work_pool_name"]
        if desired.get("work_queue_name"):
            body["work_queue_name"] = desired["work_queue_name"]
    return body


def create_body(desired, flow_id, name, schedules):
    """Body of ``POST /deployments/`` for a new deployment."""
    body = {"name": name, "flow_id": flow_id}
    for field in DEPLOYMENT_FIELDS:
        value = desired.get(field)
        if value is None:
            continue
        body[field] = copy.deepcopy(value)
    body["schedules"] = [schedule_api_body(canon) for canon in schedules]
    return body


def desired_fields(params, schema, image=None, registry_credentials_id=None):
    """The managed fields the module's options ask for (None: not managed).

    ``schema`` is the flow's parameter schema (read from the code or given; None when
    not managed). A Docker source always sets the ``image`` job variable: ``image`` (the
    reference ``source.build`` made) or ``source.image``; with ``registry_credentials_id``
    (the id of the ``docker-registry-credentials`` block) also ``registry_credentials``,
    as a block reference the worker resolves when it pulls."""
    source = params["source"]
    desired = {
        "entrypoint": params["entrypoint"],
        "pull_steps": build_pull_steps(source),
        "work_pool_name": params["work_pool_name"],
        "work_queue_name": params.get("work_queue_name"),
        "parameters": params.get("parameters"),
        "parameter_openapi_schema": schema,
        "enforce_parameter_schema": params.get("enforce_parameter_schema"),
        "description": params.get("description"),
        "version": params.get("version"),
        "tags": params.get("tags"),
        "paused": params.get("paused"),
    }
    job_variables = copy.deepcopy(params.get("job_variables"))
    if source["type"] == "docker":
        job_variables = job_variables or {}
        job_variables["image"] = image or source["image"]
        if registry_credentials_id:
            job_variables["registry_credentials"] = registry_credentials_ref(registry_credentials_id)
    desired["job_variables"] = job_variables
    if params.get("concurrency_limit") is not None:
        if params["concurrency_limit"] < 0:
            raise ValueError("concurrency_limit must be 0 (no limit) or more")
        desired["concurrency_limit"] = params["concurrency_limit"] or None
    return desired


def deployment_view(deployment):
    """A deployment of the API as diffs show it: its managed fields and readable schedules."""
    fields = actual_deployment_fields(deployment)
    fields["schedules"] = actual_schedule_view(deployment.get("schedules"))
    return fields


def result_view(deployment, flow_name, name, desired, schedules):
    """The ``deployment`` return value: the deployment read after the run or, when it
    does not exist yet (check mode), what it would be."""
    if deployment is None:
        out = {k: v for k, v in desired.items() if v is not None}
        out.update(id=None, flow_id=None, schedules=[describe_schedule(c) for c in schedules or []])
    else:
        out = actual_deployment_fields(deployment)
        out.update(id=deployment["id"], flow_id=deployment.get("flow_id"),
                   schedules=sorted(deployment.get("schedules") or [], key=lambda s: str(s.get("created"))))
    out.update(name="%s/%s" % (flow_name, name), deployment_name=name, flow_name=flow_name)
    return out


# --------------------------------------------------------------------------------------
# code sources
# --------------------------------------------------------------------------------------
def s3_folder(folder):
    """The S3 folder without leading/trailing slashes ('' for the bucket root)."""
    return (folder or "").strip("/")


def s3_block_reference(block_name, block_type="aws-credentials"):
    """The template a pull step uses to read a credentials block on the worker."""
    return "{{ prefect.blocks.%s.%s }}" % (block_type, block_name)


def registry_credentials_ref(block_document_id):
    """The job variable that points a docker worker at a ``docker-registry-credentials`` block.
    The server validates job variables against the pool's schema, which accepts a
    ``$ref`` but not a ``{{ prefect.blocks... }}`` template for this object."""
    return {"$ref": {"block_document_id": block_document_id}}


def build_pull_steps(source):
    """Pull steps for a code source (a dict as the module's ``source`` option).

    * local: ``set_working_directory`` to the shared directory;
    * s3: ``pull_from_s3`` of the bucket folder into the run's working directory,
      credentials by reference to a block, never inline;
    * docker: ``set_working_directory`` to the code's directory in the image.
    """
    kind = source.get("type")
    if kind == "local":
        return [{LOCAL_PULL_STEP: {"directory": source["path"]}}]
    if kind == "docker":
        return [{LOCAL_PULL_STEP: {"directory": source.get("working_dir") or "/opt/prefect/flows"}}]
    if kind == "s3":
        credentials = source.get("credentials") or {}
        block = credentials.get("block")
        if not block:
            raise ValueError("an s3 source needs credentials.block, the name of an aws-credentials block"
                             " the workers read their S3 credentials from")
        step = {
            "requires": "prefect-aws",
            "bucket": source["bucket"],
            "folder": s3_folder(source.get("folder")),
            "credentials": s3_block_reference(block, credentials.get("block_type") or "aws-credentials"),
        }
        client_parameters = {}
        if source.get("endpoint_url"):
            client_parameters["endpoint_url"] = source["endpoint_url"]
        if source.get("region"):
            client_parameters["region_name"] = source["region"]
        if client_parameters:
            step["client_parameters"] = client_parameters
        return [{S3_PULL_STEP: step}]
    raise ValueError("unknown source type %r (local, s3 or docker)" % (kind,))


def parse_entrypoint(entrypoint):
    """``(path, function)`` of ``path/to/file.py:function``; raises ValueError."""
    if not entrypoint or ":" not in entrypoint:
        raise ValueError("entrypoint %r must look like path/to/file.py:flow_function" % (entrypoint,))
    path, func = entrypoint.rsplit(":", 1)
    if not path or not func or not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", func):
        raise ValueError("entrypoint %r must look like path/to/file.py:flow_function" % (entrypoint,))
    if path.startswith("/"):
        raise ValueError("entrypoint %r must be relative to the code directory, not absolute" % (entrypoint,))
    if ".." in path.replace("\\", "/").split("/"):
        raise ValueError("entrypoint %r must stay inside the code directory" % (entrypoint,))
    return path, func


def check_source(source):
    """Refuse a ``source`` option that cannot work (ValueError with the reason)."""
    kind = source["type"]
    if kind in ("local", "s3"):
        if not source.get("path"):
            raise ValueError("source.path is required for a %s source: the directory holding the flow code" % kind)
        if not os.path.isdir(source["path"]):
            raise ValueError("source.path %s is not a directory on this host (%s source)" % (source["path"], kind))
    if kind == "s3":
        if not source.get("bucket"):
            raise ValueError("source.bucket is required for an s3 source")
        credentials = source.get("credentials") or {}
        if not credentials.get("block"):
            raise ValueError("an s3 source needs credentials: set source.credentials.block to the name of an"
                             " aws-credentials block (the workers read it to download the code; the deployment"
                             " never holds secrets), and optionally source.credentials.aws_access_key_id and"
                             " aws_secret_access_key for the upload")
        if bool(credentials.get("aws_access_key_id")) != bool(credentials.get("aws_secret_access_key")):
            raise ValueError("source.credentials: give both aws_access_key_id and aws_secret_access_key, or"
                             " neither (then they are read from the block)")
    if kind == "docker" and not source.get("image"):
        raise ValueError("source.image is required for a docker source (with source.build: the repository the"
                         " image is pushed to, without a tag)")
    if kind == "docker" and source.get("build"):
        last = source["image"].rsplit("/", 1)[-1]
        if ":" in last or "@" in source["image"]:
            raise ValueError("source.image %s has a tag, but with source.build the tag is made from the code"
                             " (sha-...): give the repository only" % source["image"])
    for option, kinds in (("bucket", ("s3",)), ("credentials", ("s3",)), ("endpoint_url", ("s3",)),
                          ("image", ("docker",)), ("introspect_path", ("docker",)), ("build", ("docker",)),
                          ("registry_credentials", ("docker",))):
        if source.get(option) and kind not in kinds:
            raise ValueError("source.%s does not apply to a %s source" % (option, kind))


def _excluded(rel, name, patterns):
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def code_files(root, exclude=None):
    """Sorted relative (posix) paths of the files under ``root`` that a code source ships
    (uploaded to S3, or put in an image), skipping paths that match one of the ``exclude``
    glob patterns (matched against the relative path and against each name)."""
    exclude = list(exclude or [])
    found = []
    for dirpath, dirnames, filenames in os.walk(os.path.abspath(root)):
        rel_dir = os.path.relpath(dirpath, os.path.abspath(root))
        rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/")
        dirnames[:] = sorted(d for d in dirnames
                             if not _excluded((rel_dir + "/" + d) if rel_dir else d, d, exclude))
        for name in sorted(filenames):
            rel = (rel_dir + "/" + name) if rel_dir else name
            if not _excluded(rel, name, exclude) and os.path.isfile(os.path.join(dirpath, name)):
                found.append(rel)
    return sorted(found)


def code_dir(source):
    """The directory holding the flow's code on this host, or None when it is not here."""
    source = source or {}
    if source.get("type") in ("local", "s3"):
        return source.get("path")
    if source.get("type") == "docker":
        build_path = (source.get("build") or {}).get("path")
        path = source.get("introspect_path") or build_path
        if path and not os.path.isdir(path):
            raise ValueError("%s %s is not a directory on this host" % (
                "source.introspect_path" if source.get("introspect_path") else "source.build.path", path))
        return path
    return None
