# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Attacks on a deployed stack with only a tenant's own API credential (issue 27), proved harmlessly.

Each test replays a way from the tenant's credential, or from flow code, to the worker host,
and proves the outcome by capability sets, writability (open for append, closed unwritten),
syscalls with invalid arguments and TCP/TLS reachability, never by doing the damage
(``probe.py`` is what runs inside the containers):

1. ``PATCH /api/work_pools/POOL`` with a base job template asking for everything dangerous
   at once: the next run of an ordinary deployment must end Crashed, its message saying
   ``RunPolicyViolation`` and naming every setting and ``worker_run_policy``; no container
   is created. The original template is put back (always) and a normal run completes.
2. Job variables of a deployment and of a flow run asking for privileged, volumes and
   container_create_kwargs: the run is refused, or its container has none of them.
3. The probe as an ordinary run of the docker pool (the example flow image, code sent in
   the ``command`` job variable, no image built): capabilities, host cgroup files, engine
   sockets, block devices, finit_module/mount/mknod, the API credential in the environment,
   and what it reaches (the stack's published ports on each host address and on the
   Docker gateway, other containers of the stack, DinD engines' port 2376 without a client
   certificate).
4. The sidecar alone (as if the policy were wrong): from the worker host, a privileged
   container with the host's cgroup tree and / mounted, on each sidecar's inner engine.

