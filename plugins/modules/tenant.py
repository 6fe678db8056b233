#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tenant
short_description: The database side of a Prefect tenant in a shared PostgreSQL container
version_added: "0.1.0"
description:
  - Self-hosted Prefect 3 has no tenants; the collection makes a tenant a real isolated unit with
    its own server container, its own database and database role, and its own credentials.
  - This module manages the database side, that is a PostgreSQL role that can log in with the given
    password, a database owned by that role, and the extensions Prefect needs (C(pg_trgm)).
  - SQL runs inside the PostgreSQL container through the Docker API (like C(docker exec)), with
    community.docker's API client, so the database port need not be published and no PostgreSQL
    driver is needed on the host. The usual community.docker connection options apply.
  - The password is checked by logging in with it over TCP inside the container; it is changed
    only when that login fails. It never appears in the output.
  - The tenant's server container is managed by the C(selfhosted.prefect.server) role with
    community.docker modules; this module only touches the database.
author:
  - selfhosted.prefect maintainers (@selfhosted)
attributes:
  check_mode:
    support: full
    description: Reports what would be created, changed or dropped without running any write.
  diff_mode:
    support: full
    description: Shows the role, database and extensions before and after; never the password.
  idempotent:
    support: full
    description: A second run with the same input reports no change.
