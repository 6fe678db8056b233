# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The worker role's run-policy worker (roles/worker/files/run_policy_worker.py): the
policy check on final container settings, the credential taken out of the environment,
and prefect-docker's real DockerWorker building a container from an attacker's template."""

from __future__ import annotations

import importlib.util
import json
import os
import sys

import pytest

_PATH = os.path.join(os.path.dirname(__file__), "..", "..", "..", "roles", "worker", "files", "run_policy_worker.py")
_SPEC = importlib.util.spec_from_file_location("run_policy_worker", _PATH)
rpw = importlib.util.module_from_spec(_SPEC)
# Prefect looks up the source file of a worker class that takes over a type key.
sys.modules["run_policy_worker"] = rpw
_SPEC.loader.exec_module(rpw)

# What the role writes for a DinD pool with the API behind TLS.
POLICY = {
    "pool": "docker-pool",
    "network_modes": ["host"],
    "networks": [],
    "volumes": [],
    "volume_specs": ["/etc/selfhosted-prefect/api-ca:/etc/selfhosted-prefect/api-ca:ro"],
    "credential_mount": {"source": "/run/selfhosted-prefect/flow-run-profiles.toml",
                         "target": "/run/secrets/prefect-profiles.toml"},
}


def ordinary(**extra):
    settings = {
        "image": "registry:5000/flows/weather:1", "network": None, "network_mode": "host",
        "command": ["python", "-m", "prefect.engine"], "auto_remove": True, "labels": {},
        "extra_hosts": None, "name": "run-1", "mem_limit": None, "memswap_limit": None,
        "privileged": False, "volumes": ["/etc/selfhosted-prefect/api-ca:/etc/selfhosted-prefect/api-ca:ro"],
        "environment": {"PREFECT_API_URL": "https://front:4200/api", "PREFECT_API_AUTH_STRING": "admin:s3cret",
                        "PREFECT_PROFILES_PATH": "/run/secrets/worker.toml"},
    }
    settings.update(extra)
    return settings


def test_an_ordinary_container_passes():
    assert not rpw.violations(ordinary(), [], POLICY)
    # Harmless create kwargs need no policy.
    assert not rpw.violations(ordinary(user="1000", working_dir="/opt", cap_drop=["ALL"], read_only=True), [], POLICY)


@pytest.mark.parametrize("key,value", [
    ("privileged", True),
    ("cap_add", ["SYS_ADMIN"]),
    ("security_opt", ["seccomp=unconfined"]),
    ("devices", ["/dev/sda:/dev/sda:rwm"]),
    ("device_cgroup_rules", ["b 8:* rwm"]),
    ("device_requests", [{"Driver": "nvidia"}]),
    ("pid_mode", "host"), ("ipc_mode", "host"), ("uts_mode", "host"), ("userns_mode", "host"),
    ("cgroupns", "host"), ("sysctls", {"kernel.core_pattern": "|/x"}),
    ("mounts", [{"Type": "bind", "Source": "/sys/fs/cgroup", "Target": "/hostcg"}]),
    ("volumes_from", ["prefect-server"]), ("runtime", "runc"), ("cgroup_parent", "/"),
    ("ports", {"22/tcp": 2222}), ("oom_kill_disable", True), ("ulimits", [{"Name": "nofile"}]),
    ("network_mode", "bridge"), ("network_mode", "container:prefect-postgres"),
])
def test_each_escape_is_refused_and_named(key, value):
    found = rpw.violations(ordinary(**{key: value}), [], POLICY)
    assert len(found) == 1 and found[0].startswith(key + "="), found
    assert "worker_run_policy" in found[0]


@pytest.mark.parametrize("volume", [
    "/:/hostroot", "/sys/fs/cgroup:/hostcg:rw", "/var/run/docker.sock:/var/run/docker.sock",
    "/etc/selfhosted-prefect/api-ca/../../..:/x", "prefect-postgres-data:/data",
    "/etc/selfhosted-prefect/api-ca:/etc/selfhosted-prefect/api-ca:rw",
])
def test_host_paths_and_named_volumes_are_refused(volume):
    found = rpw.violations(ordinary(volumes=[volume]), [], POLICY)
    assert found and found[0].startswith("volumes="), found


def test_the_policy_widens_exactly_what_it_names():
    policy = dict(POLICY, cap_add=["NET_ADMIN"], volumes=["/srv/data"], create_kwargs=["sysctls"])
    assert not rpw.violations(ordinary(cap_add=["NET_ADMIN"], volumes=["/srv/data/x:/data:ro"],
                                       sysctls={"net.ipv4.ip_forward": "1"}), [], policy)
    assert rpw.violations(ordinary(cap_add=["NET_ADMIN", "SYS_ADMIN"]), [], policy) == [
        'cap_add=["SYS_ADMIN"] (worker_run_policy.cap_add)']
    assert rpw.violations(ordinary(volumes=["/srv/database:/d"]), [], policy)


def test_networks_beyond_the_policy_are_refused():
    policy = dict(POLICY, network_modes=[None], networks=["prefect"])
    assert not rpw.violations(ordinary(network_mode=None, network="prefect"), ["prefect"], policy)
    found = rpw.violations(ordinary(network_mode=None, network="prefect"), ["prefect", "prefect-other"], policy)
    assert found == ['networks=["prefect-other"] (worker_run_policy.networks)']


def test_every_violation_is_in_one_message():
    with pytest.raises(rpw.RunPolicyViolation) as caught:
        rpw.check(ordinary(privileged=True, cap_add=["SYS_MODULE"], runtime="runc"), [], POLICY)
    message = str(caught.value)
    for name in ("privileged=true", "cap_add=", "runtime=", "worker_run_policy", "'docker-pool'"):
        assert name in message


def test_the_credential_leaves_the_environment_for_a_read_only_file():
    settings = rpw.without_credential(ordinary(), POLICY)
    assert "PREFECT_API_AUTH_STRING" not in settings["environment"]
    assert settings["environment"]["PREFECT_PROFILES_PATH"] == "/run/secrets/prefect-profiles.toml"
    assert "/run/selfhosted-prefect/flow-run-profiles.toml:/run/secrets/prefect-profiles.toml:ro" in settings["volumes"]
    # The worker's own settings are untouched (a copy was changed).
    assert ordinary()["environment"]["PREFECT_API_AUTH_STRING"] == "admin:s3cret"
    # Without a mount to give, the worker's own profile path is not passed on either.
    bare = rpw.without_credential(ordinary(), dict(POLICY, credential_mount={}))
    assert "PREFECT_PROFILES_PATH" not in bare["environment"]


def test_a_missing_or_foreign_policy_stops_the_worker(tmp_path):
    with pytest.raises(SystemExit):
        rpw.load_policy("")
    with pytest.raises(SystemExit):
        rpw.load_policy(str(tmp_path / "absent.json"))
    (tmp_path / "p.json").write_text(json.dumps({"something": 1}))
    with pytest.raises(SystemExit):
        rpw.load_policy(str(tmp_path / "p.json"))


class _Engine:  # pylint: disable=too-few-public-methods
    """Stand-in for docker-py's client: prefect-docker only asks it for its version here."""

    @staticmethod
    def version():
        return {"Version": "20.10.24"}