Target (environment variables):
  ATTACK_API_URL            the tenant's API (default http://127.0.0.1:4200/api)
  ATTACK_AUTH_USER          basic auth user (default admin)
  ATTACK_AUTH_PASSWORD_FILE file holding the password
                            (default ~/.selfhosted-prefect/localhost/tenant-default-auth-password)
  ATTACK_CA_FILE            CA of an https API (default: the system's)
  ATTACK_TENANT             the tenant's name, as the stack labels its containers (default default)
  ATTACK_POOL               docker work pool (default docker-pool)
  ATTACK_IMAGE_DEPLOYMENT   deployment whose image and registry block the probe borrows
                            (default weather/weather-image)
  ATTACK_DOCKER             command prefix that runs commands on a host of the stack ("" for
                            this machine); several hosts separated by ";", e.g.
                            "docker exec molecule-site-prefect-worker-1;docker exec ...-2"
  ATTACK_ALLOWED_PORTS      ports a flow run may reach on the tenant's own API, registry and
                            S3 (default 4200,5000,8333)
  ATTACK_RUN_TIMEOUT        seconds to wait for a flow run (default 300)
DinD sidecars are found by the label io.selfhosted.prefect.worker.role=dind. About 2 to 3
minutes on 2 cores (four flow runs, one privileged container per sidecar).
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import shlex
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

import probe

HERE = Path(__file__).resolve().parent
API = os.environ.get("ATTACK_API_URL", "http://127.0.0.1:4200/api").rstrip("/")
USER = os.environ.get("ATTACK_AUTH_USER", "admin")
PASSWORD_FILE = os.path.expanduser(os.environ.get(
    "ATTACK_AUTH_PASSWORD_FILE", "~/.selfhosted-prefect/localhost/tenant-default-auth-password"))
CA_FILE = os.environ.get("ATTACK_CA_FILE") or True
TENANT = os.environ.get("ATTACK_TENANT", "default")
POOL = os.environ.get("ATTACK_POOL", "docker-pool")
IMAGE_DEPLOYMENT = os.environ.get("ATTACK_IMAGE_DEPLOYMENT", "weather/weather-image")
HOSTS = [shlex.split(p) for p in os.environ.get("ATTACK_DOCKER", "").split(";")] or [[]]
ALLOWED_PORTS = {int(p) for p in os.environ.get("ATTACK_ALLOWED_PORTS", "4200,5000,8333").split(",") if p}
RUN_TIMEOUT = int(os.environ.get("ATTACK_RUN_TIMEOUT", "300"))
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
# Components that are the tenant's own API, registry and S3: reachable by design.
SERVICE_COMPONENTS = {"server", "server-api", "front-door", "registry", "object_storage"}
# Capabilities that turn root in a container into root on the host.
FORBIDDEN_CAPS = {"SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "SYS_BOOT", "SYS_TIME", "DAC_READ_SEARCH",
                  "NET_ADMIN", "MAC_ADMIN", "MAC_OVERRIDE", "SYS_RESOURCE", "SYSLOG", "BPF", "PERFMON",
                  "AUDIT_CONTROL", "LINUX_IMMUTABLE"}
# The worker host's own directory: seen from a container, the host's files are visible.
HOST_MARKERS = ["etc/selfhosted-prefect"]
RUN_ID = uuid.uuid4().hex[:8]

# Everything dangerous at once (docker-py keywords): job_configuration fields, then
# container_create_kwargs. A real attack asks for the host's disk.
DANGEROUS_FIELDS = {"privileged": True, "volumes": ["/:/hostroot"], "network_mode": "bridge"}
DANGEROUS_KWARGS = {
    "cap_add": ["SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE"],
    "security_opt": ["apparmor=unconfined", "seccomp=unconfined"],
    "devices": ["/dev/sda:/dev/sda:rwm"],
    "device_cgroup_rules": ["b *:* rwm"],
    "pid_mode": "host",
    "ipc_mode": "host",
    "uts_mode": "host",
    "userns_mode": "host",
    "cgroupns": "host",
    "sysctls": {"kernel.shm_rmid_forced": "1"},
    "mounts": [{"Type": "bind", "Source": "/sys/fs/cgroup", "Target": "/hostcg", "ReadOnly": False},
               {"Type": "bind", "Source": "/", "Target": "/hostroot-mount", "ReadOnly": False}],
    "volumes_from": ["prefect-worker-" + POOL + "-1"],
    "runtime": "runc",
    "cgroup_parent": "/",
    # Outside any allow-list: the kernel's OOM killer spares it.
    "oom_kill_disable": True,
}
REFUSED_NAMES = sorted(set(DANGEROUS_FIELDS) | set(DANGEROUS_KWARGS))


def no_problems(problems, what):
    """Fail with every problem on its own line (pytest would cut a long assertion message)."""
    if problems:
        pytest.fail("%s:\n  %s" % (what, "\n  ".join(problems)), pytrace=False)


# --- API ------------------------------------------------------------------------------
def session():
    """A requests session with the tenant's credential (never printed)."""
    with open(PASSWORD_FILE, encoding="utf-8") as handle:
        password = handle.read().strip()
    http = requests.Session()
    http.auth = (USER, password)
    http.verify = CA_FILE
    return http


@pytest.fixture(scope="module")
def api():
    """Call the tenant's API: api(method, path, json=...) -> decoded body (None for 204)."""
    http = session()

    def call(method, path, expect=(200, 201, 204), **kwargs):
        # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        response = http.request(method, API + path, timeout=60, verify=CA_FILE, **kwargs)
        assert response.status_code in expect, "%s %s: %s %s" % (
            method, path, response.status_code, response.text[:500])
        return response.json() if response.content else None

    yield call
    http.close()


def wait_run(api, run_id):
    """The flow run once its state is final."""
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        run = api("GET", "/flow_runs/%s" % run_id)
        if run["state_type"] in FINAL:
            return run
        assert time.monotonic() < deadline, "run %s still %s after %s s" % (run_id, run["state_type"], RUN_TIMEOUT)
        time.sleep(2)


def run_logs(api, run_id, pattern=None, tries=15):
    """The run's log messages, oldest first; with pattern, waits until one matches."""
    messages = []
    for _try in range(tries):
        logs = api("POST", "/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}},
                                                 "sort": "TIMESTAMP_ASC", "limit": 200})
        messages = [entry["message"] for entry in logs]
        if pattern is None or any(re.search(pattern, m) for m in messages):
            break
        time.sleep(2)
    return messages


def start_run(api, deployment_id, job_variables=None):
    """A new flow run of the deployment, then its final state."""
    body = {"job_variables": job_variables} if job_variables else {}
    run = api("POST", "/deployments/%s/create_flow_run" % deployment_id, json=body)
    return wait_run(api, run["id"])


def probe_report(api, run):
    """The probe's findings (its JSON line), or None when the flow never logged them."""
    for message in run_logs(api, run["id"], "^" + probe.PROBE_PREFIX, tries=15 if run["state_type"] == "COMPLETED"
                            else 1):
        if message.startswith(probe.PROBE_PREFIX):
            return json.loads(message[len(probe.PROBE_PREFIX):])
    return None


def describe(run):
    """One line about a finished run, for failure messages."""
    return "run %s %s: %s" % (run["id"], run["state_type"], (run.get("state") or {}).get("message"))


