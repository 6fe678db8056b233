# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a flow: the introspection cache reuses an entry only while code and environment are unchanged."""

from __future__ import annotations

import json
import os
import stat
import sys
import time

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.selfhosted.prefect.plugins.module_utils import flow_reader

RESULT = {"flow_name": "weather", "parameter_openapi_schema": {"type": "object"}}


@pytest.fixture
def code(tmp_path):
    code_dir = tmp_path / "flows"
    (code_dir / "pkg").mkdir(parents=True)
    (code_dir / "flow.py").write_text("x = 1\n")
    (code_dir / "pkg" / "helpers.py").write_text("y = 2\n")
    (code_dir / "README.md").write_text("not python\n")
    return code_dir


@pytest.fixture
def site(tmp_path):
    site_dir = tmp_path / "site-packages"
    (site_dir / "prefect").mkdir(parents=True)
    (site_dir / "prefect" / "__init__.py").write_text("__version__ = '3.9.1'\n")
    return site_dir


def write_entry(cache_dir, code_dir, site_dir):
    key = flow_reader.cache_key(str(code_dir), "flow.py:weather", "static", sys.executable)
    reported = {"sys_path": [str(site_dir), "/nonexistent/dir"], "prefect_file": str(site_dir / "prefect" / "__init__.py")}
    env_paths = flow_reader.environment_paths(sys.executable, reported)
    assert "/nonexistent/dir" not in env_paths
    assert flow_reader.store(str(cache_dir), key, flow_reader.code_stamps(str(code_dir)), env_paths, RESULT) is None
    return key


def bump(path):
    """Move a file's or directory's modification time forward without touching anything else."""
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000))


def test_hit_when_nothing_changed(tmp_path, code, site):
    key = write_entry(tmp_path / "cache", code, site)
    found, reason = flow_reader.load(str(tmp_path / "cache"), key, flow_reader.code_stamps(str(code)))
    assert found == RESULT
    assert reason == "unchanged code and environment"


def test_entry_file_and_directory_are_private(tmp_path, code, site):
    cache_dir = tmp_path / "cache"
    key = write_entry(cache_dir, code, site)
    path = flow_reader.entry_path(str(cache_dir), key)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700


@pytest.mark.parametrize("change", ["edit", "touch", "add", "remove", "nested"])
def test_code_changes_invalidate(tmp_path, code, site, change):
    key = write_entry(tmp_path / "cache", code, site)
    if change == "edit":
        (code / "flow.py").write_text("x = 22\n")
    elif change == "touch":
        bump(code / "flow.py")
    elif change == "add":
        (code / "pkg" / "new.py").write_text("")
    elif change == "remove":
        (code / "pkg" / "helpers.py").unlink()
    else:
        (code / "pkg" / "helpers.py").write_text("y = 3\n")
    found, reason = flow_reader.load(str(tmp_path / "cache"), key, flow_reader.code_stamps(str(code)))
    assert found is None
    assert reason == "the code changed"


def test_non_python_and_skipped_dirs_do_not_invalidate(tmp_path, code, site):
    key = write_entry(tmp_path / "cache", code, site)
    (code / "README.md").write_text("changed\n")
    for skipped in ("__pycache__", ".git", "node_modules"):
        (code / skipped).mkdir()
        (code / skipped / "x.py").write_text("")
    found, _reason = flow_reader.load(str(tmp_path / "cache"), key, flow_reader.code_stamps(str(code)))
    assert found == RESULT


@pytest.mark.parametrize("change", ["package installed", "prefect upgraded"])
def test_environment_changes_invalidate(tmp_path, code, site, change):
    key = write_entry(tmp_path / "cache", code, site)
    if change == "package installed":
        (site / "newpkg").mkdir()
    else:
        (site / "prefect" / "__init__.py").write_text("__version__ = '3.9.2'\n")
    found, reason = flow_reader.load(str(tmp_path / "cache"), key, flow_reader.code_stamps(str(code)))
    assert found is None
    assert reason == "the Python environment changed"


def test_key_separates_inputs(code):
    base = flow_reader.cache_key(str(code), "flow.py:weather", "static", "/usr/bin/python3")
    assert base != flow_reader.cache_key(str(code), "flow.py:other", "static", "/usr/bin/python3")
    assert base != flow_reader.cache_key(str(code), "flow.py:weather", "import", "/usr/bin/python3")
    assert base != flow_reader.cache_key(str(code), "flow.py:weather", "static", "/opt/venv/bin/python")
    assert base != flow_reader.cache_key(str(code / "pkg"), "flow.py:weather", "static", "/usr/bin/python3")


def test_corrupt_or_foreign_entries_are_misses(tmp_path, code, site):
    cache_dir = tmp_path / "cache"
    key = write_entry(cache_dir, code, site)
    path = flow_reader.entry_path(str(cache_dir), key)
    with open(path, "w") as handle:
        handle.write("{not json")
    assert flow_reader.load(str(cache_dir), key, flow_reader.code_stamps(str(code))) == (None, "no entry")
    with open(path, "w") as handle:
        handle.write('{"format": 999, "result": {}}')
    assert flow_reader.load(str(cache_dir), key, flow_reader.code_stamps(str(code))) == (None, "unknown entry format")


