# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Pure comparison helpers shared by the modules (no I/O, unit tested directly).

- ``deep_merge(base, override)``: recursive dict merge (override wins, lists replaced).
- ``apply_job_variables(template, job_variables)``: a base job template whose
  ``variables.properties.<name>.default`` is set from ``job_variables``.
- ``known_worker_types(metadata)`` / ``default_base_job_template(metadata, type)``:
  read the server's ``aggregate-worker-metadata`` collection view.
- ``changed_paths(before, after)``: dotted paths that differ between two values.
- ``build_diff(before, after)``: the ``diff`` dict Ansible shows with ``--diff``.
- Secrets: ``parse_secret_paths``, ``is_secret_path``, ``mask_secrets``,
  ``secret_leaf_values``, ``changed_secret_paths``, ``masked_diff_pair``.
"""

from __future__ import annotations

import copy
import json

SECRET_MASK = "********"
SECRET_CHANGED_MASK = "******** (changed)"


class TemplateError(ValueError):
    """A job variable or template that cannot be applied."""


# -- merging -------------------------------------------------------------------
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


# -- differences ---------------------------------------------------------------
def _join(prefix, key):
    key = str(key)
    return "%s.%s" % (prefix, key) if prefix else key


def changed_paths(before, after, prefix=""):
    """Sorted dotted paths at which `before` and `after` differ (dicts recurse)."""
    if isinstance(before, dict) and isinstance(after, dict):
        paths = []
        for key in sorted(set(before) | set(after), key=str):
            path = _join(prefix, key)
            if key not in before or key not in after:
                paths.append(path)
            else:
                paths.extend(changed_paths(before[key], after[key], path))
        return paths
    if before != after or type(before) is not type(after) and not _both_numbers(before, after):
        return [prefix or "."]
    return []


def _both_numbers(a, b):
    return (isinstance(a, (int, float)) and not isinstance(a, bool)
            and isinstance(b, (int, float)) and not isinstance(b, bool))


def equal(a, b):
    """Deep equality that does not treat True as 1 (JSON semantics)."""
    return not changed_paths(a, b)


def is_subset(desired, actual):
    """True if every key of dict `desired` has an equal value in `actual` (recursively for dicts)."""
    if isinstance(desired, dict):
        if not isinstance(actual, dict):
            return False
        return all(key in actual and is_subset(value, actual[key]) for key, value in desired.items())
    return equal(desired, actual)


def build_diff(before, after, before_header=None, after_header=None):
    """The `diff` result key: before/after dicts (stable key order for readable output)."""
    diff = {
        "before": _sorted_copy(before) if before is not None else {},
        "after": _sorted_copy(after) if after is not None else {},
    }
    if before_header:
        diff["before_header"] = before_header
    if after_header:
        diff["after_header"] = after_header
    return diff


def _sorted_copy(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# -- secrets -------------------------------------------------------------------
def parse_secret_paths(secret_fields):
    """Block schema ``secret_fields`` (``["password", "credentials.key", "headers.*"]``)
    as a sorted list of unique tuples."""
    paths = set()
    for field in secret_fields or []:
        if field:
            paths.add(tuple(str(field).split(".")))
    return sorted(paths)


def _prefix_matches(secret_path, path):
    if len(path) < len(secret_path):
        return False
    for want, got in zip(secret_path, path):
        if want != "*" and want != got:
            return False
    return True


def is_secret_path(path, secret_paths):
    """True if `path` (tuple of keys) is, or lies under, one of `secret_paths`."""
    path = tuple(str(p) for p in path)
    return any(_prefix_matches(secret, path) for secret in secret_paths)


def _walk(value, path=()):
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from _walk(item, path + (str(key),))
    else:
        yield path, value


def mask_secrets(data, secret_paths, mask=SECRET_MASK):
    """A copy of `data` with every value at (or under) a secret path replaced by `mask`."""
    if not secret_paths:
        return copy.deepcopy(data)

    def rec(value, path):
        if path and is_secret_path(path, secret_paths):
            return mask
        if isinstance(value, dict):
            return dict((key, rec(item, path + (str(key),))) for key, item in value.items())
        return copy.deepcopy(value)

    return rec(data, ())


def secret_leaf_values(data, secret_paths):
    """Every scalar value found at a secret path of `data` (as strings), for no_log."""
    values = set()
    for path, value in _walk(data):
        if path and is_secret_path(path, secret_paths) and value is not None:
            if isinstance(value, (list, dict)):
                values.add(json.dumps(value, sort_keys=True))
                for item in (value if isinstance(value, list) else value.values()):
                    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
                        values.add(str(item))
            else:
                values.add(str(value))
    return values


def secret_keys_in(data, secret_paths):
    """Top-level secret paths present in `data`, as dotted strings."""
    found = set()
    for path, _value in _walk(data):
        if path and is_secret_path(path, secret_paths):
            for secret in secret_paths:
                if _prefix_matches(secret, path):
                    found.add(".".join(path[:len(secret)]))
    return sorted(found)


def changed_secret_paths(desired, actual, secret_paths):
    """Dotted paths of secret values that differ between `desired` and `actual`."""
    changed = set()
    for path in changed_paths(desired or {}, actual or {}):
        if path == ".":
            continue
        parts = tuple(path.split("."))
        for secret in secret_paths:
            if _prefix_matches(secret, parts):
                changed.add(".".join(parts[:len(secret)]))
            elif _prefix_matches(parts, secret[:len(parts)]) and len(parts) < len(secret):
                # a whole dict holding secrets appeared or disappeared
                changed.add(path)
    return sorted(changed)


def masked_diff_pair(before, after, secret_paths):
    """(before, after) with secrets masked; a changed secret shows as SECRET_CHANGED_MASK."""
    masked_before = mask_secrets(before, secret_paths) if before is not None else None
    masked_after = mask_secrets(after, secret_paths) if after is not None else None
    if before is not None and after is not None and isinstance(masked_after, dict):
        for dotted in changed_secret_paths(after, before, secret_paths):
            parts = dotted.split(".")
            node = masked_after
            for part in parts[:-1]:
                node = node.get(part) if isinstance(node, dict) else None
                if node is None:
                    break
            if isinstance(node, dict) and parts[-1] in node:
                node[parts[-1]] = SECRET_CHANGED_MASK
    return masked_before, masked_after
