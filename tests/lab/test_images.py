# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Each lab image honours the interface of the official image it stands in for.

The images come from ``lab/build`` (run it first; CI's ``lab`` stage does). Every
container, volume, network and image these tests create is named
``labtest-<random>-...`` and removed when the session ends, pass or fail. They
talk only to ports published on 127.0.0.1 and to containers of their own on
networks of their own (with an explicit subnet).

The tests are skipped only when there is no ``docker`` command at all; an engine
that does not answer or a missing lab image is a failure.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import http.client
import io
import ipaddress
import json
import os
import random
import re
import secrets
import shutil
import socket
import ssl
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker command on this machine")

ROOT = Path(__file__).resolve().parents[2]
IMAGES_DIR = ROOT / "lab" / "images"
PREFIX = f"labtest-{secrets.token_hex(3)}"

# Everything a nested dockerd needs except CAP_SYS_RESOURCE, which the lab's
# sandbox withholds (so --privileged fails there); see docs and LAB notes.
DIND_CAPS = (
    "CHOWN DAC_OVERRIDE DAC_READ_SEARCH FOWNER FSETID KILL SETGID SETUID SETPCAP LINUX_IMMUTABLE "
    "NET_BIND_SERVICE NET_BROADCAST NET_ADMIN NET_RAW IPC_LOCK IPC_OWNER SYS_MODULE SYS_RAWIO "
    "SYS_CHROOT SYS_PTRACE SYS_PACCT SYS_ADMIN SYS_BOOT SYS_NICE SYS_TIME SYS_TTY_CONFIG MKNOD LEASE "
    "AUDIT_WRITE AUDIT_CONTROL SETFCAP MAC_OVERRIDE MAC_ADMIN SYSLOG WAKE_ALARM BLOCK_SUSPEND AUDIT_READ"
).split()


def _tags(name):
    lines = (IMAGES_DIR / name / "TAGS").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


BASE = _tags("base")[0]
PREFECT = _tags("prefect")[0]
POSTGRES = _tags("postgres")[0]
POSTGRES_17 = _tags("postgres-17")[0]
REGISTRY = _tags("registry")[0]
DIND = _tags("dind")[0]
SEAWEEDFS = _tags("seaweedfs")[0]
HAPROXY = _tags("haproxy")[0]
REDIS = _tags("redis")[0]


# --------------------------------------------------------------------------- helpers


def docker(*args, check=True, input=None, timeout=300, env=None, raw=False):
    """Run the docker CLI. stdout/stderr are text unless raw (then stdout is bytes)."""
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run(["docker", *args], input=input, capture_output=True, timeout=timeout, env=env, check=False)
    proc.stderr = proc.stderr.decode(errors="replace")
    if not raw:
        proc.stdout = proc.stdout.decode(errors="replace")
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def wait_for(what, probe, timeout=90, interval=0.5, logs_of=None):
    """Call probe() until it returns something truthy; fail with the container's logs."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - any failure means "not yet"
            last = exc
        time.sleep(interval)
    logs = ""
    if logs_of:
        logs = "\n--- logs of %s ---\n%s" % (logs_of, container_logs(logs_of))
    pytest.fail(f"timed out after {timeout} s waiting for {what} (last error: {last!r}){logs}")


def container_logs(name, tail=60):
    proc = docker("logs", "--tail", str(tail), name, check=False)
    return proc.stdout + proc.stderr


def host_port(name, port):
    """The 127.0.0.1 port docker published for the container's PORT/tcp."""
    out = docker("port", name, f"{port}/tcp").stdout.split()
    for entry in out:
        host, _sep, p = entry.rpartition(":")
        if host == "127.0.0.1":
            return int(p)
    raise AssertionError(f"{name}: {port}/tcp is not published on 127.0.0.1 ({out})")


def container_ip(name, network):
    fmt = "{{ (index .NetworkSettings.Networks %s).IPAddress }}" % json.dumps(network)
    return docker("inspect", "-f", fmt, name).stdout.strip()


def tar_of(files):
    """A tar stream for `docker cp - C:/`: {path in container: bytes | (bytes, mode)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        dirs = set()
        for path in files:
            parts = Path(path.lstrip("/")).parts[:-1]
            for i in range(1, len(parts) + 1):
                dirs.add("/".join(parts[:i]))
        for d in sorted(dirs):
            info = tarfile.TarInfo(d)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            info.mtime = int(time.time())
            tar.addfile(info)
        for path, content in files.items():
            data, mode = content if isinstance(content, tuple) else (content, 0o644)
            if isinstance(data, str):
                data = data.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            info.mode = mode
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def http_get(url, headers=None, context=None, timeout=5, method="GET", data=None):
    """(status, body) of an HTTP request; HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, headers=headers or {}, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            return resp.status, resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def basic_auth(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Lab:
    """Creates containers, volumes, networks and images under PREFIX; removes them all."""

    def __init__(self):
        self.containers, self.volumes, self.networks, self.images = [], [], [], []
        self.early = {}  # containers started ahead of the tests that use them

    def name(self, what):
        return f"{PREFIX}-{what}-{secrets.token_hex(2)}"

    def volume(self, what):
        name = self.name(what)
        docker("volume", "create", name)
        self.volumes.append(name)
        return name

    def network(self, what):
        """A bridge network with an explicit, randomly chosen 172.31.x.0/24 subnet."""
        name = self.name(what)
        candidates = random.sample(range(10, 250), 40)
        for third in candidates:
            subnet = f"172.31.{third}.0/24"
            proc = docker("network", "create", "--subnet", subnet, name, check=False)
            if proc.returncode == 0:
                self.networks.append(name)
                return name, ipaddress.ip_network(subnet)
            if "overlap" not in proc.stderr.lower():
                raise AssertionError(f"docker network create failed: {proc.stderr}")
        raise AssertionError("no free 172.31.x.0/24 subnet for a test network")

    def run(self, what, image, *args, files=None, options=(), start=True):
        """docker create + optional files copied in + docker start. Returns the name."""
        name = self.name(what)
        docker("create", "--name", name, *options, image, *args)
        self.containers.append(name)
        if files:
            docker("cp", "-", f"{name}:/", input=tar_of(files))
        if start:
            docker("start", name)
        return name

    def oneshot(self, image, *args, options=(), input=None, check=True, timeout=300):
        """docker run --rm, output returned (a short-lived client container)."""
        name = self.name("client")
        self.containers.append(name)  # in case it outlives a timeout
        return docker("run", "--rm", "--name", name, *options, image, *args, input=input, check=check, timeout=timeout)

    def tag(self, source, target):
        docker("tag", source, target)
        self.images.append(target)
        return target

    def remove(self, name):
        docker("rm", "-f", "-v", name, check=False)

    def cleanup(self):
        # one call per kind; names already gone only make docker complain
        if self.containers:
            docker("rm", "-f", "-v", *self.containers, check=False)
        if self.networks:
            docker("network", "rm", *self.networks, check=False)
        if self.volumes:
            docker("volume", "rm", "-f", *self.volumes, check=False)
        if self.images:
            docker("image", "rm", "-f", *self.images, check=False)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def lab():
    proc = docker("info", "--format", "{{json .ServerVersion}}", check=False)
    if proc.returncode != 0:
        pytest.fail(f"the Docker engine does not answer (run scripts/ensure-docker): {proc.stderr.strip()}")
    missing = [t for t in (BASE, PREFECT, POSTGRES, REGISTRY, DIND, SEAWEEDFS, HAPROXY, REDIS)
               if docker("image", "inspect", t, check=False).returncode != 0]
    if missing:
        pytest.fail(f"lab images missing (run lab/build): {', '.join(missing)}")
    lab = Lab()
    yield lab
    lab.cleanup()


@pytest.fixture(scope="session")
def tiny_image(lab, tmp_path_factory):
    """A 2 MB image (dash and the C library, from the base image) that prints a line."""
    ldd = docker("run", "--rm", BASE, "ldd", "/usr/bin/dash").stdout
    libs = re.findall(r"(/\S+) \(0x", ldd)
    assert libs, ldd
    ctx = tmp_path_factory.mktemp("tiny")
    lines = ["FROM scratch", f"COPY --from={BASE} /usr/bin/dash /bin/sh"]
    lines += [f"COPY --from={BASE} {lib} {lib}" for lib in libs]
    lines.append('CMD ["/bin/sh", "-c", "echo hello from tiny"]')
    (ctx / "Dockerfile").write_text("\n".join(lines) + "\n")
    tag = f"{PREFIX}-tiny:1"
    docker("build", "-q", "-t", tag, str(ctx), env={**os.environ, "DOCKER_BUILDKIT": "0"})
    lab.images.append(tag)
    assert docker("run", "--rm", tag).stdout.strip() == "hello from tiny"
    return tag


@pytest.fixture(scope="session", autouse=True)
def _early_start(request):
    """Start the slow starters (nested engine with key generation, Prefect server)
    when the session begins, so they boot while the other tests run."""
    wanted = {f for item in request.session.items for f in getattr(item, "fixturenames", ())}
    starters = {"dind": _start_dind_tls, "prefect_server": _start_prefect_server}
    if not wanted & set(starters):
        return
    lab = request.getfixturevalue("lab")
    for fixture, start in starters.items():
        if fixture in wanted:
            lab.early[fixture] = start(lab)


@pytest.fixture(scope="session")
def docker_sdk():
    docker_mod = pytest.importorskip("docker")
    client = docker_mod.from_env()
    yield client
    client.close()


# --------------------------------------------------------------------------- postgres


PG_INIT_SQL = "CREATE TABLE marker (note text);\nINSERT INTO marker VALUES ('from-sql');\n"
# not executable: sourced by the entrypoint, as upstream does
PG_INIT_SH = """\
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \\
  -c "INSERT INTO marker VALUES ('from-sh:$POSTGRES_DB')"
"""


@pytest.fixture(scope="module")
def pg(lab):
    net, _subnet = lab.network("pg")
    vol = lab.volume("pgdata")
    env = {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret-" + secrets.token_hex(4), "POSTGRES_DB": "appdb"}
    opts = ["--network", net, "-p", "127.0.0.1::5432", "-v", f"{vol}:/var/lib/postgresql/data"]
    for k, v in env.items():
        opts += ["-e", f"{k}={v}"]
    files = {"/docker-entrypoint-initdb.d/10-schema.sql": PG_INIT_SQL, "/docker-entrypoint-initdb.d/20-note.sh": PG_INIT_SH}
    name = lab.run("pg", POSTGRES, files=files, options=opts)
    _wait_pg_ready(name, env)
    return {"name": name, "net": net, "vol": vol, "env": env, "opts": opts}


def _wait_pg_ready(name, env):
    # over TCP: the entrypoint's temporary server listens on the Unix socket only
    wait_for(
        "postgres to accept TCP connections",
        lambda: docker("exec", name, "pg_isready", "-h", "127.0.0.1", "-U", env["POSTGRES_USER"],
                       "-d", env["POSTGRES_DB"], check=False).returncode == 0,
        logs_of=name,
    )


def _psql_client(lab, pg, sql, password, host=None):
    return lab.oneshot(
        POSTGRES, "psql", "-h", host or pg["name"], "-U", pg["env"]["POSTGRES_USER"], "-d", pg["env"]["POSTGRES_DB"],
        "-v", "ON_ERROR_STOP=1", "-tAc", sql,
        options=["--network", pg["net"], "-e", f"PGPASSWORD={password}"], check=False,
    )


def _asyncpg_query(port, user, password, database, sql):
    asyncpg = pytest.importorskip("asyncpg")

    async def go():
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user=user, password=password, database=database,
                                     timeout=10, ssl=False)
        try:
            return await conn.fetchval(sql)
        finally:
            await conn.close()

    return asyncio.run(go())


def test_postgres_env_creates_user_and_database_and_runs_init_scripts(lab, pg):
    proc = _psql_client(lab, pg, "SELECT current_user || '@' || current_database()", pg["env"]["POSTGRES_PASSWORD"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "app@appdb"
    proc = _psql_client(lab, pg, "SELECT string_agg(note, ',' ORDER BY note) FROM marker", pg["env"]["POSTGRES_PASSWORD"])
    assert proc.stdout.strip() == "from-sh:appdb,from-sql", proc.stderr
    # the superuser is POSTGRES_USER: no "postgres" role was made
    proc = _psql_client(lab, pg, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user", pg["env"]["POSTGRES_PASSWORD"])
    assert proc.stdout.strip() == "t"


def test_postgres_password_auth_over_the_network(lab, pg):
    proc = _psql_client(lab, pg, "SELECT 1", "wrong-password")
    assert proc.returncode != 0
    assert "password authentication failed" in proc.stderr
    # the published port, from the host: SCRAM with the right password only
    port = host_port(pg["name"], 5432)
    env = pg["env"]
    assert _asyncpg_query(port, env["POSTGRES_USER"], env["POSTGRES_PASSWORD"], env["POSTGRES_DB"], "SELECT 42") == 42
    asyncpg = pytest.importorskip("asyncpg")
    with pytest.raises(asyncpg.exceptions.InvalidPasswordError):
        _asyncpg_query(port, env["POSTGRES_USER"], "wrong-password", env["POSTGRES_DB"], "SELECT 1")
    hba = docker("exec", pg["name"], "sh", "-c", 'grep -v "^#" "$PGDATA/pg_hba.conf" | sed "/^$/d" | tail -n1').stdout
    assert hba.split() == ["host", "all", "all", "all", "scram-sha-256"]


def test_postgres_pg_trgm_and_pg_isready(lab, pg):
    proc = _psql_client(lab, pg, "CREATE EXTENSION IF NOT EXISTS pg_trgm; SELECT similarity('prefect', 'prefect')",
                        pg["env"]["POSTGRES_PASSWORD"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "1"
    out = docker("exec", pg["name"], "pg_isready", "-U", "app", "-d", "appdb").stdout
    assert "accepting connections" in out
    assert docker("exec", pg["name"], "sh", "-c", "command -v pg_isready psql").returncode == 0
    # PID 1 is the server itself, running as postgres (uid 999 as upstream)
    assert docker("exec", pg["name"], "cat", "/proc/1/comm").stdout.strip() == "postgres"
    assert docker("exec", pg["name"], "id", "-u", "postgres").stdout.strip() == "999"
    status = docker("exec", pg["name"], "sh", "-c", "grep -E '^Uid:' /proc/1/status").stdout.split()
    assert status[1] == "999"


def test_postgres_data_survives_recreation_and_stops_cleanly(lab, pg):
    pw = pg["env"]["POSTGRES_PASSWORD"]
    proc = _psql_client(lab, pg, "CREATE TABLE keep (v int); INSERT INTO keep VALUES (7); SELECT 1", pw)
    assert proc.returncode == 0, proc.stderr
    docker("stop", "-t", "30", pg["name"])
    state = json.loads(docker("inspect", "-f", "{{json .State}}", pg["name"]).stdout)
    assert state["ExitCode"] == 0, container_logs(pg["name"])
    assert "database system is shut down" in container_logs(pg["name"], tail=10)
    lab.remove(pg["name"])

    # a new container on the same volume, with another password: no re-initialisation
    opts = [o.replace(pw, "ignored-now") for o in pg["opts"]]
    name = lab.run("pg2", POSTGRES, options=opts)
    pg["name"] = name
    _wait_pg_ready(name, pg["env"])
    assert "Skipping initialization" in container_logs(name)
    proc = _psql_client(lab, pg, "SELECT v FROM keep", pw)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "7"

    # SIGTERM (PostgreSQL's "smart" shutdown) stops it cleanly too
    docker("kill", "--signal", "TERM", name)
    wait_for("postgres to stop on SIGTERM",
             lambda: docker("inspect", "-f", "{{.State.Running}}", name).stdout.strip() == "false", timeout=30)
    assert docker("inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"


def test_postgres_refuses_to_initialise_without_password(lab):
    proc = lab.oneshot(POSTGRES, check=False)
    assert proc.returncode == 1
    assert "superuser password is not specified" in proc.stderr
    # POSTGRES_HOST_AUTH_METHOD=trust is the documented way around it
    name = lab.run("pg-trust", POSTGRES, options=["-e", "POSTGRES_HOST_AUTH_METHOD=trust"])
    wait_for("postgres (trust) to pass the password check",
             lambda: "files belonging to this database system" in container_logs(name),
             logs_of=name, timeout=60)
    assert 'POSTGRES_HOST_AUTH_METHOD has been set to "trust"' in container_logs(name)
    lab.remove(name)


def test_postgres_17_initialises_and_its_pg_dump_reads_a_15_server(lab):
    """postgres:17 (Debian trixie) is the image of the server role's major-upgrade test."""
    assert docker("image", "inspect", POSTGRES_17, check=False).returncode == 0, f"{POSTGRES_17} is not built"
    net, _subnet = lab.network("pg17")
    env = {"POSTGRES_USER": "app", "POSTGRES_PASSWORD": "s3cret-" + secrets.token_hex(4), "POSTGRES_DB": "appdb"}
    opts = ["--network", net]
    for k, v in env.items():
        opts += ["-e", f"{k}={v}"]
    old = lab.run("pg15", POSTGRES, options=opts, files={"/docker-entrypoint-initdb.d/10-schema.sql": PG_INIT_SQL})
    new = lab.run("pg17", POSTGRES_17, options=opts + ["-v", f"{lab.volume('pg17data')}:/var/lib/postgresql/data"])
    _wait_pg_ready(old, env)
    _wait_pg_ready(new, env)
    version = docker("exec", new, "psql", "-U", "app", "-d", "appdb", "-tAc", "SHOW server_version_num").stdout
    assert version.strip().startswith("17"), version
    assert docker("exec", new, "cat", "/var/lib/postgresql/data/PG_VERSION").stdout.strip() == "17"
    # the 17 client reads the 15 server over the network
    proc = docker("exec", "-e", "PGPASSWORD=" + env["POSTGRES_PASSWORD"], new, "pg_dump", "-h", old,
                  "-U", "app", "-d", "appdb", check=False)
    assert proc.returncode == 0, proc.stderr
    assert "CREATE TABLE public.marker" in proc.stdout and "from-sql" in proc.stdout
    lab.remove(new)
    lab.remove(old)


# --------------------------------------------------------------------------- registry


def _wait_registry(url, context=None, name=None):
    wait_for(f"registry at {url}", lambda: http_get(url, context=context)[0] in (200, 401), logs_of=name)


def _htpasswd_line(user, password):
    bcrypt = pytest.importorskip("bcrypt")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:$2y${hashed[4:]}\n"


def test_registry_default_config_push_and_pull(lab, tiny_image):
    vol = lab.volume("registry")
    name = lab.run("registry", REGISTRY, options=["-p", "127.0.0.1::5000", "-v", f"{vol}:/var/lib/registry"])
    port = host_port(name, 5000)
    _wait_registry(f"http://127.0.0.1:{port}/v2/", name=name)
    ref = lab.tag(tiny_image, f"127.0.0.1:{port}/{PREFIX}/tiny:1")
    docker("push", ref)
    status, body = http_get(f"http://127.0.0.1:{port}/v2/_catalog")
    assert status == 200 and f"{PREFIX}/tiny" in body
    docker("image", "rm", ref)
    docker("pull", ref)
    assert docker("run", "--rm", ref).stdout.strip() == "hello from tiny"
    # the blobs are in the volume, where the official image keeps them
    listing = docker("exec", name, "ls", f"/var/lib/registry/docker/registry/v2/repositories/{PREFIX}").stdout
    assert "tiny" in listing
    # the official entrypoint's shortcuts
    assert "2.8" in lab.oneshot(REGISTRY, "--version").stdout
    proc = lab.oneshot(REGISTRY, "garbage-collect", "--dry-run", "/etc/docker/registry/config.yml",
                       options=["-v", f"{vol}:/var/lib/registry"], check=False)
    assert proc.returncode == 0, proc.stderr


def test_registry_htpasswd_auth_via_env_refuses_bad_password(lab, docker_sdk, tiny_image):
    docker_errors = pytest.importorskip("docker.errors")
    user, password = "pusher", "pw-" + secrets.token_hex(6)
    env = {
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm",
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
    }
    opts = ["-p", "127.0.0.1::5000"] + [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    name = lab.run("registry-auth", REGISTRY, files={"/auth/htpasswd": _htpasswd_line(user, password)}, options=opts)
    port = host_port(name, 5000)
    registry = f"127.0.0.1:{port}"
    _wait_registry(f"http://{registry}/v2/", name=name)

    assert http_get(f"http://{registry}/v2/_catalog")[0] == 401
    assert http_get(f"http://{registry}/v2/_catalog", headers=basic_auth(user, "wrong"))[0] == 401
    with pytest.raises(docker_errors.APIError) as err:
        docker_sdk.login(username=user, password="wrong-" + password, registry=registry, reauth=True)
    assert "401" in str(err.value) or "unauthorized" in str(err.value).lower()
    docker_sdk.login(username=user, password=password, registry=registry, reauth=True)

    ref = lab.tag(tiny_image, f"{registry}/{PREFIX}/auth-tiny:1")
    auth = {"username": user, "password": password}
    events = list(docker_sdk.images.push(f"{registry}/{PREFIX}/auth-tiny", tag="1", auth_config=auth,
                                         stream=True, decode=True))
    assert not [e for e in events if "error" in e], events
    status, body = http_get(f"http://{registry}/v2/_catalog", headers=basic_auth(user, password))
    assert status == 200 and f"{PREFIX}/auth-tiny" in body
    # anonymous push is refused
    docker("image", "rm", ref)
    lab.tag(tiny_image, ref)
    bad = list(docker_sdk.images.push(f"{registry}/{PREFIX}/auth-tiny", tag="1",
                                      auth_config={"username": user, "password": "wrong"}, stream=True, decode=True))
    assert [e for e in bad if "error" in e], bad


def _make_tls_pair(tmp_path):
    """A CA and a server certificate for 127.0.0.1/localhost (PEM bytes)."""
    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "labtest CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return {
        "ca": ca.public_bytes(pem),
        "cert": cert.public_bytes(pem),
        "key": key.private_bytes(pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()),
    }


def test_registry_tls_and_htpasswd_from_env(lab, tmp_path):
    tls = _make_tls_pair(tmp_path)
    user, password = "reader", "pw-" + secrets.token_hex(6)
    env = {
        "REGISTRY_HTTP_TLS_CERTIFICATE": "/certs/registry.crt",
        "REGISTRY_HTTP_TLS_KEY": "/certs/registry.key",
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": "Registry Realm",
        "REGISTRY_AUTH_HTPASSWD_PATH": "/auth/htpasswd",
    }
    files = {"/certs/registry.crt": tls["cert"], "/certs/registry.key": (tls["key"], 0o600),
             "/auth/htpasswd": _htpasswd_line(user, password)}
    opts = ["-p", "127.0.0.1::5000"] + [x for k, v in env.items() for x in ("-e", f"{k}={v}")]
    name = lab.run("registry-tls", REGISTRY, files=files, options=opts)
    port = host_port(name, 5000)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls["ca"])
    ctx = ssl.create_default_context(cafile=str(ca_file))
    url = f"https://127.0.0.1:{port}/v2/"
    _wait_registry(url, context=ctx, name=name)
    assert http_get(url, context=ctx)[0] == 401
    assert http_get(url, headers=basic_auth(user, "wrong"), context=ctx)[0] == 401
    assert http_get(url, headers=basic_auth(user, password), context=ctx)[0] == 200
    # plain HTTP is not served any more (Go answers 400 "HTTP request to an HTTPS server")
    assert http_get(f"http://127.0.0.1:{port}/v2/")[0] == 400


# --------------------------------------------------------------------------- dind


def _dind_options(net, data_vol, extra=()):
    opts = ["--network", net, "--network-alias", "docker"]
    opts += [x for cap in DIND_CAPS for x in ("--cap-add", cap)]
    opts += ["--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined", "--tmpfs", "/run",
             "-v", f"{data_vol}:/var/lib/docker"]
    if docker("info", "--format", "{{.CgroupVersion}}").stdout.strip() == "1":
        opts += ["-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw"]
    return opts + list(extra)


def _start_dind_tls(lab):
    net, _subnet = lab.network("dind")
    data = lab.volume("dind-data")
    certs = lab.volume("dind-certs")
    opts = _dind_options(net, data, ["-v", f"{certs}:/certs", "-p", "127.0.0.1::2376",
                                     "-e", "DOCKER_TLS_SAN=DNS:engine.labtest.invalid"])
    name = lab.run("dind", DIND, options=opts)
    return {"name": name, "net": net, "certs": certs}


@pytest.fixture(scope="session")
def dind(lab):
    info = lab.early.get("dind") or _start_dind_tls(lab)
    name = info["name"]
    wait_for("the nested engine", lambda: docker("exec", name, "docker", "version", check=False).returncode == 0,
             timeout=180, logs_of=name)
    return {**info, "ip": container_ip(name, info["net"])}


def _dind_client(lab, dind, *args, env=(), input=None, check=True):
    opts = ["-i", "--network", dind["net"], "-v", f"{dind['certs']}:/certs:ro"]
    opts += [x for e in env for x in ("-e", e)]
    return lab.oneshot(DIND, *args, options=opts, input=input, check=check)


def test_dind_generates_certs_and_serves_tls(lab, dind):
    listing = docker("exec", dind["name"], "sh", "-c", "cd /certs && ls ca client server").stdout.split()
    for f in ("cert.pem", "key.pem", "ca.pem"):
        assert f in listing
    san = docker("exec", dind["name"], "openssl", "x509", "-in", "/certs/server/cert.pem", "-noout",
                 "-ext", "subjectAltName").stdout
    for entry in ("DNS:docker", "DNS:localhost", "IP Address:127.0.0.1", f"IP Address:{dind['ip']}",
                  "DNS:engine.labtest.invalid"):
        assert entry in san
    args = json.loads(docker("inspect", "-f", "{{json .Args}}", dind["name"]).stdout)
    assert args == []
    cmdline = docker("exec", dind["name"], "sh", "-c", "tr '\\0' ' ' </proc/$(pidof dockerd)/cmdline").stdout
    assert "--tlsverify" in cmdline and "tcp://0.0.0.0:2376" in cmdline

    # a client container with the client certificates: by the alias "docker" (the
    # entrypoint's default DOCKER_HOST) and by IP address
    out = _dind_client(lab, dind, "docker", "version", "--format", "{{.Server.Version}}").stdout
    assert out.strip().startswith("20.10")
    out = _dind_client(lab, dind, "docker", "info", "--format", "{{.Driver}}",
                       env=[f"DOCKER_HOST=tcp://{dind['ip']}:2376"]).stdout
    assert out.strip() == "overlay2"
    # without TLS the engine does not talk
    proc = _dind_client(lab, dind, "docker", "-H", "tcp://docker:2376", "version", env=["DOCKER_TLS_CERTDIR="],
                        check=False)
    assert proc.returncode != 0


def test_dind_client_certs_work_from_the_host(lab, dind, tmp_path, monkeypatch):
    docker_mod = pytest.importorskip("docker")
    # requests prefers these over the CA given to the session (requests issue 3829)
    for var in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    # `docker cp C:DIR -` writes a tar stream
    raw = docker("cp", f"{dind['name']}:/certs/client", "-", raw=True).stdout
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        tar.extractall(tmp_path)  # noqa: S202 - our own container's files
    client_dir = tmp_path / "client"
    port = host_port(dind["name"], 2376)
    tls = docker_mod.tls.TLSConfig(client_cert=(str(client_dir / "cert.pem"), str(client_dir / "key.pem")),
                                   ca_cert=str(client_dir / "ca.pem"), verify=True)
    client = docker_mod.DockerClient(base_url=f"https://127.0.0.1:{port}", tls=tls, version="auto", timeout=30)
    try:
        assert client.version()["Version"].startswith("20.10")
    finally:
        client.close()
    # a TLS client without a client certificate is turned away
    ctx = ssl.create_default_context(cafile=str(client_dir / "ca.pem"))
    with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
        status, _body = http_get(f"https://127.0.0.1:{port}/version", context=ctx)
        raise ConnectionError(f"answered {status} without a client certificate")


def test_dind_loads_an_image_and_runs_a_container(lab, dind, tiny_image):
    saved = docker("save", tiny_image, raw=True).stdout
    proc = _dind_client(lab, dind, "docker", "load", input=saved)
    assert tiny_image in proc.stdout
    out = _dind_client(lab, dind, "docker", "run", "--rm", tiny_image).stdout
    assert out.strip() == "hello from tiny"
    # a container on the nested engine's own bridge network (iptables/NAT at work)
    out = _dind_client(lab, dind, "docker", "run", "--rm", "--network", "bridge", tiny_image,
                       "/bin/sh", "-c", "echo networked").stdout
    assert out.strip() == "networked"


def test_dind_plain_tcp_when_tls_is_off_and_passes_extra_args(lab):
    net, _subnet = lab.network("dind-plain")
    data = lab.volume("dind-plain-data")
    opts = _dind_options(net, data, ["-e", "DOCKER_TLS_CERTDIR="])
    name = lab.run("dind-plain", DIND, "--label", "labtest=extra-arg", options=opts)
    wait_for("the nested engine (plain tcp)",
             lambda: docker("exec", name, "docker", "version", check=False).returncode == 0, timeout=120, logs_of=name)
    out = lab.oneshot(DIND, "docker", "info", "--format", "{{json .Labels}}",
                      options=["--network", net, "-e", "DOCKER_TLS_CERTDIR="]).stdout
    assert "labtest=extra-arg" in out
    assert docker("exec", name, "test", "-e", "/certs/server/cert.pem", check=False).returncode != 0
    lab.remove(name)


# --------------------------------------------------------------------------- seaweedfs


def test_seaweedfs_s3_with_configured_identities(lab):
    boto3 = pytest.importorskip("boto3")
    botocore_config = pytest.importorskip("botocore.config")
    botocore_exceptions = pytest.importorskip("botocore.exceptions")
    access, secret = "labtest" + secrets.token_hex(4), secrets.token_hex(16)
    s3_json = json.dumps({"identities": [{
        "name": "admin",
        "credentials": [{"accessKey": access, "secretKey": secret}],
        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
    }]})
    vol = lab.volume("seaweed")
    name = lab.run(
        "seaweedfs", SEAWEEDFS,
        "server", "-s3", "-s3.port=8333", "-s3.config=/etc/seaweedfs/s3.json", "-master.volumeSizeLimitMB=64",
        files={"/etc/seaweedfs/s3.json": s3_json},
        options=["-p", "127.0.0.1::8333", "-v", f"{vol}:/data"],
    )
    port = host_port(name, 8333)
    cfg = botocore_config.Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                 retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)

    def s3(key_secret):
        return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id=access,
                            aws_secret_access_key=key_secret, region_name="us-east-1", config=cfg)

    good = s3(secret)
    bucket = "labtest-bucket"
    wait_for("the S3 gateway", lambda: good.create_bucket(Bucket=bucket), timeout=90, interval=1, logs_of=name)
    good.put_object(Bucket=bucket, Key="hello.txt", Body=b"hello seaweed")
    assert good.get_object(Bucket=bucket, Key="hello.txt")["Body"].read() == b"hello seaweed"
    assert [o["Key"] for o in good.list_objects_v2(Bucket=bucket)["Contents"]] == ["hello.txt"]

    with pytest.raises(botocore_exceptions.ClientError) as err:
        s3("wrong" + secret).get_object(Bucket=bucket, Key="hello.txt")
    assert err.value.response["Error"]["Code"] in ("SignatureDoesNotMatch", "AccessDenied", "InvalidAccessKeyId")
    assert http_get(f"http://127.0.0.1:{port}/{bucket}/hello.txt")[0] == 403

    # the data lives under /data, the official image's volume
    assert docker("exec", name, "sh", "-c", "ls /data | grep -c .").stdout.strip() != "0"
    assert " 4.48 " in lab.oneshot(SEAWEEDFS, "version").stdout


# --------------------------------------------------------------------------- prefect


def _wheel(name, version, module_source):
    """A minimal pure-Python wheel (no build tools needed)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module_source.encode(),
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nGenerator: labtest\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{p},,\n" for p in files) + f"{dist}/RECORD,,\n"
    files[f"{dist}/RECORD"] = record.encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, data in files.items():
            zf.writestr(path, data)
    return f"{name}-{version}-py3-none-any.whl", buf.getvalue()


def test_prefect_cli_and_bundled_packages(lab):
    code = ("import prefect, prefect_docker, prefect_aws, prefect_redis, s3fs, docker, boto3; "
            "print(prefect.__version__, prefect_docker.__version__, prefect_aws.__version__)")
    out = lab.oneshot(PREFECT, "sh", "-c", f'prefect version && echo "--" && python -c "{code}"').stdout
    version, _sep, imports = out.partition("--\n")
    assert re.search(r"^Version:\s+3\.9\.1$", version, re.M), out
    assert imports.split() == ["3.9.1", "0.7.4", "0.7.12"]
    # the official image's layout: WORKDIR, tini as PID 1, entrypoint script
    info = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", PREFECT).stdout)
    assert info["WorkingDir"] == "/opt/prefect"
    assert info["Entrypoint"] == ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"]
    # default command: python, like upstream (reads the program from stdin)
    assert lab.oneshot(PREFECT, options=["-i"], input="print(6 * 7)\n").stdout.strip() == "42"


def test_prefect_entrypoint_installs_extra_pip_packages(lab):
    whl_name, whl = _wheel("labtest_extra", "1.0", "VALUE = 'extra-installed'\n")
    name = lab.run(
        "prefect-extra", PREFECT, "python", "-c", "import labtest_extra; print(labtest_extra.VALUE)",
        files={f"/wheels/{whl_name}": whl},
        options=["-e", "EXTRA_PIP_PACKAGES=--no-index --find-links /wheels labtest_extra"],
        start=False,
    )
    proc = docker("start", "-a", name, check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "+pip install --no-index --find-links /wheels labtest_extra" in proc.stdout
    assert proc.stdout.strip().splitlines()[-1] == "extra-installed"


def _start_prefect_server(lab):
    auth = "admin:" + secrets.token_hex(8)
    name = lab.run(
        "prefect-server", PREFECT, "prefect", "server", "start", "--host", "0.0.0.0", "--port", "4200",
        options=["-p", "127.0.0.1::4200", "-e", f"PREFECT_SERVER_API_AUTH_STRING={auth}",
                 # no usage reports to the vendor from a test
                 "-e", "PREFECT_SERVER_ANALYTICS_ENABLED=false"],
    )
    return {"name": name, "auth": auth}


@pytest.fixture(scope="session")
def prefect_server(lab):
    info = lab.early.get("prefect_server") or _start_prefect_server(lab)
    base = f"http://127.0.0.1:{host_port(info['name'], 4200)}/api"
    wait_for("prefect server /api/health", lambda: http_get(f"{base}/health") == (200, "true"),
             timeout=180, interval=1, logs_of=info["name"])
    return {**info, "api": base}


def test_prefect_server_start_answers_health(lab, prefect_server):
    base, name = prefect_server["api"], prefect_server["name"]
    user, password = prefect_server["auth"].split(":", 1)
    assert http_get(f"{base}/health") == (200, "true")
    assert http_get(f"{base}/flows/filter", method="POST", data=b"{}",
                    headers={"Content-Type": "application/json"})[0] == 401
    status, body = http_get(f"{base}/flows/filter", method="POST", data=b"{}",
                            headers={"Content-Type": "application/json", **basic_auth(user, password)})
    assert status == 200 and body.strip() == "[]"
    status, body = http_get(f"{base}/admin/version", headers=basic_auth(user, password))
    assert status == 200 and "3.9.1" in body
    assert docker("exec", name, "cat", "/proc/1/comm").stdout.strip() == "tini"


# --------------------------------------------------------------------------- haproxy

# The shape of the server role's front door (roles/server/templates/front-door.cfg.j2):
# TLS on the tenant's port, the backend found by name through Docker's DNS, health checks.
HAPROXY_CFG = """\
global
    log stdout format raw local0 info
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    default-server init-addr last,libc,none resolvers docker check inter 2s
resolvers docker
    nameserver dns 127.0.0.11:53
frontend tenant
    bind :8443 ssl crt /usr/local/etc/haproxy/front-door.pem alpn h2,http/1.1
    default_backend tenant
backend tenant
    option httpchk GET /api/health
    server api {backend}:4200
"""


def _tls_get(port, path, ca_file, headers=None):
    ctx = ssl.create_default_context(cafile=str(ca_file))
    return http_get(f"https://127.0.0.1:{port}{path}", headers=headers, context=ctx)


def test_haproxy_terminates_tls_for_a_prefect_server(lab, prefect_server, tmp_path):
    tls = _make_tls_pair(tmp_path)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(tls["ca"])
    net, _subnet = lab.network("front")
    docker("network", "connect", "--alias", "tenant-api", net, prefect_server["name"])
    try:
        # A host directory mounted read-only, files readable by the image's haproxy user
        # (uid 99) alone, as the server role writes them.
        conf = tmp_path / "haproxy"
        conf.mkdir(mode=0o700)
        (conf / "haproxy.cfg").write_text(HAPROXY_CFG.format(backend="tenant-api"))
        (conf / "front-door.pem").write_bytes(tls["cert"] + tls["key"])
        for path in (conf, conf / "haproxy.cfg", conf / "front-door.pem"):
            os.chown(path, 99, 99)
            path.chmod(0o700 if path.is_dir() else 0o600)
        name = lab.run("haproxy", HAPROXY, options=["--network", net, "-p", "127.0.0.1::8443",
                                                    "-v", f"{conf}:/usr/local/etc/haproxy:ro"])
        port = host_port(name, 8443)
        user, password = prefect_server["auth"].split(":", 1)
        wait_for("haproxy /api/health over TLS", lambda: _tls_get(port, "/api/health", ca_file) == (200, "true"),
                 timeout=60, logs_of=name)
        status, body = _tls_get(port, "/api/admin/version", ca_file, headers=basic_auth(user, password))
        assert status == 200 and "3.9.1" in body
        assert _tls_get(port, "/api/admin/version", ca_file)[0] == 401
        # plain HTTP on the TLS port gets no answer at all
        with pytest.raises((urllib.error.URLError, ConnectionError, http.client.HTTPException)):
            http_get(f"http://127.0.0.1:{port}/api/health")
        # a client that does not trust the CA is refused
        with pytest.raises(urllib.error.URLError) as err:
            http_get(f"https://127.0.0.1:{port}/api/health", context=ssl.create_default_context())
        assert "CERTIFICATE_VERIFY_FAILED" in str(err.value)
        # websocket upgrade (Prefect's events and logs streams) passes through
        ctx = ssl.create_default_context(cafile=str(ca_file))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
                key = base64.b64encode(secrets.token_bytes(16)).decode()
                auth = base64.b64encode(prefect_server["auth"].encode()).decode()
                sock.sendall((f"GET /api/events/out HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                              "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                              "Sec-WebSocket-Protocol: prefect\r\n"
                              f"Authorization: Basic {auth}\r\n\r\n").encode())
                assert sock.recv(200).split(b"\r\n", 1)[0] == b"HTTP/1.1 101 Switching Protocols"
        # the official image's user, entrypoint and binary path
        assert docker("exec", name, "id", "-u").stdout.strip() == "99"
        cmdline = docker("exec", name, "cat", "/proc/1/cmdline").stdout.split("\0")
        assert cmdline[:4] == ["haproxy", "-W", "-db", "-f"], cmdline
        assert "version 2.6." in lab.oneshot(HAPROXY, "haproxy", "-v").stdout
        # SIGUSR2 reloads the configuration (the role's way to apply a change), the master stays
        docker("kill", "--signal", "USR2", name)
        wait_for("haproxy answers after a reload",
                 lambda: _tls_get(port, "/api/health", ca_file) == (200, "true"), timeout=30, logs_of=name)
        assert docker("inspect", "-f", "{{.State.Running}} {{.RestartCount}}", name).stdout.split() == ["true", "0"]
    finally:
        docker("network", "disconnect", "-f", net, prefect_server["name"], check=False)


# --------------------------------------------------------------------------- redis


def _redis_cli(lab, net, host, *args, password=None):
    """redis-cli in a client container on NET (another address than the server's)."""
    opts = ["--network", net]
    if password is not None:
        opts += ["-e", f"REDISCLI_AUTH={password}"]  # not on the command line
    return lab.oneshot(REDIS, "redis-cli", "-h", host, *args, options=opts, check=False)


def _resp(port, *commands, timeout=5):
    """Send commands over the published port (RESP arrays) and return the decoded replies."""
    payload = b""
    for cmd in commands:
        payload += b"*%d\r\n" % len(cmd) + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in cmd)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        stream = sock.makefile("rb")
        replies = []
        for _cmd in commands:
            line = stream.readline().rstrip(b"\r\n").decode()
            kind, rest = line[:1], line[1:]
            if kind == "$":
                replies.append(None if rest == "-1" else stream.read(int(rest) + 2)[:-2].decode())
            elif kind == ":":
                replies.append(int(rest))
            else:  # + simple string, - error
                replies.append(line)
        return replies


def test_redis_default_listens_everywhere_without_protected_mode(lab):
    net, _subnet = lab.network("redis")
    name = lab.run("redis", REDIS, options=["--network", net])
    wait_for("redis answers PING from another container",
             lambda: _redis_cli(lab, net, name, "ping").stdout.strip() == "PONG", timeout=20, logs_of=name)
    # no password, not loopback: served, as by the official image (protected mode off)
    assert _redis_cli(lab, net, name, "config", "get", "protected-mode").stdout.split() == ["protected-mode", "no"]
    proc = _redis_cli(lab, net, name, "set", "greeting", "hello")
    assert proc.stdout.strip() == "OK", proc.stdout + proc.stderr
    assert _redis_cli(lab, net, name, "get", "greeting").stdout.strip() == "hello"
    # the official image's user, working dir and volume; the server itself is PID 1
    status = docker("exec", name, "cat", "/proc/1/status").stdout
    assert re.search(r"^Uid:\s+999\s+999\s+999\s+999$", status, re.M), status
    assert re.search(r"^Gid:\s+999\s+999\s+999\s+999$", status, re.M), status
    assert docker("exec", name, "cat", "/proc/1/comm").stdout.strip().startswith("redis-server")
    info = json.loads(docker("image", "inspect", "-f", "{{json .Config}}", REDIS).stdout)
    assert info["WorkingDir"] == "/data" and "/data" in info["Volumes"], info
    assert info["Entrypoint"] == ["docker-entrypoint.sh"] and info["Cmd"] == ["redis-server"], info
    assert "6379/tcp" in info["ExposedPorts"], info
    assert "v=7.0." in lab.oneshot(REDIS, "redis-server", "--version").stdout


def test_redis_requirepass_and_appendonly_data_survives_a_restart(lab):
    net, _subnet = lab.network("redis-auth")
    vol = lab.volume("redisdata")
    password = "r3dis-" + secrets.token_hex(6)
    # options only: the entrypoint prepends redis-server, as upstream
    name = lab.run("redis-auth", REDIS, "--requirepass", password, "--appendonly", "yes",
                   options=["--network", net, "-p", "127.0.0.1::6379", "-v", f"{vol}:/data"])
    port = host_port(name, 6379)
    wait_for("redis answers on the published port",
             lambda: _resp(port, ["AUTH", password], ["PING"]) == ["+OK", "+PONG"], timeout=20, logs_of=name)
    # wrong or no password: refused, over the network and from the host
    proc = _redis_cli(lab, net, name, "ping", password="wrong-" + secrets.token_hex(3))
    assert "WRONGPASS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert _resp(port, ["AUTH", "wrong"])[0].startswith("-WRONGPASS")
    assert _resp(port, ["GET", "k"])[0].startswith("-NOAUTH")
    assert _redis_cli(lab, net, name, "set", "k", "kept", password=password).stdout.strip() == "OK"
    assert _resp(port, ["AUTH", password], ["GET", "k"]) == ["+OK", "kept"]
    # the append-only files are in /data, owned by redis (999), private (umask 0077)
    listing = docker("exec", name, "sh", "-c", "stat -c '%u %a %n' /data/appendonlydir /data/appendonlydir/*").stdout
    assert ".aof" in listing, listing
    assert all(line.split()[0] == "999" for line in listing.splitlines()), listing
    assert listing.splitlines()[0].split()[1] == "700", listing
    docker("restart", "-t", "10", name)
    port = host_port(name, 6379)  # a restart may publish another host port
    wait_for("redis answers after the restart",
             lambda: _resp(port, ["AUTH", password], ["PING"]) == ["+OK", "+PONG"], timeout=20, logs_of=name)
    assert _redis_cli(lab, net, name, "get", "k", password=password).stdout.strip() == "kept"
    cmdline = docker("exec", name, "cat", "/proc/1/cmdline").stdout
    assert cmdline.startswith("/usr/bin/redis-server"), cmdline


def test_redis_conf_file_as_first_argument_decides_protected_mode(lab):
    net, _subnet = lab.network("redis-conf")
    conf = "port 6380\nprotected-mode yes\n"
    name = lab.run("redis-conf", REDIS, "/usr/local/etc/redis/redis.conf",
                   files={"/usr/local/etc/redis/redis.conf": conf}, options=["--network", net])
    wait_for("redis answers on the configured port",
             lambda: docker("exec", name, "redis-cli", "-p", "6380", "ping", check=False).stdout.strip() == "PONG",
             timeout=20, logs_of=name)
    # the file names protected-mode: it wins over the image's default, and a client
    # from another address without a password is turned away
    proc = _redis_cli(lab, net, name, "-p", "6380", "ping")
    assert "DENIED" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
