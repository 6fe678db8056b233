# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Comparing desired and actual state, and the result every manager returns.

Pure functions (no I/O; unit tested directly), used by every module of the collection:

- ``equal(a, b)``: deep equality with JSON semantics (``True`` is not ``1``).
- ``changed_paths(before, after)``: dotted paths that differ between two values.
- ``is_subset(desired, actual)``: every key of ``desired`` has an equal value in ``actual``.
- ``build_diff(before, after)``: the ``diff`` dict Ansible shows with ``--diff``.
- ``module_result(module, changed, before, after, header, **values)``: the result
  dict of a manager's ``present()`` / ``absent()`` / ``run()``: ``changed``, the
  module's return values and, when ``--diff`` is on, ``diff``.
"""

from __future__ import annotations

import json


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


def module_result(module, changed, before=None, after=None, header=None, **values):
    """The result of one module run: ``changed``, ``values`` and, with ``--diff``, the
    before/after pair (``{}`` stands for "does not exist")."""
    result = dict(values)
    result["changed"] = bool(changed)
    if module._diff:
        result["diff"] = build_diff(before or {}, after or {}, before_header=header, after_header=header)
    return result
