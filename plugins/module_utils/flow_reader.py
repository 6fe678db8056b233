# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a flow's name and parameter schema from its code, and the cache of what was read.

``FlowReader(module)`` does it for the ``deployment`` module, after its options
``prefect_python``, ``introspection``, ``introspection_cache``,
``introspection_cache_dir`` and ``introspection_timeout``: it runs ``INTROSPECT``
(``python -c INTROSPECT MODE ENTRYPOINT`` in the code directory) with an interpreter
that has ``prefect`` (the one given, else the module's own, else the one of the
``prefect`` command in ``PATH``), and keeps the answer in the cache. A reading process
that runs longer than ``introspection_timeout`` seconds (default ``DEFAULT_TIMEOUT``,
120) is killed and the read fails with ``FlowReadError`` (a flow file that blocks on
import, a stuck network import). ``reader.resolve(entrypoint, code_dir, flow_name,
schema)`` gives the flow's name and schema; ``reader.info`` the module's
``introspection`` return value; ``reader.warnings`` what to warn about. Failures
raise ``FlowReadError`` (``msg`` and ``details`` for ``fail_json``).

The cache
---------
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

A stamp is a ``stat()``, so checking an entry costs a directory walk instead of a Python start
(a cache hit starts no process). Nothing secret is stored: the flow's name, its parameter schema
and file stamps.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import threading

RESULT_MARK = "@@SELFHOSTED_PREFECT_INTROSPECTION@@"
# Seconds a reading process may run before it is killed (importing prefect takes a few).
DEFAULT_TIMEOUT = 120.0

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


# -- the cache ------------------------------------------------------------------------------
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


def _seconds(value):
    return ("%d" % value) if float(value).is_integer() else ("%s" % value)


class FlowReadError(Exception):
    """The flow cannot be read; ``details`` (stdout, stderr) go with ``msg`` to ``fail_json``."""

    def __init__(self, msg, **details):
        super(FlowReadError, self).__init__(msg)
        self.msg = msg
        self.details = details


