# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A cache of what the deployment module reads from a flow's code (its name and parameter schema).

Reading a flow needs a Python process that imports ``prefect`` (seconds of CPU). The result only
depends on the code and on the Python environment that read it, so it is kept in a JSON file per
(code directory, entrypoint, mode, interpreter) and reused while none of these changed:

- every ``*.py`` file under the code directory (path, size, modification time in ns; directories
  whose name starts with ``.`` and ``__pycache__``/``node_modules`` are not walked), and the set of
  those files (a file added or removed invalidates);
- the interpreter (the file it resolves to);
- the directories of the interpreter's ``sys.path`` reported by the reading process: installing,
  upgrading or removing a package adds or removes entries there, which changes the directory's
  modification time;
- ``prefect``'s own ``__init__.py``.

A stamp is a ``stat()``, so checking an entry costs a directory walk instead of a Python start.
Nothing secret is stored: the flow's name, its parameter schema and file stamps.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile

CACHE_FORMAT = 1
SKIP_DIRS = frozenset(("__pycache__", "node_modules"))
# Above this many files the code directory is not stamped and nothing is cached: walking it on
# every run would cost more than it saves.
MAX_FILES = 5000


class TooManyFiles(Exception):
    pass


def default_cache_dir(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "selfhosted-prefect", "flows")


def cache_key(code_dir, entrypoint, mode, python):
    raw = json.dumps([CACHE_FORMAT, os.path.realpath(code_dir), entrypoint, mode, python])
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def stamp(path):
    """[path, size, mtime_ns] of a file or directory, or [path, None, None] when it is missing."""
    try:
        st = os.stat(path)
    except OSError:
        return [path, None, None]
    return [path, st.st_size, st.st_mtime_ns]


def code_files(code_dir, max_files=MAX_FILES):
    """The ``*.py`` files under code_dir, sorted; raises TooManyFiles past max_files."""
    found = []
    for root, dirs, files in os.walk(code_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in SKIP_DIRS)
        for name in files:
            if name.endswith(".py"):
                found.append(os.path.join(root, name))
                if len(found) > max_files:
                    raise TooManyFiles(code_dir)
    return sorted(found)


def environment_paths(python, reported, code_dir=None):
    """What the interpreter's side contributes to the stamps, from the reading process's report.

    The code directory itself (prefect puts it on sys.path to load the flow) is left out: its
    files are stamped one by one, and its own time moves whenever Python writes __pycache__.
    """
    paths = [os.path.realpath(python)]
    code = os.path.realpath(code_dir) if code_dir else None
    for path in reported.get("sys_path") or []:
        if not path or not os.path.isdir(path):
            continue
        real = os.path.realpath(path)
        if code and (real == code or real.startswith(code + os.sep)):
            continue
        paths.append(path)
    if reported.get("prefect_file"):
        paths.append(reported["prefect_file"])
    return paths


def code_stamps(code_dir, max_files=MAX_FILES):
    """Stamps of the code's ``*.py`` files; raises TooManyFiles past max_files."""
    return [stamp(p) for p in code_files(code_dir, max_files)]


def entry_path(cache_dir, key):
    return os.path.join(cache_dir, key[:2], key + ".json")


def load(cache_dir, key, code):
    """The cached result for key when its stamps still hold, else None (with the reason).

    ``code`` is code_stamps() of the code directory, taken once by the caller (and stored
    with the new entry on a miss)."""
    path = entry_path(cache_dir, key)
    try:
        with open(path, "r") as handle:
            entry = json.load(handle)
    except (IOError, OSError, ValueError):
        return None, "no entry"
    if not isinstance(entry, dict) or entry.get("format") != CACHE_FORMAT or not isinstance(entry.get("result"), dict):
        return None, "unknown entry format"
    stamps = entry.get("stamps") or {}
    if code != stamps.get("code"):
        return None, "the code changed"
    environment = stamps.get("environment") or []
    if [stamp(s[0]) for s in environment] != environment:
        return None, "the Python environment changed"
    return entry["result"], "unchanged code and environment"


def store(cache_dir, key, code, env_paths, result):
    """Write an entry atomically (0600 in a 0700 directory). Returns an error string or None."""
    path = entry_path(cache_dir, key)
    stamps = {"code": code, "environment": [stamp(p) for p in env_paths]}
    entry = {"format": CACHE_FORMAT, "stamps": stamps, "result": result}
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(entry, handle, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    except (IOError, OSError) as exc:
        return "cannot write the flow cache %s: %s" % (path, exc)
    return None
