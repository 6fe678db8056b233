# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark: this collection's modules against `ansible.builtin.command` + the `prefect` CLI.

Run from the collection root (one line):

    .venv/bin/python benchmarks/modules_vs_cli.py

It starts its own Prefect server (``prefect server start`` from this venv, SQLite,
a temporary PREFECT_HOME, basic auth on, 127.0.0.1 and a free port), then times
``ansible-playbook`` runs (localhost, connection local) that ensure N work pools
(type process, a concurrency limit, a description) and N deployments (one per
pool, a small flow from a local directory, a cron schedule, parameters, tags):

A   benchmarks/modules_vs_cli/modules.yml: selfhosted.prefect.work_pool and
    selfhosted.prefect.deployment. First run (creates), then the same playbook
    again, which must report changed=0 (else the benchmark fails loudly).
A'  the same playbook re-run with ``flow_name`` and ``parameter_openapi_schema``
    given, so the deployment module does not start a Python process that imports
    ``prefect`` to read the flow (a re-run only; changed=0 required too).
B   benchmarks/modules_vs_cli/cli.yml: ``prefect work-pool create`` (tolerating
    "already exists"), ``prefect work-pool update --description
    --concurrency-limit``, a templated prefect.yaml and one ``prefect --no-prompt
    deploy --all``. First run and re-run.

A and B use their own names (``mod-*`` / ``cli-*``) on the same server. After each
run the objects are read back over the REST API and checked field by field; the
objects each re-run rewrote (``updated`` moved, schedule ids replaced) are counted.
Figures are printed and written to benchmarks/results/modules_vs_cli-<date>.md.
This is a benchmark, not a test: nothing is timed against a threshold.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
COLLECTION_ROOT = HERE.parent
ASSETS = HERE / "modules_vs_cli"
VENV_BIN = Path(sys.executable).parent
SERVER_START_TIMEOUT = 300
FLOW_SOURCE = ASSETS / "flows" / "bench_flow.py"
TIMEZONE = "Europe/Paris"
TARGET_RERUN_RATIO = 5.0
PROFILE_RE = re.compile(r"^(\S.*?) -{2,} (\d+(?:\.\d+)?)s\s*$", re.M)
RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)"
                      r"\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)", re.M)


class BenchmarkError(Exception):
    pass


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