# --- Hosts ----------------------------------------------------------------------------
def on_host(host, argv, stdin=None, check=True, timeout=180):
    """Run argv on a host of the stack (its command prefix + argv)."""
    proc = subprocess.run(host + argv, input=stdin, capture_output=True, timeout=timeout, check=False)
    if check:
        assert proc.returncode == 0, "%s: rc %s %s" % (" ".join(host + argv[:4]), proc.returncode,
                                                       proc.stderr.decode(errors="replace")[-800:])
    return proc


def stack_containers(host):
    """docker inspect of every running container of the stack on a host."""
    ids = on_host(host, ["docker", "ps", "-q", "--filter", "label=io.selfhosted.prefect.component"]).stdout.split()
    if not ids:
        return []
    return json.loads(on_host(host, ["docker", "inspect"] + [i.decode() for i in ids]).stdout)


@pytest.fixture(scope="module")
def hosts():
    """[{prefix, addresses, containers, sidecars}] for each host of ATTACK_DOCKER."""
    out = []
    for prefix in HOSTS:
        addresses = on_host(prefix, ["hostname", "-I"]).stdout.decode().split()
        containers = stack_containers(prefix)
        out.append({
            "prefix": prefix,
            "addresses": [a for a in addresses if ":" not in a and not a.startswith("127.")],
            "containers": containers,
            "sidecars": [c for c in containers
                         if c["Config"]["Labels"].get("io.selfhosted.prefect.worker.role") == "dind"],
        })
    assert any(h["sidecars"] for h in out), "no DinD sidecar (label io.selfhosted.prefect.worker.role=dind) on %s" % HOSTS
    return out


def own_service(container):
    """The tenant's own API, registry or S3: reachable by design."""
    labels = container["Config"]["Labels"]
    component = labels.get("io.selfhosted.prefect.component")
    if component not in SERVICE_COMPONENTS:
        return False
    tenant = labels.get("io.selfhosted.prefect.tenant")
    return tenant in (None, TENANT) or component == "front-door"


def targets(hosts_):
    """What a flow run should not reach, with what it may: [{id, host, port, tls, allowed, scope}]."""
    out = []
    for index, host in enumerate(hosts_):
        published = {}
        for container in host["containers"]:
            name = container["Name"].lstrip("/")
            for port_proto, bindings in (container["NetworkSettings"]["Ports"] or {}).items():
                for binding in bindings or []:
                    published[int(binding["HostPort"])] = (name, own_service(container))
            # Its addresses on its networks: only meaningful from a flow run on the same host.
            exposed = {int(p.split("/")[0]) for p in (container["Config"].get("ExposedPorts") or {})
                       if p.endswith("/tcp")}
            for network, settings in (container["NetworkSettings"]["Networks"] or {}).items():
                for port in sorted(exposed):
                    if settings.get("IPAddress"):
                        out.append({"id": "%s on %s (host %d)" % (name, network, index), "host": settings["IPAddress"],
                                    "port": port, "tls": port == 2376, "scope": index,
                                    "allowed": own_service(container) and port in ALLOWED_PORTS})
        # The host's engine on TCP, and everything it publishes, at each of its addresses.
        for port in (2375, 2376):
            published.setdefault(port, ("the host's engine", False))
        for address in host["addresses"] + ["gateway"]:
            for port, (name, allowed) in sorted(published.items()):
                out.append({"id": "%s:%d published by %s (host %d)" % (address, port, name, index), "host": address,
                            "port": port, "tls": port == 2376, "scope": "any" if address != "gateway" else index,
                            "allowed": allowed and port in ALLOWED_PORTS})
    # The flow run's own sidecar engine (network mode host of the sidecar).
    out.append({"id": "own sidecar's engine 127.0.0.1:2376", "host": "127.0.0.1", "port": 2376, "tls": True,
                "scope": "any", "allowed": False})
    return out


def reach_problems(found, hosts_):
    """Targets the probe reached that it must not (2376: a TLS request without a client certificate answered)."""
    ran_on = [i for i, h in enumerate(hosts_)
              if any(c["Id"].startswith(found["hostname"]) for c in h["sidecars"])] or list(range(len(hosts_)))
    problems = []
    for entry in found["reach"]:
        if entry["scope"] != "any" and entry["scope"] not in ran_on:
            continue
        if entry["allowed"] or entry["tcp"] != "open":
            continue
        if entry["tls"] and str(entry.get("tls")).startswith("refused"):
            continue
        problems.append("reachable: %s (%s) tls=%s" % (entry["id"], entry["address"], entry.get("tls", "-")))
    return problems