options:
  name:
    description:
      - The tenant's name, a lowercase slug. It names the default database and role
        (C(prefect_<name>)).
    type: str
    required: true
  state:
    description:
      - V(present) makes sure the role, database and extensions exist.
      - V(absent) keeps the tenant's data unless O(purge=true), in which case the database and
        the role are dropped.
    type: str
    choices: [present, absent]
    default: present
  purge:
    description:
      - With O(state=absent), drop the tenant's database and role. Their data is lost.
    type: bool
    default: false
  database_container:
    description:
      - Name or id of the running PostgreSQL container.
    type: str
    required: true
  database_admin_user:
    description:
      - Superuser of the PostgreSQL container (the official image's E(POSTGRES_USER)).
    type: str
    default: postgres
  database_name:
    description:
      - Database of the tenant. Defaults to C(prefect_<name>).
    type: str
  database_user:
    description:
      - Role of the tenant. Defaults to C(prefect_<name>).
    type: str
  database_password:
    description:
      - Password of the tenant's role. Required with O(state=present).
    type: str
  extensions:
    description:
      - Extensions created in the tenant's database.
    type: list
    elements: str
    default: [pg_trgm]
extends_documentation_fragment:
  - community.docker.docker.api_documentation
requirements:
  - C(requests) on the host that runs the module (as for community.docker's modules; no Docker SDK).
  - C(psql) in the PostgreSQL container (as in the official C(postgres) image).
notes:
  - Removing the tenant's server container is the role's job; this module does not touch
    containers.
"""

EXAMPLES = r"""
- name: The database side of tenant "data-team"
  selfhosted.prefect.tenant:
    name: data_team
    database_container: prefect-postgres
    database_password: "{{ data_team_db_password }}"

- name: Remove a tenant and its data for good
  selfhosted.prefect.tenant:
    name: old_team
    database_container: prefect-postgres
    state: absent
    purge: true
"""

RETURN = r"""
database:
  description: The tenant's database.
  returned: always
  type: str
  sample: prefect_default
database_user:
  description: The tenant's role.
  returned: always
  type: str
  sample: prefect_default
actions:
  description: What was done (or would be done in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: ["create role", "create database", "create extension pg_trgm"]
"""

import base64
import hashlib
import hmac
import re
import unicodedata

from ansible.module_utils.common.text.converters import to_text
from ansible_collections.community.docker.plugins.module_utils.common_api import (
    AnsibleDockerClient,
    RequestException,
)
from ansible_collections.community.docker.plugins.module_utils._api.errors import DockerException

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class TenantDatabase(object):
    """Runs SQL in the PostgreSQL container with psql, through community.docker's API client."""

    def __init__(self, client, container, admin_user):
        self.client = client
        self.module = client.module
        self.admin_user = admin_user
        self.container = container
        info = client.get_container(container)
        if info is None:
            self.module.fail_json(msg="PostgreSQL container %r does not exist" % container)
        if not info.get("State", {}).get("Running"):
            self.module.fail_json(msg="PostgreSQL container %r is %s, not running"
                                  % (container, info.get("State", {}).get("Status", "unknown")))

    def _exec(self, cmd, env=None):
        data = {
            "Container": self.container, "User": "", "Privileged": False, "Tty": False,
            "AttachStdin": False, "AttachStdout": True, "AttachStderr": True, "Cmd": cmd,
            "Env": ["%s=%s" % item for item in env.items()] if env else None,
        }
        try:
            exec_id = self.client.post_json_to_json("/containers/{0}/exec", self.container, data=data)["Id"]
            stdout, stderr = self.client.post_json_to_stream("/exec/{0}/start", exec_id,
                                                             data={"Tty": False, "Detach": False},
                                                             stream=False, tty=False, demux=True)
            rc = self.client.get_json("/exec/{0}/json", exec_id).get("ExitCode") or 0
        except (DockerException, RequestException) as exc:
            self.module.fail_json(msg="Running psql in container %s failed: %s" % (self.container, exc))
        output = (to_text(stdout or b"") + to_text(stderr or b"")).strip()
        return rc, output

    def run(self, sql, database="postgres"):
        """Run one SQL text as the superuser over the container's local socket; return (rc, output)."""
        return self._exec(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-U", self.admin_user, "-d", database, "-c", sql])

    def query(self, sql, database="postgres"):
        rc, out = self.run(sql, database)
        if rc != 0:
            self.module.fail_json(msg="SQL failed in database %s: %s" % (database, out))
        return out

    def run_with_password_var(self, sql, password):
        """Run SQL that refers to :'pw', read from the environment with psql's \\getenv."""
        # psql interpolates variables only in scripts, not in -c strings: feed a script on stdin.
        script = 'printf "%s\\n%s\\n" "\\getenv pw TENANT_PASSWORD" "$TENANT_SQL" | ' \
                 'psql -X -q -v ON_ERROR_STOP=1 -U "$TENANT_ADMIN" -d postgres'
        env = {"TENANT_PASSWORD": password, "TENANT_SQL": sql, "TENANT_ADMIN": self.admin_user}
        rc, out = self._exec(["sh", "-c", script], env)
        if rc != 0:
            self.module.fail_json(msg="Setting the password of the tenant's role failed: %s"
                                  % out.replace(password, "********"))

    def password_matches(self, user, password):
        """Compare the password with the role's stored verifier, without logging in.

        (The official image trusts connections from inside the container, so a login test
        there would accept any password.)
        """
        stored = self.query("SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = %s"
                            % quote_literal(user))
        return verifier_matches(stored, user, password)


def verifier_matches(stored, user, password):
    """True when ``password`` produces PostgreSQL's stored verifier (SCRAM-SHA-256 or md5)."""
    if stored.startswith("SCRAM-SHA-256$"):
        try:
            iter_salt, keys = stored[len("SCRAM-SHA-256$"):].split("$", 1)
            iterations, salt = iter_salt.split(":", 1)
            stored_key, server_key = keys.split(":", 1)
            salt = base64.b64decode(salt)
            iterations = int(iterations)
        except ValueError:
            return False
        candidates = [unicodedata.normalize("NFKC", password).encode("utf-8"), password.encode("utf-8")]
        for candidate in candidates:
            salted = hashlib.pbkdf2_hmac("sha256", candidate, salt, iterations)
            client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
            if (base64.b64encode(hashlib.sha256(client_key).digest()).decode() == stored_key
                    and base64.b64encode(hmac.new(salted, b"Server Key", hashlib.sha256).digest()).decode()
                    == server_key):
                return True
        return False
    if stored.startswith("md5"):
        return stored == "md5" + hashlib.md5((password + user).encode("utf-8")).hexdigest()
    return False


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def quote_literal(value):
    return "'%s'" % value.replace("'", "''")


def main():
    client = AnsibleDockerClient(
        argument_spec=dict(
            name=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            purge=dict(type="bool", default=False),
            database_container=dict(type="str", required=True),
            database_admin_user=dict(type="str", default="postgres"),
            database_name=dict(type="str"),
            database_user=dict(type="str"),
            database_password=dict(type="str", no_log=True),
            extensions=dict(type="list", elements="str", default=["pg_trgm"]),
        ),
        required_if=[("state", "present", ["database_password"])],
        supports_check_mode=True,
    )
    module = client.module
    p = module.params
    if not NAME_RE.match(p["name"]):
        module.fail_json(msg="name %r is not a valid tenant name: use a lowercase letter, then lowercase "
                             "letters, digits or underscores (at most 48 characters)" % p["name"])
    dbname = p["database_name"] or "prefect_%s" % p["name"]
    dbuser = p["database_user"] or "prefect_%s" % p["name"]
    for label, value in (("database_name", dbname), ("database_user", dbuser)):
        if not IDENT_RE.match(value):
            module.fail_json(msg="%s %r is not a valid PostgreSQL identifier here (lowercase letters, digits, "
                                 "underscores; at most 63 characters)" % (label, value))
    for ext in p["extensions"]:
        if not IDENT_RE.match(ext):
            module.fail_json(msg="extensions: %r is not a valid extension name" % ext)
    db = TenantDatabase(client, p["database_container"], p["database_admin_user"])

    role_exists = db.query("SELECT 1 FROM pg_roles WHERE rolname = %s" % quote_literal(dbuser)) == "1"
    owner = db.query("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s"
                     % quote_literal(dbname))
    db_exists = owner != ""
    exts = []
    if db_exists:
        exts = sorted(db.query("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'", database=dbname).split())

    before = dict(role=dbuser if role_exists else None, database=dbname if db_exists else None,
                  owner=owner or None, extensions=exts)
    actions = []

    if p["state"] == "present":
        if not role_exists:
            actions.append("create role")
            if not module.check_mode:
                db.run_with_password_var("CREATE ROLE %s LOGIN PASSWORD :'pw'" % quote_ident(dbuser),
                                         p["database_password"])
        elif not db.password_matches(dbuser, p["database_password"]):
            actions.append("set role password")
            if not module.check_mode:
                db.run_with_password_var("ALTER ROLE %s LOGIN PASSWORD :'pw'" % quote_ident(dbuser),
                                         p["database_password"])
        if not db_exists:
            actions.append("create database")
            if not module.check_mode:
                db.query("CREATE DATABASE %s OWNER %s" % (quote_ident(dbname), quote_ident(dbuser)))
        elif owner != dbuser:
            actions.append("set database owner")
            if not module.check_mode:
                db.query("ALTER DATABASE %s OWNER TO %s" % (quote_ident(dbname), quote_ident(dbuser)))
        for ext in p["extensions"]:
            if ext not in exts:
                actions.append("create extension %s" % ext)
                if not module.check_mode:
                    db.query("CREATE EXTENSION IF NOT EXISTS %s" % quote_ident(ext), database=dbname)
        after = dict(role=dbuser, database=dbname, owner=dbuser,
                     extensions=sorted(set(exts) | set(p["extensions"])))
    else:
        after = dict(before)
        if p["purge"]:
            if db_exists:
                actions.append("drop database")
                if not module.check_mode:
                    db.query("DROP DATABASE %s WITH (FORCE)" % quote_ident(dbname))
            if role_exists:
                actions.append("drop role")
                if not module.check_mode:
                    db.query("DROP ROLE %s" % quote_ident(dbuser))
            after = dict(role=None, database=None, owner=None, extensions=[])

    result = dict(changed=bool(actions), actions=actions, database=dbname, database_user=dbuser)
    if module._diff:
        result["diff"] = dict(before=before, after=after)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
