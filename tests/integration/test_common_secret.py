# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/common tasks_from secret: generated once, stored 0600/0700, read back, nothing written by --check."""

from __future__ import annotations

import os
import stat
import subprocess

from conftest import COLLECTIONS_PATH, VENV_BIN

PLAYBOOK = os.path.join(os.path.dirname(__file__), "playbooks", "common_secret.yml")


def play(tmp_path, secret_path, check=False, given=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({"ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_PATH), "ANSIBLE_LOCALHOST_WARNING": "0",
                "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0", "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_HOME": str(tmp_path / "ansible-home"), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp")})
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", "localhost,", PLAYBOOK, "-e", "test_secret_path=%s" % secret_path]
    if given:
        cmd += ["-e", "test_given=%s" % given]
    if check:
        cmd.append("--check")
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_secret_generated_once_and_check_mode_writes_nothing(tmp_path):
    secret_dir = tmp_path / "secrets"
    secret_path = secret_dir / "tenant-a-auth-password"

    play(tmp_path, secret_path, check=True)
    assert not secret_dir.exists()

    out = play(tmp_path, secret_path)
    value = secret_path.read_text().strip()
    assert len(value) == 32 and value.isalnum()
    assert value not in out
    assert stat.S_IMODE(os.stat(secret_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(secret_dir).st_mode) == 0o700

    # later runs, check mode included, read the same value (asserted inside the play)
    play(tmp_path, secret_path)
    play(tmp_path, secret_path, check=True)
    assert secret_path.read_text().strip() == value


def test_given_secret_is_used_and_not_stored(tmp_path):
    secret_path = tmp_path / "secrets" / "given"
    out = play(tmp_path, secret_path, given="Given-Secret-Value-123")
    assert not secret_path.exists()
    assert "Given-Secret-Value-123" not in out
