# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Work pool base job templates (pure functions, no I/O; unit tested directly).

- ``deep_merge(base, override)``: recursive dict merge (override wins, lists replaced).
- ``apply_job_variables(template, job_variables)``: a base job template whose
  ``variables.properties.<name>.default`` is set from ``job_variables``.
- ``pin_job_variables(template, pinned)``: a base job template in which some job
  variables are fixed values that deployments and flow runs cannot override.
- ``known_worker_types(metadata)`` / ``default_base_job_template(metadata, type)``:
  read the server's ``aggregate-worker-metadata`` collection view.
"""

from __future__ import annotations

import copy
import re


class TemplateError(ValueError):
    """A job variable or template that cannot be applied."""


def deep_merge(base, override):
    """A new dict: `base` with `override` merged in recursively.

    Dicts merge key by key; any other value (lists included) in `override`
    replaces the one in `base`. Neither argument is modified.
    """
    result = copy.deepcopy(base) if base is not None else {}
    if override is None:
        return result
    if not isinstance(result, dict) or not isinstance(override, dict):
        return copy.deepcopy(override)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def template_variable_names(template):
    """Names of the job variables a base job template declares."""
    variables = (template or {}).get("variables") or {}
    return sorted((variables.get("properties") or {}).keys())


def apply_job_variables(template, job_variables):
    """`template` (a base job template) with each job variable's default set.

    ``job_variables = {"env": {"A": "1"}, "image": "x"}`` sets
    ``variables.properties.env.default`` and ``variables.properties.image.default``.
    A dict default is merged into an existing dict default; anything else replaces it.
    Raises TemplateError naming the template's variables for an unknown name.
    """
    result = copy.deepcopy(template or {})
    if not job_variables:
        return result
    properties = (result.get("variables") or {}).get("properties")
    if not isinstance(properties, dict):
        raise TemplateError(
            "the base job template declares no variables (variables.properties), so job_variables %s"
            " cannot be applied" % ", ".join(sorted(job_variables)))
    unknown = sorted(set(job_variables) - set(properties))
    if unknown:
        raise TemplateError(
            "unknown job variable(s) %s; the base job template declares: %s"
            % (", ".join(unknown), ", ".join(sorted(properties)) or "(none)"))
    for name, value in job_variables.items():
        prop = properties[name]
        if not isinstance(prop, dict):
            prop = {}
            properties[name] = prop
        current = prop.get("default")
        if isinstance(value, dict) and isinstance(current, dict):
            prop["default"] = deep_merge(current, value)
        else:
            prop["default"] = copy.deepcopy(value)
    return result


def known_worker_types(metadata):
    """{type: {"collection": ..., "display_name": ..., "default_base_job_configuration": ...}}
    from the ``aggregate-worker-metadata`` view ({collection: {type: {...}}})."""
    types = {}
    for collection, workers in sorted((metadata or {}).items()):
        if not isinstance(workers, dict):
            continue
        for key, info in sorted(workers.items()):
            if not isinstance(info, dict):
                continue
            worker_type = info.get("type") or key
            if worker_type == "prefect-agent":
                continue
            entry = dict(info)
            entry["collection"] = collection
            types.setdefault(worker_type, entry)
    return types


def default_base_job_template(metadata, worker_type):
    """The default base job template of `worker_type`, or None if the metadata lacks it."""
    info = known_worker_types(metadata).get(worker_type)
    if not info:
        return None
    return copy.deepcopy(info.get("default_base_job_configuration") or None)


def _placeholder(name):
    return re.compile(r"\{\{\s*" + re.escape(name) + r"\s*\}\}")


def _substitute(node, name, value, pattern):
    """`node` (a job_configuration tree) with every {{ name }} replaced by `value`.
    Returns (new node, how many placeholders were replaced)."""
    if isinstance(node, dict):
        out, count = {}, 0
        for key, item in node.items():
            out[key], found = _substitute(item, name, value, pattern)
            count += found
        return out, count
    if isinstance(node, list):
        out, count = [], 0
        for item in node:
            new, found = _substitute(item, name, value, pattern)
            out.append(new)
            count += found
        return out, count
    if isinstance(node, str):
        if pattern.fullmatch(node.strip()):
            return copy.deepcopy(value), 1
        if pattern.search(node):
            if isinstance(value, (dict, list)):
                raise TemplateError(
                    "job variable %s is used inside the string %r of job_configuration: only a string or a"
                    " number can be pinned there" % (name, node))
            return pattern.sub("" if value is None else str(value), node), 1
    return node, 0


def pin_job_variables(template, pinned):
    """`template` with each job variable of `pinned` ({name: value}) fixed to its value.

    The variable leaves ``variables.properties`` (and ``variables.required``), and each
    ``{{ name }}`` of ``job_configuration`` becomes the value itself, so a deployment's or
    a flow run's job variables can no longer change it (the worker only reads the
    placeholders the template has). Raises TemplateError for a name that the template
    neither declares nor uses.
    """
    result = copy.deepcopy(template or {})
    if not pinned:
        return result
    variables = result.get("variables")
    properties = (variables or {}).get("properties") or {}
    configuration = result.get("job_configuration") or {}
    for name in sorted(pinned):
        pattern = _placeholder(name)
        configuration, used = _substitute(configuration, name, pinned[name], pattern)
        if not used and name not in properties:
            raise TemplateError(
                "pinned job variable %s is neither declared nor used by the base job template; it declares: %s"
                % (name, ", ".join(sorted(properties)) or "(none)"))
        properties.pop(name, None)
        if isinstance(variables, dict) and isinstance(variables.get("required"), list):
            variables["required"] = [r for r in variables["required"] if r != name]
    result["job_configuration"] = configuration
    return result
