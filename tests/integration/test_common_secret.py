# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/_common steps, reached through the collection's roles as the roles use them.

secret (through the server role's secrets.yml): generated once, stored 0600/0700, read
back, nothing written by --check. certificate (through the worker role's dind_ca.yml):
a CA and a certificate it signs, keys 0600, nothing changed on a second run. Every step
refuses to run when included from a playbook or from a role outside the collection.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess

import pytest

from conftest import COLLECTIONS_PATH, VENV_BIN

PLAYBOOKS = os.path.join(os.path.dirname(__file__), "playbooks")


def run(tmp_path, playbook, extra, check=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_ROLES_PATH": os.path.join(PLAYBOOKS, "roles"),
                "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", os.path.join(PLAYBOOKS, playbook)]
    for key, value in extra.items():
        cmd += ["-e", "%s=%s" % (key, value)]
    if check:
        cmd.append("--check")
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)


def play(tmp_path, secret_dir, check=False, given=None):
    extra = {"test_secrets_dir": secret_dir}
    if given:
        extra["test_given"] = given
    proc = run(tmp_path, "common_secret.yml", extra, check=check)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def changed(output):
    match = re.search(r"localhost\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=0\s+failed=0", output)
    assert match, output
    return int(match.group(1))


def test_secret_generated_once_and_check_mode_writes_nothing(tmp_path):
    secret_dir = tmp_path / "secrets"
    secret_path = secret_dir / "tenant-a-auth-password"

    play(tmp_path, secret_dir, check=True)
    assert not secret_dir.exists()

    out = play(tmp_path, secret_dir)
    value = secret_path.read_text().strip()
    assert len(value) == 32 and value.isalnum()
    assert value not in out
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(secret_dir).st_mode) == 0o700

    # later runs, check mode included, read the same value (asserted inside the play)
    play(tmp_path, secret_dir)
    play(tmp_path, secret_dir, check=True)
    assert secret_path.read_text().strip() == value


def test_given_secret_is_used_and_not_stored(tmp_path):
    secret_dir = tmp_path / "secrets"
    out = play(tmp_path, secret_dir, given="Given-Secret-Value-123")
    assert not (secret_dir / "tenant-a-auth-password").exists()
    assert "Given-Secret-Value-123" not in out


@pytest.mark.parametrize("caller,step", [
    ("playbook", "secret"), ("playbook", "wait_http"), ("playbook", "image"), ("playbook", "certificate"),
    ("outsider", "secret"),
])
def test_steps_refuse_to_run_outside_the_collection_roles(tmp_path, caller, step):
    secret_dir = tmp_path / "secrets"
    proc = run(tmp_path, "common_refused.yml",
               {"test_secrets_dir": secret_dir, "test_caller": caller, "test_step": step})
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert "selfhosted.prefect._common is internal" in out, out
    assert "Refuse to run outside the collection's roles" in out, out
    assert not secret_dir.exists()


def test_certificate_ca_and_signed_certificate(tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec

    secret_dir, certs_dir = tmp_path / "secrets", tmp_path / "host-certs"
    extra = {"test_secrets_dir": secret_dir, "test_certs_dir": certs_dir}
    proc = run(tmp_path, "common_certificate.yml", extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr

    dind = secret_dir / "dind"
    assert stat.S_IMODE(os.stat(dind).st_mode) == 0o700
    for key in ("ca-key.pem", "client-key.pem"):
        assert stat.S_IMODE(os.stat(dind / key).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(certs_dir / "client" / "key.pem").st_mode) == 0o600

    ca = x509.load_pem_x509_certificate((dind / "ca.pem").read_bytes())
    client = x509.load_pem_x509_certificate((dind / "client.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).critical
    assert ca.subject == ca.issuer
    assert client.issuer == ca.subject
    assert client.subject.rfc4514_string() == "CN=prefect-worker"
    eku = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]
    ca.public_key().verify(client.signature, client.tbs_certificate_bytes, ec.ECDSA(client.signature_hash_algorithm))
    assert (certs_dir / "client" / "cert.pem").read_bytes() == (dind / "client.pem").read_bytes()

    # a second run, and check mode, change nothing
    for check in (False, True):
        proc = run(tmp_path, "common_certificate.yml", extra, check=check)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert changed(proc.stdout) == 0, proc.stdout
