# Copyright: selfhosted.prefect contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The docker worker of selfhosted.prefect: prefect-docker's DockerWorker that checks
every flow-run container against the pool's run policy before it is created.

The policy is a JSON file the worker role writes from the inventory
(worker_run_policy) and mounts read-only into the worker container. It never comes
from the Prefect API: the pool's base job template is data that anyone holding the
tenant's credential may rewrite, so the check runs on the final container settings,
after templating, where the template and the job variables have both had their say.

A refused run gets no container; it ends Crashed with a message naming each refused
setting and the inventory variable that would allow it.

The flow-run container also gets no PREFECT_API_AUTH_STRING in its environment
(where `docker inspect` on its engine shows it): the worker mounts the pool's
profile file read-only instead (credential_mount in the policy) and points
PREFECT_PROFILES_PATH at it.

Run as the worker's command, in place of `prefect`:
    python run_policy_worker.py worker start --pool NAME --type docker ...
with SELFHOSTED_PREFECT_RUN_POLICY naming the policy file. Without a readable,
valid policy the worker does not start (fail closed).
"""

import json
import os
import posixpath
import sys

POLICY_ENV = "SELFHOSTED_PREFECT_RUN_POLICY"
VARIABLE = "worker_run_policy"

# What prefect-docker's _build_container_settings always passes to docker-py.
# Their values are checked below where they matter (privileged, network_mode,
# network, volumes); the others cannot widen what the container may do.
BUILT_IN_KEYS = frozenset((
    "image", "network", "network_mode", "command", "environment", "auto_remove",
    "labels", "extra_hosts", "name", "volumes", "mem_limit", "memswap_limit",
    "privileged",
))
# container_create_kwargs keys allowed without asking: they narrow the container,
# size it, or change what runs in it, never what it may reach on its engine's host.
HARMLESS_KEYS = frozenset((
    "entrypoint", "working_dir", "user", "hostname", "domainname", "stop_signal",
    "healthcheck", "init", "tty", "stdin_open", "detach", "read_only", "cap_drop",
    "cpu_period", "cpu_quota", "cpu_shares", "cpuset_cpus", "cpuset_mems", "nano_cpus",
    "mem_reservation", "mem_swappiness", "pids_limit", "platform",
))
# Keys whose values the policy lists one by one (anything else is a key-wide allow).
LISTED_KEYS = ("cap_add", "security_opt", "devices")
CREDENTIAL_ENV = ("PREFECT_API_AUTH_STRING", "PREFECT_API_KEY")


class RunPolicyViolation(Exception):
    """A flow run's container asks for more than its pool's run policy allows."""


def load_policy(path):
    """The policy file as a dict, or SystemExit with the reason (fail closed)."""
    if not path:
        raise SystemExit(f"{POLICY_ENV} is not set: this worker does not start without its run policy")
    try:
        with open(path, encoding="utf-8") as handle:
            policy = json.load(handle)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"cannot read the run policy {path}: {exc}") from exc
    if not isinstance(policy, dict) or not policy.get("pool"):
        raise SystemExit(f"the run policy {path} is not a policy of this collection (no pool)")
    return policy


def _show(value, limit=120):
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _volume_allowed(spec, policy):
    """A volume spec (docker-py's "source:target[:mode]" or an anonymous "target")."""
    spec = str(spec)
    if spec in policy.get("volume_specs", []):
        return True
    source, sep, _rest = spec.partition(":")
    if not sep:
        # An anonymous volume: a new empty volume of the engine, no host path.
        return True
    if source.startswith("/"):
        source = posixpath.normpath(source)
        for allowed in policy.get("volumes", []):
            allowed = posixpath.normpath(str(allowed))
            if allowed.startswith("/") and (source == allowed or source.startswith(allowed.rstrip("/") + "/")):
                return True
        return False
    # A named volume: only one the policy names.
    return source in policy.get("volumes", [])


def violations(settings, networks, policy):
    """Every setting of a container (docker-py create kwargs) and network list that the
    policy does not allow, as "key=value (how to allow it)" lines."""
    found = []
    allowed_keys = BUILT_IN_KEYS | HARMLESS_KEYS | set(LISTED_KEYS) | set(policy.get("create_kwargs", []))

    def refuse(key, value, how):
        found.append(f"{key}={_show(value)} ({how})")

    if settings.get("privileged") and not policy.get("privileged", False):
        refuse("privileged", settings["privileged"], f"{VARIABLE}.privileged: true")
    for key in LISTED_KEYS:
        value = settings.get(key)
        if not value or key in policy.get("create_kwargs", []):
            continue
        extra = [item for item in (value if isinstance(value, (list, tuple)) else [value])
                 if str(item) not in [str(a) for a in policy.get(key, [])]]
        if extra:
            refuse(key, extra, f"{VARIABLE}.{key}")
    mode = settings.get("network_mode")
    if mode not in policy.get("network_modes", [None]):
        refuse("network_mode", mode, f"{VARIABLE}.network_modes")
    wanted_networks = list(networks or [])
    if settings.get("network") and settings["network"] not in wanted_networks:
        wanted_networks.insert(0, settings["network"])
    other = [n for n in wanted_networks if n not in policy.get("networks", [])]
    if other:
        refuse("networks", other, f"{VARIABLE}.networks")
    volumes = settings.get("volumes") or []
    if isinstance(volumes, dict):
        volumes = [f"{src}:{opts.get('bind', '')}:{opts.get('mode', 'rw')}" for src, opts in volumes.items()]
    bad = [v for v in volumes if not _volume_allowed(v, policy)]
    if bad:
        refuse("volumes", bad, f"{VARIABLE}.volumes")
    for key in sorted(set(settings) - allowed_keys):
        if settings[key] in (None, [], {}, ""):
            continue
        refuse(key, settings[key], f"{VARIABLE}.create_kwargs: [{key}]")
    return found


def check(settings, networks, policy):
    """Raise RunPolicyViolation naming every refused setting."""
    found = violations(settings, networks, policy)
    if found:
        raise RunPolicyViolation(
            f"work pool {policy['pool']!r} refuses this flow run's container; its run policy "
            f"(from the inventory, not the Prefect API) does not allow: {'; '.join(found)}. "
            f"An administrator may allow a setting with {VARIABLE} in the inventory "
            "(prefect_worker_pools[].run_policy in site.yml); the pool's base job template cannot."
        )


def without_credential(settings, policy):
    """The settings with the API credential taken out of the environment and the pool's
    profile file mounted read-only in its place (when the policy names one)."""
    settings = dict(settings)
    env = dict(settings.get("environment") or {})
    for name in CREDENTIAL_ENV:
        env.pop(name, None)
    mount = policy.get("credential_mount") or {}
    if mount.get("source") and mount.get("target"):
        env["PREFECT_PROFILES_PATH"] = mount["target"]
        settings["volumes"] = list(settings.get("volumes") or []) + [f"{mount['source']}:{mount['target']}:ro"]
    elif "PREFECT_PROFILES_PATH" in env:
        # The worker's own path: a file the flow-run container does not have.
        del env["PREFECT_PROFILES_PATH"]
    settings["environment"] = env
    return settings


def worker_class(policy):
    """DockerWorker with the check, registered as the "docker" worker type."""
    # Imported here so the policy functions above can be used without Prefect.
    import warnings

    from prefect_docker.worker import DockerWorker  # pylint: disable=import-error

    with warnings.catch_warnings():
        # prefect warns that the type key "docker" is taken over: that is the point.
        warnings.simplefilter("ignore")

        class PolicyDockerWorker(DockerWorker):
            """prefect-docker's worker, with the pool's run policy checked."""

            type = "docker"
            run_policy = policy

            def _build_container_settings(self, docker_client, configuration):
                settings = super()._build_container_settings(docker_client, configuration)
                check(settings, configuration.networks, self.run_policy)
                return without_credential(settings, self.run_policy)

            def _create_container(self, docker_client, **kwargs):
                # Once more on what docker-py gets, whatever built it.
                check(kwargs, [kwargs.get("network")] if kwargs.get("network") else [],
                      dict(self.run_policy, volume_specs=self.run_policy.get("volume_specs", [])
                           + _credential_spec(self.run_policy)))
                return super()._create_container(docker_client, **kwargs)

    return PolicyDockerWorker


def _credential_spec(policy):
    mount = policy.get("credential_mount") or {}
    return [f"{mount['source']}:{mount['target']}:ro"] if mount.get("source") and mount.get("target") else []


def main(argv):
    """Load the policy, put the checking worker in place of prefect-docker's, run the CLI."""
    policy = load_policy(os.environ.get(POLICY_ENV, ""))
    cls = worker_class(policy)
    # pylint: disable=import-error
    from prefect.utilities.dispatch import lookup_type
    from prefect.workers.base import BaseWorker

    if lookup_type(BaseWorker, "docker") is not cls:
        raise SystemExit("the run-policy worker could not take the docker worker type")
    from prefect.cli import app

    sys.argv = ["prefect"] + list(argv)
    return app()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