def host_escape_problems(found, check_caps=True):
    """Everything in the probe's findings that reaches the host. check_caps false (a container of a
    sidecar's inner engine, privileged on purpose): only what reaches past the sidecar."""
    problems = []
    if check_caps:
        caps = set(found["capabilities"]["CapEff"]["names"])
        if caps & FORBIDDEN_CAPS:
            problems.append("CapEff %s has %s" % (found["capabilities"]["CapEff"]["hex"],
                                                  sorted(caps & FORBIDDEN_CAPS)))
    for agent in found["cgroups"]["release_agents"]:
        if agent["writable"] == "yes":
            problems.append("writable release_agent: %s" % agent["path"])
    for path in found["cgroups"]["writable"]:
        if not path.endswith("release_agent"):
            problems.append("writable cgroup file: %s" % path)
    if found["host_markers"]:
        problems.append("the worker host's files are visible: %s" % found["host_markers"])
    # On a sidecar's inner engine (check_caps false) a socket under / is that engine's own.
    for sock in found["docker_sockets"] if check_caps else []:
        problems.append("engine socket %s (connect: %s)" % (sock["path"], sock["connect"]))
    for device in found["block_devices"]:
        if device["open"] == "opened":
            problems.append("block device opens: %s" % device["path"])
    calls = found["syscalls"]
    if calls["finit_module"] in ("EBADF", "ok"):
        problems.append("finit_module(-1) -> %s: may load kernel modules" % calls["finit_module"])
    if check_caps and calls["mount"] in ("ENODEV", "ok"):
        problems.append("mount() -> %s: may mount" % calls["mount"])
    # EPERM/EACCES: the device cgroup refuses it; ENXIO/ENODEV: no such device behind the
    # node (gVisor's own kernel has none of the host's disks).
    if calls.get("mknod_open") not in (None, "EPERM", "EACCES", "ENXIO", "ENODEV"):
        problems.append("mknod of the disk %s, open -> %s: the device cgroup allows it"
                        % (calls.get("mknod_device"), calls["mknod_open"]))
    if check_caps:
        for path, result in found["kernel_escape_files"].items():
            if result == "yes":
                problems.append("writable %s" % path)
    return problems


def summary(found):
    """The probe's findings in one short line."""
    if "error" in found:
        return json.dumps(found)
    return json.dumps({"CapEff": found["capabilities"]["CapEff"]["hex"], "syscalls": found["syscalls"],
                       "writable release_agents": sum(a["writable"] == "yes" for a in found["cgroups"]["release_agents"]),
                       "auth_string_in_env": found["auth_string_in_env"], "sockets": found["docker_sockets"],
                       "kernel": found["kernel"], "container": found.get("container"),
                       "open": ["%s %s" % (r["id"], r.get("tls", "")) for r in found["reach"] if r["tcp"] == "open"]})


def probe_spec(hosts_):
    """What probe.collect() gets: targets, extra roots, host markers."""
    return {"targets": targets(hosts_), "roots": ["/hostroot", "/hostroot-mount", "/hostcg"], "markers": HOST_MARKERS}


# --- Deployments of the test's own ----------------------------------------------------
@pytest.fixture(scope="module")
def image_deployment(api):
    """The deployment whose image and registry credentials the probe borrows (an ordinary one)."""
    flow_name, name = IMAGE_DEPLOYMENT.split("/", 1)
    deployment = api("GET", "/deployments/name/%s/%s" % (flow_name, name))
    assert deployment["work_pool_name"] == POOL, "%s is on %s, not %s" % (
        IMAGE_DEPLOYMENT, deployment["work_pool_name"], POOL)
    return deployment