def test_prefect_dockers_worker_builds_the_attackers_container_and_ours_refuses_it(monkeypatch):
    pytest.importorskip("prefect_docker")
    from prefect.utilities.dispatch import lookup_type
    from prefect.workers.base import BaseWorker
    from prefect_docker.worker import DockerWorker, DockerWorkerJobConfiguration

    cls = rpw.worker_class(POLICY)
    assert issubclass(cls, DockerWorker) and lookup_type(BaseWorker, "docker") is cls
    monkeypatch.setenv("PREFECT_API_URL", "https://front:4200/api")
    # What a PATCH of the pool's base job template with the tenant's credential produces.
    attack = DockerWorkerJobConfiguration(
        image="registry:5000/flows/weather:1", network_mode="host", privileged=False,
        container_create_kwargs={"cap_add": ["SYS_ADMIN", "SYS_MODULE"],
                                 "security_opt": ["apparmor=unconfined", "seccomp=unconfined"],
                                 "mounts": [{"Type": "bind", "Source": "/sys/fs/cgroup", "Target": "/hostcg"}]},
        env={"PREFECT_API_AUTH_STRING": "admin:s3cret"},
    )
    worker = cls(work_pool_name="docker-pool")
    built = DockerWorker._build_container_settings(worker, _Engine(), attack)  # pylint: disable=protected-access
    assert built["cap_add"] == ["SYS_ADMIN", "SYS_MODULE"]  # prefect-docker alone would create it
    with pytest.raises(rpw.RunPolicyViolation) as caught:
        worker._build_container_settings(_Engine(), attack)  # pylint: disable=protected-access
    for key in ("cap_add", "security_opt", "mounts"):
        assert key + "=" in str(caught.value)
    ordinary_run = DockerWorkerJobConfiguration(image="registry:5000/flows/weather:1", network_mode="host",
                                                env={"PREFECT_API_AUTH_STRING": "admin:s3cret"})
    settings = worker._build_container_settings(_Engine(), ordinary_run)  # pylint: disable=protected-access
    assert "PREFECT_API_AUTH_STRING" not in settings["environment"]