def loud(msg):
    rule = "!" * 78
    print("\n%s\n%s\n%s\n" % (rule, msg, rule), file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def loadavg():
    try:
        return "%.2f %.2f %.2f" % os.getloadavg()
    except OSError:
        return "n/a"


def tail(path, lines=40):
    path = Path(path)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def children_cpu():
    """CPU seconds (user + system) of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def group_cpu(pgid):
    """CPU seconds of the live processes of a process group (and of their reaped children)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid:  # field 5, pgrp
            total += sum(int(f) for f in fields[11:15])  # fields 14-17: utime stime cutime cstime
    return total / float(tick)


# -- the Prefect server (the approach of tests/integration/conftest.py) -------------------
class Server:
    def __init__(self, root):
        self.root = Path(root)
        self.home = self.root / "prefect-home"
        self.home.mkdir()
        self.port = free_port()
        self.api_url = "http://127.0.0.1:%d/api" % self.port
        self.auth_string = "admin:%s" % secrets.token_urlsafe(18)
        self.log_path = self.root / "server.log"
        self.process = None
        self._log = None

    def start(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update({
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_API_AUTH_STRING": self.auth_string,
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": "sqlite+aiosqlite:///%s" % (self.home / "prefect.db"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
            "PREFECT_SERVER_UI_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": "127.0.0.1",
            # The scheduler would fill the database with scheduled runs of the 40
            # deployments while the playbooks run; it measures the server, not the tools.
            "PREFECT_SERVER_SERVICES_SCHEDULER_ENABLED": "false",
        })
        self._log = open(self.log_path, "wb")  # pylint: disable=consider-using-with
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [str(VENV_BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True, cwd=str(self.root),
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchmarkError("the Prefect server exited with code %s\n%s"
                                     % (self.process.returncode, tail(self.log_path)))
            try:
                if self.request("GET", "/ready", timeout=5) is not None:
                    return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                last = exc
            time.sleep(0.5)
        raise BenchmarkError("the Prefect server was not ready after %ss (last error: %s)\n%s"
                             % (SERVER_START_TIMEOUT, last, tail(self.log_path)))

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def request(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.api_url + path, data=data, method=method)
        req.add_header("Authorization", "Basic " + base64.b64encode(self.auth_string.encode()).decode())
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec - 127.0.0.1 only
            raw = resp.read()
        return json.loads(raw) if raw else {}

    def pools(self, names):
        return self.request("POST", "/work_pools/filter",
                            {"work_pools": {"name": {"any_": list(names)}}, "limit": 200})

    def deployments(self, names):
        return self.request("POST", "/deployments/filter",
                            {"deployments": {"name": {"any_": list(names)}}, "limit": 200})


# -- inputs -------------------------------------------------------------------------------
def write_flows(directory, items):
    """bench_flow_NN.py for each item: the same small flow under the item's flow name."""
    source = FLOW_SOURCE.read_text()
    if 'name="bench-flow"' not in source:
        raise BenchmarkError("%s no longer names its flow bench-flow" % FLOW_SOURCE)
    for item in items:
        path = Path(directory) / item["entrypoint"].split(":")[0]
        path.write_text(source.replace('name="bench-flow"', 'name=%s' % json.dumps(item["flow_name"])))


def make_items(prefix, count):
    items = []
    for i in range(1, count + 1):
        items.append({
            "pool": "%s-pool-%02d" % (prefix, i),
            "pool_limit": 1 + i % 5,
            "pool_description": "Benchmark pool %d (%s)" % (i, prefix),
            "deployment": "%s-dep-%02d" % (prefix, i),
            "deployment_description": "Benchmark deployment %d (%s)" % (i, prefix),
            "parameters": {"city": "City-%02d" % i, "days": 1 + i % 7},
            "tags": ["bench", prefix, "n%02d" % i],
            "cron": "%d 8,13,18 * * *" % (i % 60),
            # One flow file per deployment: every re-run reads (or finds cached) 20 different flows.
            "entrypoint": "bench_flow_%02d.py:bench" % i,
            "flow_name": "bench-flow-%02d" % i,
        })
    return items


class Runner:
    """Runs ansible-playbook with the collection resolvable as selfhosted.prefect."""

    def __init__(self, root, server, module_python):
        self.root = Path(root)
        self.server = server
        self.module_python = module_python
        colls = self.root / "collections"
        link_parent = colls / "ansible_collections" / "selfhosted"
        link_parent.mkdir(parents=True)
        (link_parent / "prefect").symlink_to(COLLECTION_ROOT, target_is_directory=True)
        self.collections = colls
        self.count = 0

    def env(self, cli_home=None):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "ANSIBLE_"))}
        env.update({
            "PATH": "%s:%s" % (VENV_BIN, env.get("PATH", "/usr/bin:/bin")),
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "true",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            # Per-task times at the end of the output (ansible.posix, bundled with `ansible`).
            "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "ANSIBLE_HOME": str(self.root / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(self.root / "ansible-tmp-local"),
            "ANSIBLE_REMOTE_TEMP": str(self.root / "ansible-tmp-remote"),
            # The deployment module's flow-reading process imports prefect: keep its
            # home (profiles, caches) out of ~/.prefect.
            "PREFECT_HOME": str(self.root / "module-prefect-home"),
            # The deployment module's flow cache (introspection_cache) lives under XDG_CACHE_HOME:
            # a fresh one per benchmark, so a run never profits from an earlier one.
            "XDG_CACHE_HOME": str(self.root / "module-cache"),
            "BENCH_PREFECT_API_AUTH_STRING": self.server.auth_string,
        })
        return env

    def run(self, label, playbook, variables):
        self.count += 1
        tag = "%02d-%s" % (self.count, re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-"))
        vars_file = self.root / ("vars-%s.json" % tag)
        vars_file.write_text(json.dumps(variables, indent=1))
        log_path = self.root / ("ansible-%s.log" % tag)
        cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", str(playbook),
               "-e", "ansible_connection=local", "-e", "ansible_python_interpreter=%s" % self.module_python,
               "-e", "@%s" % vars_file]
        log("%s: ansible-playbook %s (load %s)" % (label, playbook.name, loadavg()))
        cpu_start, server_cpu_start = children_cpu(), group_cpu(self.server.process.pid)
        start = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as out:
            proc = subprocess.run(cmd, cwd=str(self.root), env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                                  check=False, timeout=3600)
        elapsed = time.monotonic() - start
        cpu = {"client": children_cpu() - cpu_start, "server": group_cpu(self.server.process.pid) - server_cpu_start}
        text = log_path.read_text(errors="replace")
        recap = {}
        for match in RECAP_RE.finditer(text):
            if match.group(1) == "localhost":
                keys = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
                recap = dict(zip(keys, (int(g) for g in match.groups()[1:])))
        tasks = {}
        for match in PROFILE_RE.finditer(text):
            tasks[match.group(1).strip()] = float(match.group(2))
        pools_s = sum(v for k, v in tasks.items() if "pool" in k.lower())
        split = {"pools": pools_s, "deployments": sum(tasks.values()) - pools_s} if tasks else None
        log("%s: %.1f s, CPU %.1f s + server %.1f s, rc=%s, recap %s, tasks %s"
            % (label, elapsed, cpu["client"], cpu["server"], proc.returncode, recap or "missing", tasks))
        if proc.returncode != 0 or not recap or recap.get("failed") or recap.get("unreachable"):
            raise BenchmarkError("%s: ansible-playbook failed (rc=%s), log %s:\n%s"
                                 % (label, proc.returncode, log_path, tail(log_path, 60)))
        return {"label": label, "elapsed": elapsed, "recap": recap, "log": str(log_path), "split": split,
                "cpu": cpu}


# -- checks -------------------------------------------------------------------------------
def verify(server, items, flows_dir):
    """Read the objects back; return (pools_ok, deployments_ok, problems, snapshot)."""
    problems = []
    pools = {p["name"]: p for p in server.pools(i["pool"] for i in items)}
    deps = {d["name"]: d for d in server.deployments(i["deployment"] for i in items)}
    flow_names = {}
    pools_ok = deps_ok = 0
    expected_pull = [{"prefect.deployments.steps.set_working_directory": {"directory": str(flows_dir)}}]
    for item in items:
        pool = pools.get(item["pool"])
        if pool is None:
            problems.append("pool %s missing" % item["pool"])
        else:
            bad = [f for f, want in (("type", "process"), ("concurrency_limit", item["pool_limit"]),
                                     ("description", item["pool_description"])) if pool.get(f) != want]
            if not (pool.get("base_job_template") or {}).get("job_configuration"):
                bad.append("base_job_template")
            if bad:
                problems.append("pool %s: %s differ" % (item["pool"], ", ".join(
                    "%s=%r" % (f, pool.get(f)) for f in bad)))
            else:
                pools_ok += 1
        dep = deps.get(item["deployment"])
        if dep is None:
            problems.append("deployment %s missing" % item["deployment"])
            continue
        bad = []
        for field, want in (("work_pool_name", item["pool"]), ("entrypoint", item["entrypoint"]),
                            ("parameters", item["parameters"]), ("description", item["deployment_description"]),
                            ("pull_steps", expected_pull)):
            if dep.get(field) != want:
                bad.append("%s=%r" % (field, dep.get(field)))
        if sorted(dep.get("tags") or []) != sorted(item["tags"]):
            bad.append("tags=%r" % dep.get("tags"))
        scheds = [s.get("schedule") or {} for s in dep.get("schedules") or []]
        if len(scheds) != 1 or scheds[0].get("cron") != item["cron"] or scheds[0].get("timezone") != TIMEZONE:
            bad.append("schedules=%r" % scheds)
        props = (dep.get("parameter_openapi_schema") or {}).get("properties") or {}
        if set(props) != {"city", "days"}:
            bad.append("parameter_openapi_schema=%r" % dep.get("parameter_openapi_schema"))
        flow_id = dep.get("flow_id")
        if flow_id not in flow_names:
            flow_names[flow_id] = server.request("GET", "/flows/%s" % flow_id).get("name")
        if flow_names[flow_id] != item["flow_name"]:
            bad.append("flow name=%r" % flow_names[flow_id])
        if bad:
            problems.append("deployment %s: %s" % (item["deployment"], "; ".join(bad)))
        else:
            deps_ok += 1
    snapshot = {
        "pools": {n: p.get("updated") for n, p in pools.items()},
        "deployments": {n: (d.get("updated"), sorted(s["id"] for s in d.get("schedules") or []))
                        for n, d in deps.items()},
        "schema": next(iter(deps.values())).get("parameter_openapi_schema") if deps else None,
    }
    return pools_ok, deps_ok, problems, snapshot


def rewrites(before, after):
    pools = sum(1 for n, u in after["pools"].items() if before["pools"].get(n) != u)
    deps = sum(1 for n, state in after["deployments"].items()
               if before["deployments"].get(n, (None, None))[0] != state[0])
    scheds = sum(1 for n, state in after["deployments"].items()
                 if before["deployments"].get(n, (None, None))[1] != state[1])
    return {"pools": pools, "deployments": deps, "schedules": scheds}


def check(server, label, items, flows_dir, count):
    pools_ok, deps_ok, problems, snap = verify(server, items, flows_dir)
    log("%s: verified over the API: %d/%d pools, %d/%d deployments as asked"
        % (label, pools_ok, count, deps_ok, count))
    if problems:
        raise BenchmarkError("%s: objects on the server differ from the playbook:\n  %s"
                             % (label, "\n  ".join(problems[:20])))
    return pools_ok, deps_ok, snap


# -- facts and report ---------------------------------------------------------------------
def version_of(python, dist):
    code = "import importlib.metadata as m; print(m.version(%r))" % dist
    try:
        return subprocess.run([python, "-c", code], capture_output=True, text=True, check=True,
                              timeout=60).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return "n/a"


def machine_facts(module_python):
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        nproc = str(os.cpu_count())
    try:
        mod_py = subprocess.run([module_python, "--version"], capture_output=True, text=True,
                                check=True).stdout.strip() or "?"
    except (subprocess.SubprocessError, OSError):
        mod_py = "?"
    return {
        "nproc": nproc,
        "cpu_count": str(os.cpu_count()),
        "platform": platform.platform(),
        "python": "%s (%s)" % (platform.python_version(), sys.executable),
        "module_python": "%s (%s)" % (mod_py.replace("Python ", ""), module_python),
        "prefect": metadata.version("prefect"),
        "ansible-core": metadata.version("ansible-core"),
        "load_start": loadavg(),
    }


def flow_cost_note(results, count):
    """What reading a flow and checking a cache entry cost, from the deployment tasks' times."""
    def deps(key):
        run = results[key]
        return run["split"]["deployments"] if run.get("split") else run["elapsed"]
    read = (deps("mod_nocache_rerun") - deps("mod_fixed_rerun")) / count
    check = (deps("mod_rerun") - deps("mod_fixed_rerun")) / count
    return ("Deployment tasks only (profile_tasks): reading a flow costs %.1f s per deployment on this run"
            " ((cache off - A') / %d); checking a cache entry %s ((A re-run - A') / %d); A' is %.2f s per"
            " module run." % (read, count, "%.2f s" % check if check >= 0.01 else "nothing measurable (%.3f s)"
                              % check, count, results["mod_fixed_rerun"]["elapsed"] / (2 * count)))


def load_note(facts):
    """How loaded the machine was, from the load averages at the start and the end."""
    try:
        nproc = int(facts["nproc"])
        loads = [float(facts["load_start"].split()[0]), float(facts["load_end"].split()[0])]
    except (KeyError, ValueError, IndexError):
        return "Load average: %s at the start, %s at the end." % (facts.get("load_start"), facts.get("load_end"))
    busy = max(loads) > nproc
    return ("Load average %s at the start, %s at the end, on %d cores: %s" % (
        facts["load_start"], facts["load_end"], nproc,
        "the machine was busy with other work, so absolute times are inflated and noisy; the ratios"
        " (measured in one run) matter more." if busy else
        "the machine was otherwise idle (this benchmark runs one process at a time, about one core)."))


def ratio(num, den):
    return num / den if den else float("inf")


def render(results, facts):
    keys = ("mod_first", "mod_rerun", "mod_fixed_rerun", "cli_first", "cli_rerun", "baseline", "mod_nocache_rerun")
    a1, a2, af, b1, b2, base, an = (results.get(k) for k in keys)
    lines = []
    lines.append("| approach | first run s | re-run s | re-run: pool tasks s / deployment tasks s"
                 " | CPU s, first run / re-run (playbook's processes + server) | re-run changed (recap, tasks)"
                 " | objects rewritten by the re-run (pools / deployments / schedule sets)"
                 " | objects verified (pools + deployments) |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")

    def split(run):
        part = run.get("split")
        return "%.1f / %.1f" % (part["pools"], part["deployments"]) if part else "?"

    def cpu(run):
        return "%.0f + %.0f" % (run["cpu"]["client"], run["cpu"]["server"]) if run else "-"

    def row(name, first, rerun):
        rw = rerun.get("rewrites") or {}
        return "| %s | %s | %.1f | %s | %s / %s | %d | %s / %s / %s | %s |" % (
            name, ("%.1f" % first["elapsed"]) if first else "-", rerun["elapsed"], split(rerun),
            cpu(first), cpu(rerun), rerun["recap"]["changed"], rw.get("pools", "?"), rw.get("deployments", "?"), rw.get("schedules", "?"),
            "%d + %d" % (rerun["pools_ok"], rerun["deps_ok"]))
    lines.append(row("A: selfhosted.prefect modules", a1, a2))
    if an:
        lines.append(row("A, introspection cache off: every flow read again by a process importing prefect",
                         None, an))
    if af:
        lines.append(row("A': modules, flow named in the playbook (no flow-reading process)", None, af))
    lines.append(row("B: ansible.builtin.command + prefect CLI", b1, b2))
    if base:
        lines.append("| floor: the same number of `ansible.builtin.ping` runs | - | %.1f | %s | - / %s | %d | - | - |"
                     % (base["elapsed"], split(base), cpu(base), base["recap"]["changed"]))
    lines.append("")
    lines.append("| ratio | value |")
    lines.append("| --- | ---: |")
    lines.append("| re-run: CLI / modules (target >= %.0fx) | **%.2fx** |"
                 % (TARGET_RERUN_RATIO, ratio(b2["elapsed"], a2["elapsed"])))
    if an:
        lines.append("| re-run: CLI / modules with the introspection cache off | %.2fx |"
                     % ratio(b2["elapsed"], an["elapsed"]))
    if af:
        lines.append("| re-run: CLI / modules with the flow named in the playbook | %.2fx |"
                     % ratio(b2["elapsed"], af["elapsed"]))
    lines.append("| first run: CLI / modules | %.2fx |" % ratio(b1["elapsed"], a1["elapsed"]))

    def total_cpu(run):
        return run["cpu"]["client"] + run["cpu"]["server"]
    lines.append("| CPU, re-run: CLI / modules (less sensitive to the machine's load) | %.2fx |"
                 % ratio(total_cpu(b2), total_cpu(a2)))
    if af:
        lines.append("| CPU, re-run: CLI / modules with the flow named in the playbook | %.2fx |"
                     % ratio(total_cpu(b2), total_cpu(af)))
    lines.append("| CPU, first run: CLI / modules | %.2fx |" % ratio(total_cpu(b1), total_cpu(a1)))
    table = "\n".join(lines)
    facts_md = "\n".join("- %s: %s" % (k, v) for k, v in facts.items())
    return table, facts_md


def write_result(path, table, facts_md, count, notes, command):
    text = """# Benchmark: selfhosted.prefect modules vs ansible.builtin.command + prefect CLI

Date: {date}. Command (from the collection root):

```bash
{command}
```

{count} work pools (type process, concurrency limit, description) and {count} deployments
(one per pool, a local flow directory, a cron schedule, parameters, tags), one
`ansible-playbook` run (localhost, connection local) per line, wall time including
Ansible's start-up. Every run's objects were read back over the REST API and checked
field by field.

{table}

## Machine

{facts}

## Notes

{notes}
""".format(date=datetime.date.today().isoformat(), command=command, count=count, table=table,
           facts=facts_md, notes="\n".join("- " + n for n in notes))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# -- main ---------------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--count", type=int, default=20, help="work pools and deployments per approach (20)")
    parser.add_argument("--module-python", default=os.environ.get("BENCH_MODULE_PYTHON") or (
        "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable),
        help="ansible_python_interpreter for the modules (default /usr/bin/python3, which has no prefect,"
             " like a target host)")
    parser.add_argument("--no-fixed-flow", action="store_true",
                        help="skip A' (module re-run with flow_name and parameter_openapi_schema given)")
    parser.add_argument("--no-cache-off", action="store_true",
                        help="skip the module re-run with introspection_cache: false")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the floor (as many ansible.builtin.ping runs as A has module runs)")
    parser.add_argument("--results", default=str(HERE / "results"),
                        help="directory of the result file (default benchmarks/results)")
    parser.add_argument("--no-write", action="store_true", help="print only, write no result file")
    parser.add_argument("--note", action="append", default=[], help="a line added to the result file's notes")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, vars, server db)")
    args = parser.parse_args(argv)
    command = ".venv/bin/python benchmarks/modules_vs_cli.py" + "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:]))

    prefect_bin = VENV_BIN / "prefect"
    if not prefect_bin.exists():
        print("no prefect in %s: run with the collection's venv, .venv/bin/python" % VENV_BIN, file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="shp-bench-modules-vs-cli-"))
    facts = machine_facts(args.module_python)
    log("machine: nproc=%s, python %s, prefect %s, ansible-core %s, load %s"
        % (facts["nproc"], facts["python"], facts["prefect"], facts["ansible-core"], facts["load_start"]))
    wall_start = time.monotonic()
    server = Server(root)
    results = {}
    code = 0
    try:
        log("starting prefect server on 127.0.0.1:%d" % server.port)
        t0 = time.monotonic()
        server.start()
        facts["server_start_s"] = "%.1f" % (time.monotonic() - t0)
        server_version = server.request("GET", "/admin/version")
        facts["server_version"] = server_version
        log("server ready in %s s (version %s)" % (facts["server_start_s"], server_version))

        runner = Runner(root, server, args.module_python)
        dirs = {}
        for prefix in ("mod", "cli"):
            dirs[prefix] = root / ("flows-%s" % prefix)
            dirs[prefix].mkdir()
            write_flows(dirs[prefix], make_items(prefix, args.count))
        common = {"bench_api_url": server.api_url, "bench_timezone": TIMEZONE,
                  "bench_prefect_bin": str(prefect_bin), "bench_prefect_python": str(sys.executable),
                  "bench_prefect_version": facts["prefect"]}
        mod_items = make_items("mod", args.count)
        cli_items = make_items("cli", args.count)
        mod_vars = dict(common, bench_items=mod_items, bench_flows_dir=str(dirs["mod"]))
        cli_home = root / "cli-prefect-home"
        cli_home.mkdir()
        cli_vars = dict(common, bench_items=cli_items, bench_flows_dir=str(dirs["cli"]),
                        bench_cli_prefect_home=str(cli_home))

        def timed(key, label, playbook, variables, items, flows_dir, before=None):
            res = runner.run(label, ASSETS / playbook, variables)
            res["pools_ok"], res["deps_ok"], res["snapshot"] = check(server, label, items, flows_dir, args.count)
            if before is not None:
                res["rewrites"] = rewrites(before, res["snapshot"])
                log("%s: rewritten by this run: %s" % (label, res["rewrites"]))
            results[key] = res
            return res

        # A: the modules
        a1 = timed("mod_first", "A first run", "modules.yml", mod_vars, mod_items, dirs["mod"])
        a2 = timed("mod_rerun", "A re-run", "modules.yml", mod_vars, mod_items, dirs["mod"], a1["snapshot"])
        noop_failures = []

        def expect_noop(run):
            if run["recap"]["changed"] != 0:
                noop_failures.append("%s reported changed=%d (expected 0), log %s"
                                     % (run["label"], run["recap"]["changed"], run["log"]))
        expect_noop(a2)
        results["mod_fixed_rerun"] = results["mod_nocache_rerun"] = None
        if not args.no_cache_off:
            nocache_vars = dict(mod_vars, bench_introspection_cache=False)
            an = timed("mod_nocache_rerun", "A re-run, cache off", "modules.yml", nocache_vars, mod_items,
                       dirs["mod"], a2["snapshot"])
            expect_noop(an)
        if not args.no_fixed_flow:
            fixed_vars = dict(mod_vars, bench_flow_named=True, bench_parameter_schema=a1["snapshot"]["schema"])
            af = timed("mod_fixed_rerun", "A' re-run, flow named", "modules.yml", fixed_vars, mod_items,
                       dirs["mod"], a2["snapshot"])
            expect_noop(af)
        if not args.no_baseline:
            results["baseline"] = runner.run("floor: ping", ASSETS / "baseline.yml", mod_vars)
        # B: the CLI
        b1 = timed("cli_first", "B first run", "cli.yml", cli_vars, cli_items, dirs["cli"])
        timed("cli_rerun", "B re-run", "cli.yml", cli_vars, cli_items, dirs["cli"], b1["snapshot"])
        facts["load_end"] = loadavg()
        facts["total_wall_s"] = "%.0f" % (time.monotonic() - wall_start)

        notes = [
            load_note(facts),
            "A: `selfhosted.prefect.work_pool` and `selfhosted.prefect.deployment` in two loops;"
            " modules run under %s (no prefect), `prefect_python` is the venv's Python, which the"
            " deployment module starts to read a flow's name and parameter schema (it imports prefect)"
            " when its introspection cache has no valid entry for that flow: on the first run, once"
            " per flow file (each deployment has its own); on the re-run the entries written by the"
            " first run are reused after checking the code's and environment's file stamps. The cache"
            " starts empty (XDG_CACHE_HOME in the benchmark's temporary directory)." % args.module_python,
            "A, cache off: the re-run with `introspection_cache: false`, i.e. one flow-reading process"
            " per deployment, as the module did before the cache.",
            "A': the same playbook with `flow_name` and `parameter_openapi_schema` given, so that process"
            " is not started; shows how much of A's re-run is that process.",
            "B: `prefect work-pool create NAME --type process` (failed_when tolerates 'already exists'),"
            " `prefect work-pool update NAME --description D --concurrency-limit N`, a templated prefect.yaml"
            " and one `prefect --no-prompt deploy --all` (the CLI's cheapest way: one process for all"
            " deployments; a loop of `prefect deploy --name ...` would start %d more processes)." % (args.count - 1),
            "'objects rewritten' compares each object's `updated` timestamp and schedule ids before and after"
            " the re-run: the modules write nothing on a re-run, the CLI rewrites every pool and deployment"
            " (and `prefect deploy` replaces the schedules, which drops their scheduled runs).",
            "Server: `prefect server start` %s from the venv, SQLite, basic auth, 127.0.0.1, scheduler service"
            " off (it would fill the database with scheduled runs while the playbooks run); started in %s s."
            % (facts["prefect"], facts["server_start_s"]),
        ]
        if results.get("mod_fixed_rerun") and results.get("mod_nocache_rerun"):
            notes.append(flow_cost_note(results, args.count))
        if results.get("baseline"):
            notes.append("Floor: %d `ansible.builtin.ping` runs took %.1f s (%.2f s per module run): Ansible's own"
                         " cost of a loop item on this machine, which no module can go below."
                         % (2 * args.count, results["baseline"]["elapsed"],
                            results["baseline"]["elapsed"] / (2 * args.count)))
        notes.append("CPU s: user + system time of everything the ansible-playbook run started (Ansible, modules,"
                     " the flow-reading processes, the prefect CLI), from getrusage(RUSAGE_CHILDREN), + the"
                     " server's process group from /proc. Wall time on an idle 2-core machine is roughly the"
                     " playbook's CPU time (its processes run one after another).")
        notes.append("Per-task times from ansible.posix.profile_tasks; 're-run changed' is the recap's count of"
                     " changed tasks (a loop counts once).")
        notes += list(args.note)
        table, facts_md = render(results, facts)
        print()
        print(table)
        print()
        print("Machine:")
        print(facts_md)
        if not args.no_write:
            out = Path(args.results) / ("modules_vs_cli-%s.md" % datetime.date.today().isoformat())
            write_result(out, table, facts_md, args.count, notes, command)
            log("written %s" % out)
        if noop_failures:
            loud("NOT IDEMPOTENT: " + "\n".join(noop_failures))
            code = 1
    except BenchmarkError as exc:
        loud("BENCHMARK FAILED: %s" % exc)
        code = 1
    finally:
        server.stop()
        if args.keep or code:
            log("kept %s (logs, vars, server log)" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
