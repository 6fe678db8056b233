# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""What a process in a container could do to its host, measured without doing it.

Standard library only, one file: ``test_attacks.py`` sends it into a flow-run container
(inside a flow, see ``flow_source``) and into containers it starts on a sidecar's inner
engine (``python -c``). Nothing here writes to the host: writability is an open for
append closed without a write, a syscall is called with an invalid argument whose
error says whether the capability check passed (finit_module(-1) -> EBADF: capable,
EPERM/ENOSYS: not), reachability is a TCP connect and a TLS handshake.

``collect(spec)`` returns a dict (JSON-serialisable); spec keys:
  targets: [{"id", "host", "port", "tls"}], "host" may be "gateway" (default route);
  roots: extra directories that may hold another root file system (e.g. /hostroot);
  markers: paths relative to a root that exist only on the worker host.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import errno
import json
import os
import platform
import socket
import ssl
import stat
import sys

CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
]
FINIT_MODULE = {"x86_64": 313, "aarch64": 273}
DOCKER_SOCKET_NAMES = ("docker.sock", "containerd.sock", "dockershim.sock", "podman.sock", "crio.sock")
# Files whose write is a known route from a container to the host kernel.
KERNEL_ESCAPE_FILES = ["/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/sys/kernel/uevent_helper",
                       "/proc/sysrq-trigger"]


def _err(exc):
    return errno.errorcode.get(exc.errno, str(exc.errno)) if getattr(exc, "errno", None) else type(exc).__name__


def capabilities():
    """CapEff and CapBnd of this process, as hex and as names."""
    out = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            key, _sep, value = line.partition(":")
            if key in ("CapEff", "CapBnd", "CapPrm"):
                mask = int(value.strip(), 16)
                out[key] = {"hex": "0x%x" % mask,
                            "names": [n for i, n in enumerate(CAPABILITIES) if mask & (1 << i)]}
    return out


def writable(path):
    """'yes' when the file opens for append (closed at once, nothing written), else the errno name."""
    try:
        with open(path, "a", encoding="utf-8"):
            pass
        return "yes"
    except OSError as exc:
        return _err(exc)


def mounts():
    """/proc/self/mountinfo as [{mountpoint, root, fstype, source, options}]."""
    out = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                left, _sep, right = line.partition(" - ")
                fields, rfields = left.split(), right.split()
                if len(fields) < 6 or len(rfields) < 2:
                    continue
                out.append({"mountpoint": fields[4], "root": fields[3], "options": fields[5],
                            "fstype": rfields[0], "source": rfields[1]})
    except OSError:
        pass
    return out


def cgroup_findings(mount_list):
    """Every cgroup mount, and each release_agent or top-level cgroup.procs that opens for writing."""
    found = {"mounts": [], "release_agents": [], "writable": []}
    for mnt in mount_list:
        if not mnt["fstype"].startswith("cgroup"):
            continue
        found["mounts"].append("%s root=%s %s" % (mnt["mountpoint"], mnt["root"], mnt["options"].split(",")[0]))
        for name in ("release_agent", "cgroup.procs", "notify_on_release"):
            path = os.path.join(mnt["mountpoint"], name)
            if os.path.exists(path):
                result = writable(path)
                if name == "release_agent":
                    found["release_agents"].append({"path": path, "writable": result})
                if result == "yes":
                    found["writable"].append(path)
    # A bind mount of the host's cgroup tmpfs (cgroup v1) shows its hierarchies as submounts;
    # a bind of one hierarchy's directory does too. Look under every mount point as well.
    return found


def docker_sockets(roots):
    """Unix sockets of container engines under /run, /var/run, /tmp of each root, and whether they connect."""
    found = []
    seen = set()
    for root in roots:
        for base in ("run", "var/run", "tmp", "run/docker", "var/run/docker", "run/containerd"):
            directory = os.path.join(root, base)
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if not stat.S_ISSOCK(st.st_mode) or not any(n in name for n in DOCKER_SOCKET_NAMES):
                    continue
                if (st.st_dev, st.st_ino) in seen:
                    continue
                seen.add((st.st_dev, st.st_ino))
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(2)
                try:
                    sock.connect(path)
                    result = "connected"
                except OSError as exc:
                    result = _err(exc)
                finally:
                    sock.close()
                found.append({"path": path, "connect": result})
    return found


def block_devices(roots):
    """Block device nodes under each root's /dev, and whether they open (read-only, closed unread)."""
    found = []
    for root in roots:
        directory = os.path.join(root, "dev")
        try:
            names = os.listdir(directory)
        except OSError:
            continue
        for name in sorted(names):
            path = os.path.join(directory, name)
            try:
                if not stat.S_ISBLK(os.lstat(path).st_mode):
                    continue
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
                os.close(fd)
                result = "opened"
            except OSError as exc:
                result = _err(exc)
            found.append({"path": path, "open": result})
    return found


def disk_number():
    """(major, minor) of the machine's first disk as sysfs lists it, (8, 0) (sda) when it lists none."""
    try:
        for name in sorted(os.listdir("/sys/block")):
            if not name.startswith(("loop", "ram", "zram")):
                with open("/sys/block/%s/dev" % name, encoding="ascii") as handle:
                    major, minor = handle.read().strip().split(":")
                return int(major), int(minor)
    except (OSError, ValueError):
        pass
    return 8, 0


