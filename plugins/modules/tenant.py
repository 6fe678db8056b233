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
  - SQL runs inside the PostgreSQL container with C(psql), through the Docker Engine API over the
    engine's unix socket (like C(docker exec)), so the database port need not be published and no
    PostgreSQL driver, Docker SDK or C(requests) is needed on the host that runs the module.
  - The password is compared with the role's stored verifier (SCRAM-SHA-256 or md5); it is changed
    only when it does not match. It never appears in the output.
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
      - When the role exists with another password, the module fails (naming the role, never the
        password) unless O(rotate_password=true); a controller that lost the secrets it deployed with
        would otherwise change the password under the running server and break it.
    type: str
  rotate_password:
    description:
      - Change the password of an existing role to O(database_password) when they differ.
      - V(false) (default) fails instead, and says how to get the deployed password back or rotate it.
    type: bool
    default: false
  isolate:
    description:
      - Revoke C(CONNECT) and C(TEMPORARY) on the tenant's database from C(PUBLIC), so that no other
        tenant's role (nor any role but the owner and superusers) can connect to it. PostgreSQL grants
        both to C(PUBLIC) on every new database.
      - V(false) leaves the database's privileges as they are.
    type: bool
    default: true
  connection_limit:
    description:
      - Most connections the tenant's role may hold at once (C(ALTER ROLE ... CONNECTION LIMIT)), so one
        tenant cannot use up the server's C(max_connections) for the others. V(-1) is no limit.
      - Not set, the role's limit is left as it is.
    type: int
  extensions:
    description:
      - Extensions created in the tenant's database.
    type: list
    elements: str
    default: [pg_trgm]
  docker_host:
    description:
      - The Docker engine that runs O(database_container), as a C(unix://) URL of its socket.
      - If not set, the E(DOCKER_HOST) environment variable is used when set.
      - Only local engines reached through a unix socket are supported; a C(tcp://) or C(ssh://)
        URL is refused. Run the module on the machine whose engine holds the container.
    type: str
    default: unix:///var/run/docker.sock
    aliases: [docker_url]
  timeout:
    description:
      - Seconds to wait for each answer of the Docker engine; a SQL command that runs longer than
        this without answering fails.
    type: int
    default: 60
requirements:
  - Access to the Docker engine's socket on the host that runs the module (Python standard library
    only; no Docker SDK, no C(requests)).
  - C(psql) in the PostgreSQL container (as in the official C(postgres) image).
notes:
  - Removing the tenant's server container is the role's job; this module does not touch
    containers.
"""

EXAMPLES = r"""
- name: The database side of tenant "data-team", refused to other tenants' roles, 30 connections at most
  selfhosted.prefect.tenant:
    name: data_team
    database_container: prefect-postgres
    database_password: "{{ data_team_db_password }}"
    connection_limit: 30

- name: Remove a tenant and its data for good
  selfhosted.prefect.tenant:
    name: old_team
    database_container: prefect-postgres
    state: absent
    purge: true

- name: Through another engine socket (rootless Docker)
  selfhosted.prefect.tenant:
    name: data_team
    database_container: prefect-postgres
    database_password: "{{ data_team_db_password }}"
    docker_host: unix:///run/user/1000/docker.sock
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

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.selfhosted.prefect.plugins.module_utils.docker_exec import (
    DockerExecClient,
    DockerExecError,
    docker_exec_argument_spec,
)

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class TenantError(Exception):
    """A failure the module reports as is (the message never holds the password)."""


class TenantDatabase(object):
    """The tenant's side of the PostgreSQL container: SQL through psql, run with ``docker exec``."""

    def __init__(self, client, container, admin_user):
        self.client = client
        self.container = container
        self.admin_user = admin_user

    def check_container(self):
        info = self.client.inspect_container(self.container)
        if info is None:
            raise TenantError("PostgreSQL container %r does not exist" % self.container)
        state = info.get("State") or {}
        if not state.get("Running"):
            raise TenantError("PostgreSQL container %r is %s, not running"
                              % (self.container, state.get("Status", "unknown")))

    def _exec(self, cmd, env=None):
        rc, stdout, stderr = self.client.exec_run(self.container, cmd, env=env)
        output = (stdout.decode("utf-8", "replace") + stderr.decode("utf-8", "replace")).strip()
        return rc, output

    def run(self, sql, database="postgres"):
        """Run one SQL text as the superuser over the container's local socket; return (rc, output)."""
        return self._exec(["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                           "-U", self.admin_user, "-d", database, "-c", sql])

    def query(self, sql, database="postgres"):
        rc, out = self.run(sql, database)
        if rc != 0:
            raise TenantError("SQL failed in database %s: %s" % (database, out))
        return out

    def run_with_password_var(self, sql, password):
        """Run SQL that refers to :'pw', read from the environment with psql's \\getenv."""
        # psql interpolates variables only in scripts, not in -c strings: feed a script on stdin.
        # The password travels in the exec's environment, never on a command line.
        script = 'printf "%s\\n%s\\n" "\\getenv pw TENANT_PASSWORD" "$TENANT_SQL" | ' \
                 'psql -X -q -v ON_ERROR_STOP=1 -U "$TENANT_ADMIN" -d postgres'
        env = {"TENANT_PASSWORD": password, "TENANT_SQL": sql, "TENANT_ADMIN": self.admin_user}
        rc, out = self._exec(["sh", "-c", script], env)
        if rc != 0:
            raise TenantError("Setting the password of the tenant's role failed: %s"
                              % (out.replace(password, "********") if password else out))

    # -- reading -------------------------------------------------------------------------
    def role_exists(self, user):
        return self.query("SELECT 1 FROM pg_roles WHERE rolname = %s" % quote_literal(user)) == "1"

    def database_owner(self, dbname):
        """The owner of the database, or None when it does not exist."""
        return self.query("SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s"
                          % quote_literal(dbname)) or None

    def public_privileges(self, dbname):
        """Which of CONNECT and TEMPORARY PUBLIC holds on the database."""
        out = self.query("SELECT has_database_privilege('public', %s, 'CONNECT'),"
                         " has_database_privilege('public', %s, 'TEMPORARY')"
                         % (quote_literal(dbname), quote_literal(dbname)))
        flags = out.split("|")
        return [name for name, flag in zip(("CONNECT", "TEMPORARY"), flags) if flag.strip() == "t"]

    def connection_limit(self, user):
        out = self.query("SELECT rolconnlimit FROM pg_roles WHERE rolname = %s" % quote_literal(user))
        return int(out) if out else None

    def extensions(self, dbname):
        return sorted(self.query("SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'",
                                 database=dbname).split())

    def password_matches(self, user, password):
        """Compare the password with the role's stored verifier, without logging in.

        (The official image trusts connections from inside the container, so a login test
        there would accept any password.)
        """
        stored = self.query("SELECT coalesce(rolpassword, '') FROM pg_authid WHERE rolname = %s"
                            % quote_literal(user))
        return verifier_matches(stored, user, password)

    # -- writing -------------------------------------------------------------------------
    def create_role(self, user, password):
        self.run_with_password_var("CREATE ROLE %s LOGIN PASSWORD :'pw'" % quote_ident(user), password)

    def set_password(self, user, password):
        self.run_with_password_var("ALTER ROLE %s LOGIN PASSWORD :'pw'" % quote_ident(user), password)

    def create_database(self, dbname, owner):
        self.query("CREATE DATABASE %s OWNER %s" % (quote_ident(dbname), quote_ident(owner)))

    def set_owner(self, dbname, owner):
        self.query("ALTER DATABASE %s OWNER TO %s" % (quote_ident(dbname), quote_ident(owner)))

    def create_extension(self, dbname, ext):
        self.query("CREATE EXTENSION IF NOT EXISTS %s" % quote_ident(ext), database=dbname)

    def revoke_public(self, dbname):
        self.query("REVOKE CONNECT, TEMPORARY ON DATABASE %s FROM PUBLIC" % quote_ident(dbname))

    def set_connection_limit(self, user, limit):
        self.query("ALTER ROLE %s CONNECTION LIMIT %d" % (quote_ident(user), int(limit)))

    def drop_database(self, dbname):
        self.query("DROP DATABASE %s WITH (FORCE)" % quote_ident(dbname))

    def drop_role(self, user):
        self.query("DROP ROLE %s" % quote_ident(user))


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


def resolve_names(params):
    """(database, role) of the tenant from the module's parameters; ValueError if one is unusable."""
    if not NAME_RE.match(params["name"]):
        raise ValueError("name %r is not a valid tenant name: use a lowercase letter, then lowercase "
                         "letters, digits or underscores (at most 48 characters)" % params["name"])
    dbname = params["database_name"] or "prefect_%s" % params["name"]
    dbuser = params["database_user"] or "prefect_%s" % params["name"]
    for label, value in (("database_name", dbname), ("database_user", dbuser)):
        if not IDENT_RE.match(value):
            raise ValueError("%s %r is not a valid PostgreSQL identifier here (lowercase letters, digits, "
                             "underscores; at most 63 characters)" % (label, value))
    for ext in params["extensions"] or []:
        if not IDENT_RE.match(ext):
            raise ValueError("extensions: %r is not a valid extension name" % ext)
    return dbname, dbuser


class TenantManager(object):
    """Compares the tenant's role, database and extensions with the wanted state and applies the
    difference. ``present()`` and ``absent()`` return the module result."""

    def __init__(self, module, db):
        self.module = module
        self.db = db
        self.p = module.params
        self.dbname, self.dbuser = resolve_names(self.p)
        self.actions = []

    def read(self):
        role_exists = self.db.role_exists(self.dbuser)
        owner = self.db.database_owner(self.dbname)
        extensions = self.db.extensions(self.dbname) if owner is not None else []
        return dict(role=self.dbuser if role_exists else None,
                    database=self.dbname if owner is not None else None,
                    owner=owner, extensions=extensions,
                    public_privileges=self.db.public_privileges(self.dbname) if owner is not None else [],
                    connection_limit=self.db.connection_limit(self.dbuser) if role_exists else None)

    def _do(self, action, func, *args):
        self.actions.append(action)
        if not self.module.check_mode:
            func(*args)

    def _result(self, before, after):
        result = dict(changed=bool(self.actions), actions=self.actions, database=self.dbname,
                      database_user=self.dbuser)
        if self.module._diff:
            result["diff"] = dict(before=before, after=after)
        return result

    def present(self):
        before = self.read()
        password = self.p["database_password"]
        if before["role"] is None:
            self._do("create role", self.db.create_role, self.dbuser, password)
        elif not self.db.password_matches(self.dbuser, password):
            if not self.p["rotate_password"]:
                raise TenantError(
                    "Role %s exists with another password than database_password. The password this "
                    "controller holds is not the one the tenant was deployed with (a lost or new secrets "
                    "directory?): give the deployed password (e.g. from ansible-vault, or restore "
                    "prefect_secrets_dir from a backup), or set rotate_password=true (server role: "
                    "server_rotate_secrets=true) to change it; the tenant's server must then get the new "
                    "one too." % self.dbuser)
            self._do("set role password", self.db.set_password, self.dbuser, password)
        if before["database"] is None:
            self._do("create database", self.db.create_database, self.dbname, self.dbuser)
        elif before["owner"] != self.dbuser:
            self._do("set database owner", self.db.set_owner, self.dbname, self.dbuser)
        for ext in self.p["extensions"]:
            if ext not in before["extensions"]:
                self._do("create extension %s" % ext, self.db.create_extension, self.dbname, ext)
        # A new database grants CONNECT and TEMPORARY to PUBLIC: every other role could connect.
        public = before["public_privileges"] if before["database"] is not None else ["CONNECT", "TEMPORARY"]
        if self.p["isolate"] and public:
            self._do("revoke %s from PUBLIC" % " and ".join(public), self.db.revoke_public, self.dbname)
            public = []
        limit = before["connection_limit"] if before["role"] is not None else -1
        wanted = self.p["connection_limit"]
        if wanted is not None and wanted != limit:
            self._do("set connection limit %d" % wanted, self.db.set_connection_limit, self.dbuser, wanted)
            limit = wanted
        after = dict(role=self.dbuser, database=self.dbname, owner=self.dbuser,
                     extensions=sorted(set(before["extensions"]) | set(self.p["extensions"])),
                     public_privileges=public, connection_limit=limit)
        return self._result(before, after)

    def absent(self):
        before = self.read()
        after = dict(before)
        if self.p["purge"]:
            if before["database"] is not None:
                self._do("drop database", self.db.drop_database, self.dbname)
            if before["role"] is not None:
                self._do("drop role", self.db.drop_role, self.dbuser)
            after = dict(role=None, database=None, owner=None, extensions=[], public_privileges=[],
                         connection_limit=None)
        return self._result(before, after)


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        purge=dict(type="bool", default=False),
        isolate=dict(type="bool", default=True),
        connection_limit=dict(type="int"),
        database_container=dict(type="str", required=True),
        database_admin_user=dict(type="str", default="postgres"),
        database_name=dict(type="str"),
        database_user=dict(type="str"),
        database_password=dict(type="str", no_log=True),
        rotate_password=dict(type="bool", default=False),
        extensions=dict(type="list", elements="str", default=["pg_trgm"]),
    )
    argument_spec.update(docker_exec_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["database_password"])])
    p = module.params
    try:
        client = DockerExecClient(p["docker_host"], timeout=p["timeout"])
        db = TenantDatabase(client, p["database_container"], p["database_admin_user"])
        manager = TenantManager(module, db)
        db.check_container()
        result = manager.present() if p["state"] == "present" else manager.absent()
    except (ValueError, TenantError, DockerExecError) as exc:
        module.fail_json(msg=str(exc))
    else:
        module.exit_json(**result)


if __name__ == "__main__":
    main()
