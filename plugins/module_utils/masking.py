# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Secret values in nested data (block documents, environment variables): which paths
are secret, masking them for output, and collecting their values for ``no_log``. Pure
functions (no I/O; unit tested directly), and one ``AnsibleModule`` subclass.

- ``parse_secret_paths``, ``is_secret_path``, ``mask_secrets``, ``secret_leaf_values``,
  ``secret_keys_in``, ``changed_secret_paths``, ``masked_diff_pair``.
- Environment variables (their values may be tokens or passwords, their names are not
  secret): the paths ``JOB_VARIABLES_ENV`` (a deployment's or a flow run's
  ``job_variables.env``), ``TEMPLATE_ENV_DEFAULT`` and ``TEMPLATE_ENV_PINNED`` (the env
  of a work pool's base job template); ``masked_changes_pair`` (a diff that keeps the
  names); ``MaskedArgsModule`` (an ``AnsibleModule`` that echoes and logs its arguments
  with the values at given paths masked).
"""

from __future__ import annotations

import copy
import json

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import changed_paths, equal

SECRET_MASK = "********"
SECRET_CHANGED_MASK = "******** (changed)"

# The values of environment variables, as paths for mask_secrets (the names stay visible).
# A deployment's or a flow run's job variables:
JOB_VARIABLES_ENV = ("job_variables", "env", "*")
# A work pool's base job template: the env default (job_variables.env of the work_pool
# module) and an env fixed in the job configuration (pinned_job_variables.env, or a
# template that writes values there).
TEMPLATE_ENV_DEFAULT = ("variables", "properties", "env", "default", "*")
TEMPLATE_ENV_PINNED = ("job_configuration", "env", "*")


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


def _masked_nodes(data, secret_paths, path=()):
    """(path, value) of each value of `data` that mask_secrets replaces with the mask."""
    if path and is_secret_path(path, secret_paths):
        yield path, data
    elif isinstance(data, dict):
        for key, item in data.items():
            yield from _masked_nodes(item, secret_paths, path + (str(key),))


def _lookup(data, path):
    """(True, value) at `path` (tuple of keys) of `data`, or (False, None) when absent."""
    for key in path:
        if not isinstance(data, dict):
            return False, None
        found = [k for k in data if str(k) == key]
        if not found:
            return False, None
        data = data[found[0]]
    return True, data


def masked_changes_pair(before, after, secret_paths):
    """(before, after) for a diff, the values at `secret_paths` masked, and each of them that
    `after` has new or different from `before` shown as SECRET_CHANGED_MASK.

    Unlike ``masked_diff_pair``, a dict of secrets that appears as a whole keeps its keys
    (each of its values shows as changed): for an environment, the names stay visible."""
    masked_before, masked_after = mask_secrets(before, secret_paths), mask_secrets(after, secret_paths)
    for path, value in list(_masked_nodes(after, secret_paths)):
        found, old = _lookup(before, path)
        if not found or not equal(old, value):
            _found, parent = _lookup(masked_after, path[:-1])
            key = [k for k in parent if str(k) == path[-1]][0]
            parent[key] = SECRET_CHANGED_MASK
    return masked_before, masked_after


class MaskedArgsModule(AnsibleModule):
    """AnsibleModule whose module arguments, as echoed in the result (``invocation``) and as
    logged on the target (syslog/journal), show the values at ``masked_paths`` (paths as for
    mask_secrets, e.g. ``[JOB_VARIABLES_ENV]``) masked. The module itself sees the real values."""

    def __init__(self, *args, **kwargs):
        # Set before AnsibleModule.__init__, which logs the invocation.
        self.masked_paths = list(kwargs.pop("masked_paths", None) or [])
        super(MaskedArgsModule, self).__init__(*args, **kwargs)

    def masked_params(self):
        return mask_secrets(self.params, self.masked_paths)

    def _log_invocation(self):
        params = self.params
        self.params = self.masked_params()
        try:
            super(MaskedArgsModule, self)._log_invocation()
        finally:
            self.params = params

    def exit_json(self, **kwargs):
        kwargs.setdefault("invocation", {"module_args": self.masked_params()})
        super(MaskedArgsModule, self).exit_json(**kwargs)

    def fail_json(self, msg, **kwargs):
        kwargs.setdefault("invocation", {"module_args": self.masked_params()})
        super(MaskedArgsModule, self).fail_json(msg, **kwargs)