@pytest.fixture(scope="module")
def make_probe_deployment(api, image_deployment, hosts):
    """make(name, job_variables) -> a deployment on the pool running the probe; all deleted at the end."""
    flow = api("POST", "/flows/", json={"name": "attack-probe"})
    source = probe.flow_source(probe_spec(hosts)).encode()
    command = ("sh -c 'echo %s | base64 -d > /tmp/probe_flow.py && cd /tmp && exec python -m prefect.engine'"
               % base64.b64encode(source).decode())
    made = []

    def make(name, job_variables=None):
        variables = {k: v for k, v in (image_deployment.get("job_variables") or {}).items()
                     if k in ("image", "registry_credentials", "image_pull_policy")}
        variables["command"] = command
        variables.update(job_variables or {})
        deployment = api("POST", "/deployments/", json={
            "name": "%s-%s" % (name, RUN_ID), "flow_id": flow["id"], "work_pool_name": POOL,
            "entrypoint": "probe_flow.py:probe", "path": "/tmp",
            "pull_steps": [{"prefect.deployments.steps.set_working_directory": {"directory": "/tmp"}}],
            "job_variables": variables, "enforce_parameter_schema": False,
            "parameter_openapi_schema": {"type": "object", "properties": {}}})
        made.append(deployment["id"])
        return deployment

    yield make
    for deployment_id in made:
        api("DELETE", "/deployments/%s" % deployment_id, expect=(200, 204, 404))


# --- 1. The PATCH route -----------------------------------------------------------------
def test_patch_pool_template_is_refused_by_the_worker(api, image_deployment):
    """A template rewritten with the tenant's credential asks for everything: the run gets no container."""
    original = api("GET", "/work_pools/%s" % POOL)["base_job_template"]
    patched = copy.deepcopy(original)
    config = patched["job_configuration"]
    config.update(DANGEROUS_FIELDS)
    config["container_create_kwargs"] = DANGEROUS_KWARGS
    try:
        api("PATCH", "/work_pools/%s" % POOL, json={"base_job_template": patched})
        run = start_run(api, image_deployment["id"])
        messages = run_logs(api, run["id"], tries=1)
    finally:
        api("PATCH", "/work_pools/%s" % POOL, json={"base_job_template": original})
    assert api("GET", "/work_pools/%s" % POOL)["base_job_template"] == original, "the template was not put back"
    message = (run.get("state") or {}).get("message") or ""
    created = [m for m in messages if re.search(r"container .* created successfully", m)]
    missing = [n for n in REFUSED_NAMES if not re.search(r"(?<![A-Za-z_])%s(?![A-Za-z_])" % n, message)]
    refused = run["state_type"] == "CRASHED" and "RunPolicyViolation" in message and "worker_run_policy" in message
    no_problems(([] if refused else ["not refused by the run policy: " + describe(run)])
                + ["not named: %s" % n for n in missing] + ["a container was created: %s" % m for m in created],
                "the rewritten template was not refused")
    after = start_run(api, image_deployment["id"])
    assert after["state_type"] == "COMPLETED", "with the template put back: " + describe(after)


# --- 2. Job variables --------------------------------------------------------------------
def test_job_variables_get_nothing_dangerous(api, make_probe_deployment):
    """A deployment and its run asking for privileged, a host mount and extra create kwargs get none."""
    asked = {"privileged": True, "volumes": ["/:/hostroot"],
             "container_create_kwargs": {"cap_add": ["SYS_ADMIN", "SYS_MODULE"],
                                         "security_opt": ["apparmor=unconfined", "seccomp=unconfined"],
                                         "mounts": [{"Type": "bind", "Source": "/sys/fs/cgroup", "Target": "/hostcg"}]}}
    deployment = make_probe_deployment("attack-job-variables", asked)
    run = start_run(api, deployment["id"], job_variables={"privileged": True, "volumes": ["/:/hostroot"]})
    message = (run.get("state") or {}).get("message") or ""
    if run["state_type"] == "CRASHED" and "RunPolicyViolation" in message:
        return
    found = probe_report(api, run)
    assert run["state_type"] == "COMPLETED" and found, describe(run)
    problems = host_escape_problems(found)
    for path in ("/hostroot", "/hostcg"):
        if path in found["mounts"] or any(m.startswith(path + "/") for m in found["mounts"]):
            problems.append("mounted: %s" % path)
    no_problems(problems, "job variables were honoured (%s)" % describe(run))


# --- 3. The probe: an ordinary run -------------------------------------------------------
@pytest.fixture(scope="module")
def probe_findings(api, make_probe_deployment):
    """The findings of one ordinary run of the probe on the docker pool."""
    run = start_run(api, make_probe_deployment("attack-probe")["id"])
    found = probe_report(api, run)
    assert run["state_type"] == "COMPLETED" and found, "the probe run: " + describe(run)
    print("probe findings: " + summary(found))
    return found