class FlowReader(object):
    """Reads one module run's flow with ``prefect``, through the cache (see the module docstring)."""

    def __init__(self, module):
        self.module = module
        params = module.params
        self.prefect_python = params.get("prefect_python")
        self.mode = params.get("introspection") or "static"
        self.cache_dir = None
        if params.get("introspection_cache", True):
            self.cache_dir = params.get("introspection_cache_dir") or default_cache_dir()
        self.write_cache = not module.check_mode  # check mode leaves the host as it was, the cache included
        self.timeout = float(params.get("introspection_timeout") or DEFAULT_TIMEOUT)
        self.warnings = []
        self._info = {}

    @property
    def info(self):
        """The module's ``introspection`` return value: where the flow came from."""
        info = dict(self._info)
        info.setdefault("source", "given")
        return info

    def resolve(self, entrypoint, code_dir, flow_name=None, schema=None):
        """``(flow_name, schema)``: the given ones, completed from the code when it is on this host.

        ``flow_name`` stays None when it is neither given nor readable; ``schema`` is None when
        not managed (then a warning says why)."""
        if not (entrypoint and code_dir and (flow_name is None or schema is None)):
            return flow_name, schema
        found = self.read(code_dir, entrypoint)
        if found.get("error") == "noprefect":
            tried = "; ".join(found["tried"])
            if flow_name is None:
                raise FlowReadError("cannot read the flow's name from %s: the prefect package is not importable"
                                    " with %s. Set prefect_python to a Python that has prefect (e.g. the workers'"
                                    " venv), or give flow_name (and parameter_openapi_schema)" % (entrypoint, tried))
            self.warnings.append("prefect is not importable here (%s): the parameter schema is not managed;"
                                 " set prefect_python or parameter_openapi_schema" % tried)
            return flow_name, schema
        if flow_name is not None and flow_name != found["flow_name"]:
            raise FlowReadError("flow_name %r does not match the flow at %s, which is named %r"
                                % (flow_name, entrypoint, found["flow_name"]))
        return found["flow_name"], schema if schema is not None else found["parameter_openapi_schema"]

    def python_candidates(self):
        if self.prefect_python:
            return [self.prefect_python]
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

    def read(self, code_dir, entrypoint):
        """dict(flow_name, parameter_openapi_schema) read with `prefect` (or from the cache), or
        ``{"error": "noprefect", "tried": [...]}`` when no candidate interpreter has prefect."""
        path = entrypoint.rsplit(":", 1)[0]
        if not os.path.isfile(os.path.join(code_dir, path)):
            raise FlowReadError("entrypoint file %s not found in %s" % (path, code_dir))
        tried = []
        code = self.code_stamps(code_dir)
        for python in self.python_candidates():
            if not os.path.exists(python):
                raise FlowReadError("prefect_python %s does not exist on this host" % python)
            key = cache_key(code_dir, entrypoint, self.mode, python)
            cached = self.cache_lookup(key, code, python)
            if cached is not None:
                return cached
            result = self.run(python, code_dir, entrypoint)
            if result.get("error") == "noprefect":
                tried.append("%s (%s)" % (python, result.get("msg")))
                continue
            if result.get("error"):
                raise FlowReadError("cannot register %s: %s" % (entrypoint, result["msg"]))
            self._info.update(source="code", python=python)
            if code is not None:
                self.cache_store(key, code, environment_paths(python, result, code_dir), result)
            return result
        return {"error": "noprefect", "tried": tried}

    def run(self, python, code_dir, entrypoint):
        """The answer of INTROSPECT run by ``python`` in ``code_dir``, killed after ``self.timeout`` s."""
        killed = []
        timers = []

        def watch(process):
            def kill():
                if process.poll() is None:
                    killed.append(True)
                    try:
                        process.kill()
                    except OSError:
                        pass
            timer = threading.Timer(self.timeout, kill)
            timer.daemon = True
            timers.append(timer)
            timer.start()

        try:
            rc, out, err = self.module.run_command([python, "-c", INTROSPECT, self.mode, entrypoint], cwd=code_dir,
                                                   before_communicate_callback=watch)
        finally:
            for timer in timers:
                timer.cancel()
        if killed:
            raise FlowReadError("reading the flow from %s with %s did not end within %s s and was stopped (does"
                                " the flow's file block or wait on something when it is imported?); raise"
                                " introspection_timeout if reading it really takes that long"
                                % (entrypoint, python, _seconds(self.timeout)), stdout=out, stderr=err)
        result = None
        for line in out.splitlines():
            if line.startswith(RESULT_MARK):
                result = json.loads(line[len(RESULT_MARK):])
        if result is None:
            raise FlowReadError("reading the flow from %s with %s failed (rc=%s)" % (entrypoint, python, rc),
                                stdout=out, stderr=err)
        return result

    def code_stamps(self, code_dir):
        """Stamps of the code, taken once per run; None when the cache is off or cannot be used."""
        if not self.cache_dir:
            self._info["cache"] = "disabled"
            return None
        try:
            return code_stamps(code_dir)
        except TooManyFiles:
            self._info["cache"] = "skipped: more than %d Python files" % MAX_FILES
            return None

    def cache_lookup(self, key, code, python):
        if code is None:
            return None
        found, reason = load(self.cache_dir, key, code)
        self._info["cache"] = ("hit: " if found else "miss: ") + reason
        if found is None:
            return None
        self._info.update(source="cache", python=python)
        return found

    def cache_store(self, key, code, env_paths, result):
        if not self.write_cache:
            return
        kept = dict((k, result[k]) for k in ("flow_name", "parameter_openapi_schema", "prefect_version") if k in result)
        error = store(self.cache_dir, key, code, env_paths, kept)
        if error:
            self.warnings.append(error)