def syscalls():
    """finit_module(-1), mount of an unknown file system type, mknod of the disk's node (then its open, unread)."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {}
    number = FINIT_MODULE.get(platform.machine())
    if number is None:
        out["finit_module"] = "unknown architecture %s" % platform.machine()
    else:
        rc = libc.syscall(number, -1, b"", 0)
        out["finit_module"] = "ok" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    rc = libc.mount(b"none", b"/tmp", b"selfhosted-probe-no-such-fs", 0, None)
    out["mount"] = "ok" if rc == 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    node = "/tmp/selfhosted-probe-%d-disk" % os.getpid()
    out["mknod_device"] = disk_number()
    try:
        os.mknod(node, 0o600 | stat.S_IFBLK, os.makedev(*out["mknod_device"]))
        out["mknod"] = "ok"
        try:
            fd = os.open(node, os.O_RDONLY | os.O_NONBLOCK)
            os.close(fd)
            out["mknod_open"] = "opened"
        except OSError as exc:
            out["mknod_open"] = _err(exc)
    except OSError as exc:
        out["mknod"] = _err(exc)
    finally:
        if os.path.lexists(node):
            os.unlink(node)
    return out


def gateway():
    """The default route's gateway (the Docker network's host side), from /proc/net/route."""
    try:
        with open("/proc/net/route", encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                fields = line.split()
                if len(fields) > 2 and fields[1] == "00000000":
                    return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    except (OSError, ValueError):
        pass
    return None


def reach(target, gw):
    """TCP connect; with tls, a handshake without a client certificate and one request."""
    host = gw if target["host"] == "gateway" else target["host"]
    out = dict(target, address=host)
    if not host:
        out["tcp"] = "no gateway"
        return out
    try:
        sock = socket.create_connection((host, int(target["port"])), timeout=2)
    except OSError as exc:
        out["tcp"] = "timeout" if isinstance(exc, socket.timeout) else _err(exc)
        return out
    out["tcp"] = "open"
    if target.get("tls"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(sock, server_hostname=None) as tls:
                tls.settimeout(3)
                # TLS 1.3 servers refuse a missing client certificate after the handshake:
                # one request shows it.
                tls.sendall(b"GET /_ping HTTP/1.0\r\n\r\n")
                answer = tls.recv(64)
                out["tls"] = "accepted: %r" % answer[:20] if answer else "closed"
        except (ssl.SSLError, OSError) as exc:
            out["tls"] = "refused: %s" % (getattr(exc, "reason", None) or _err(exc))
    else:
        sock.close()
    return out


def collect(spec):
    """Everything above, as one dict."""
    roots = ["/"] + [r for r in spec.get("roots", []) if os.path.isdir(r)]
    mount_list = mounts()
    gw = gateway()
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        reached = list(pool.map(lambda t: reach(t, gw), spec.get("targets", [])))
    env_names = sorted(os.environ)
    profiles = os.environ.get("PREFECT_PROFILES_PATH")
    profile_has_auth = None
    if profiles:
        try:
            with open(profiles, encoding="utf-8") as handle:
                profile_has_auth = "PREFECT_API_AUTH_STRING" in handle.read()
        except OSError as exc:
            profile_has_auth = _err(exc)
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "uid": os.getuid(),
        "capabilities": capabilities(),
        "cgroups": cgroup_findings(mount_list),
        "mounts": sorted({m["mountpoint"] for m in mount_list}),
        "roots": roots,
        "host_markers": [os.path.join(r, m) for r in roots for m in spec.get("markers", [])
                         if os.path.lexists(os.path.join(r, m.lstrip("/")))],
        "kernel_escape_files": {p: writable(p) for p in KERNEL_ESCAPE_FILES if os.path.exists(p)},
        "docker_sockets": docker_sockets(roots),
        "docker_env": [n for n in env_names if n.startswith("DOCKER_")],
        "block_devices": block_devices(roots),
        "syscalls": syscalls(),
        # Names only, never values.
        "auth_string_in_env": "PREFECT_API_AUTH_STRING" in os.environ,
        "secret_like_env": [n for n in env_names if any(w in n.upper() for w in ("AUTH", "PASSWORD", "SECRET", "TOKEN"))],
        "profiles_path": profiles,
        "profile_has_auth_string": profile_has_auth,
        "gateway": gw,
        "reach": reached,
    }


def flow_source(spec):
    """This module plus a flow that logs collect(spec) as one JSON line (prefix PROBE_PREFIX)."""
    with open(os.path.abspath(__file__.replace(".pyc", ".py")), encoding="utf-8") as handle:
        own = handle.read()
    return own + FLOW_TEMPLATE % json.dumps(json.dumps(spec))


PROBE_PREFIX = "ATTACK-PROBE "
FLOW_TEMPLATE = '''

from prefect import flow, get_run_logger  # noqa: E402 (only in the flow-run container)

SPEC = json.loads(%s)


@flow(name="attack-probe")
def probe():
    """Log what this flow-run container can do, as one JSON line."""
    findings = collect(SPEC)
    try:
        from prefect.settings import get_current_settings
        findings["auth_string_in_settings"] = bool(get_current_settings().api.auth_string)
    except Exception as exc:  # pylint: disable=broad-except
        findings["auth_string_in_settings"] = repr(exc)
    get_run_logger().info("ATTACK-PROBE " + json.dumps(findings, sort_keys=True))
'''


if __name__ == "__main__":
    print(PROBE_PREFIX + json.dumps(collect(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}), sort_keys=True))