def test_flow_run_cannot_reach_the_host_kernel(probe_findings):
    """No dangerous capability, no host cgroup file, no engine socket, no disk, no module loading."""
    no_problems(host_escape_problems(probe_findings), "an ordinary flow run reaches the host")


def test_flow_run_has_no_credential_in_its_environment(probe_findings):
    """PREFECT_API_AUTH_STRING is not in the flow-run container's environment."""
    assert not probe_findings["auth_string_in_env"], \
        "PREFECT_API_AUTH_STRING in the environment (secret-like names: %s)" % probe_findings["secret_like_env"]


def test_flow_run_reaches_only_its_own_services(probe_findings, hosts):
    """Nothing of the stack but the tenant's API, registry and S3; no engine without a client certificate."""
    no_problems(reach_problems(probe_findings, hosts), "an ordinary flow run reaches what it must not")


# --- 4. The sidecar alone -------------------------------------------------------------------
# After the probe: its image is there.
@pytest.fixture(scope="module")
def sidecar_findings(hosts, probe_findings):  # pylint: disable=unused-argument
    """On each sidecar's inner engine, the probe in the most privileged container that engine starts."""
    source = (HERE / "probe.py").read_text(encoding="utf-8")
    spec = json.dumps({"roots": ["/hostroot", "/hostcg"], "markers": HOST_MARKERS})
    out = {}
    for host in hosts:
        for sidecar in host["sidecars"]:
            name = sidecar["Name"].lstrip("/")
            inner = host["prefix"] + ["docker", "exec", name, "docker"]
            images = [i for i in on_host(inner, ["images", "--format", "{{.Repository}}:{{.Tag}}"]).stdout.decode().split()
                      if "<none>" not in i]
            image = next((i for i in images if "prefect" in i or "flows" in i), None)
            if image is None:
                out[name] = {"error": "no image with Python on its inner engine (%s)" % images}
                continue
            mounts = ["-v", "/sys/fs/cgroup:/hostcg", "-v", "/:/hostroot"]
            # Where the sidecar cannot start a privileged container, every capability it has.
            bounding = int(re.search(r"CapBnd:\s*([0-9a-f]+)", on_host(
                host["prefix"], ["docker", "exec", name, "cat", "/proc/1/status"]).stdout.decode()).group(1), 16)
            caps = [c for i, c in enumerate(probe.CAPABILITIES)
                    if bounding & (1 << i) and c not in ("BPF", "PERFMON", "CHECKPOINT_RESTORE")]
            tried = []
            for flags in (["--privileged"],
                          sum([["--cap-add", c] for c in caps], [])
                          + ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
                             "--device-cgroup-rule", "b *:* rwm"]):
                proc = on_host(inner, ["run", "--rm", "--entrypoint", "python"] + flags + mounts
                               + [image, "-c", source, spec], check=False)
                lines = [ln for ln in proc.stdout.decode(errors="replace").splitlines()
                         if ln.startswith(probe.PROBE_PREFIX)]
                if lines:
                    out[name] = dict(json.loads(lines[-1][len(probe.PROBE_PREFIX):]), refused=tried,
                                     container=flags[0] if len(flags) == 1 else
                                     "--cap-add of the sidecar's %d capabilities, unconfined" % len(caps))
                    break
                tried.append("%s: rc %s %s" % (flags[0], proc.returncode, proc.stderr.decode(errors="replace")[-300:]))
            else:
                out[name] = {"error": "no container started", "refused": tried}
    print("sidecar findings: " + "; ".join("%s: %s" % (n, summary(f)) for n, f in out.items()))
    return out


def test_sidecar_contains_a_privileged_container(sidecar_findings):
    """Even privileged, with the cgroup tree and / mounted: no host release_agent, no host file, no module loading."""
    problems = {}
    for name, found in sidecar_findings.items():
        if "error" in found:
            if found["error"] != "no container started":
                problems[name] = ["%s: %s" % (name, found["error"])]
            continue
        found_problems = host_escape_problems(found, check_caps=False)
        if found_problems:
            problems[name] = ["%s, container %s:" % (name, found["container"])] + found_problems
    no_problems(sum(problems.values(), []), "a container on a sidecar's inner engine reaches the host")
    started = [name for name, found in sidecar_findings.items() if "error" not in found]
    assert started, "no sidecar started a container: %s" % sidecar_findings