def test_too_many_files_is_never_cached(code):
    # Without code stamps there is nothing to compare or store: the module skips the cache.
    with pytest.raises(flow_reader.TooManyFiles):
        flow_reader.code_stamps(str(code), max_files=1)
    with pytest.raises(flow_reader.TooManyFiles):
        flow_reader.code_files(str(code), max_files=1)
    assert len(flow_reader.code_stamps(str(code), max_files=2)) == 2


def test_unwritable_cache_dir_reports_an_error(tmp_path, code):
    blocker = tmp_path / "file"
    blocker.write_text("")
    error = flow_reader.store(str(blocker / "cache"), "ab" * 32, [], [], RESULT)
    assert error and "cannot write the flow cache" in error


def test_default_dir_follows_xdg(tmp_path):
    assert flow_reader.default_cache_dir({"XDG_CACHE_HOME": str(tmp_path)}) == str(tmp_path / "selfhosted-prefect" / "flows")


def test_code_dir_on_sys_path_is_not_an_environment_stamp(tmp_path, code, site):
    reported = {"sys_path": [str(code), str(code / "pkg"), str(site)]}
    paths = flow_reader.environment_paths(sys.executable, reported, str(code))
    assert str(code) not in paths and str(code / "pkg") not in paths
    assert str(site) in paths


# -- the reader ------------------------------------------------------------------------
class FakeModule(object):
    """What FlowReader uses of an AnsibleModule; run_command answers like INTROSPECT would."""

    def __init__(self, tmp_path, answer, check_mode=False):
        self.params = {"prefect_python": sys.executable, "introspection": "static", "introspection_cache": True,
                       "introspection_cache_dir": str(tmp_path / "cache")}
        self.check_mode = check_mode
        self.answer = answer
        self.runs = 0

    def run_command(self, args, cwd=None, **_kwargs):
        self.runs += 1
        return 0, "noise\n%s%s\n" % (flow_reader.RESULT_MARK, json.dumps(self.answer)), ""

    def get_bin_path(self, name):
        return None


def test_reader_reads_once_then_hits_the_cache(tmp_path, code):
    module = FakeModule(tmp_path, RESULT)
    first = flow_reader.FlowReader(module)
    assert first.resolve("flow.py:weather", str(code)) == ("weather", {"type": "object"})
    assert first.info == {"source": "code", "cache": "miss: no entry", "python": sys.executable}
    second = flow_reader.FlowReader(module)
    assert second.resolve("flow.py:weather", str(code), flow_name="weather") == ("weather", {"type": "object"})
    assert second.info["source"] == "cache" and module.runs == 1
    with pytest.raises(flow_reader.FlowReadError, match="does not match the flow at flow.py:weather"):
        second.resolve("flow.py:weather", str(code), flow_name="other")


def test_reader_without_prefect(tmp_path, code):
    module = FakeModule(tmp_path, {"error": "noprefect", "msg": "ModuleNotFoundError: prefect"}, check_mode=True)
    reader = flow_reader.FlowReader(module)
    with pytest.raises(flow_reader.FlowReadError, match="prefect package is not importable"):
        reader.resolve("flow.py:weather", str(code))
    assert reader.resolve("flow.py:weather", str(code), flow_name="weather") == ("weather", None)
    assert "the parameter schema is not managed" in reader.warnings[0]
    assert flow_reader.FlowReader(module).info == {"source": "given"}


# -- the reading process, for real: a python that answers, one that never ends -------------
READER_OPTIONS = dict(prefect_python=dict(type="path"), introspection=dict(type="str", default="static"),
                      introspection_cache=dict(type="bool", default=False), introspection_cache_dir=dict(type="path"),
                      introspection_timeout=dict(type="float", default=120.0))


def fake_python(tmp_path, body):
    """An executable standing for the interpreter: a Python script that ignores its arguments."""
    path = tmp_path / "python"
    path.write_text("#!%s\n%s\n" % (sys.executable, body))
    path.chmod(0o755)
    return str(path)


def real_module(**params):
    with patch_module_args(params):
        return AnsibleModule(argument_spec=READER_OPTIONS)


def test_reading_process_that_never_ends_is_killed(tmp_path, code):
    pid_file = tmp_path / "pid"
    python = fake_python(tmp_path, "import os, sys, time\nopen(%r, 'w').write(str(os.getpid()))\n"
                                   "sys.stdout.write('importing...\\n'); sys.stdout.flush()\ntime.sleep(30)"
                         % str(pid_file))
    reader = flow_reader.FlowReader(real_module(prefect_python=python, introspection_timeout=1))
    start = time.monotonic()
    with pytest.raises(flow_reader.FlowReadError) as err:
        reader.resolve("flow.py:weather", str(code))
    assert time.monotonic() - start < 10
    assert ("reading the flow from flow.py:weather with %s did not end within 1 s and was stopped" % python
            in err.value.msg)
    assert "introspection_timeout" in err.value.msg and err.value.details["stdout"] == "importing...\n"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_reading_process_that_answers_in_time(tmp_path, code):
    answer = dict(RESULT, python=sys.executable, sys_path=[])
    python = fake_python(tmp_path, "print(%r)" % (flow_reader.RESULT_MARK + json.dumps(answer)))
    module = real_module(prefect_python=python, introspection_timeout=30)
    assert flow_reader.FlowReader(module).resolve("flow.py:weather", str(code)) == ("weather", {"type": "object"})


def test_default_timeout():
    assert flow_reader.FlowReader(real_module()).timeout == flow_reader.DEFAULT_TIMEOUT == 120
