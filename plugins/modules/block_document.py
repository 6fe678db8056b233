#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: block_document
short_description: Manage a Prefect block document (credentials, storage, secrets)
version_added: 0.1.0
description:
  - Creates, updates or deletes a block document (for example C(aws-credentials),
    C(s3-bucket), C(docker-registry-credentials) or C(secret)) on a Prefect 3 server over
    its REST API.
  - O(data) is the complete content of the block; fields that are not given are removed
    from an existing block.
  - Fields that the block's schema declares secret (its C(secret_fields)) are write-only.
    They are compared with the stored values without ever being returned; in the result
    and in the diff they show as C(********), with " (changed)" appended when the value
    changes, and their values are kept out of Ansible's output and logs.
  - The block type and its schema must be registered on the server. A server registers
    the core types and the types of the Prefect integrations it bundles (AWS, Docker, GCP,
    Azure, ...) when it starts; a type that is missing is refused with the command that
    registers it (C(prefect block register -m <python module>), run where that package is
    installed).
author:
  - selfhosted.prefect maintainers (@selfhosted)
extends_documentation_fragment:
  - selfhosted.prefect.prefect_api
  - selfhosted.prefect.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Secret values are masked in the diff.
  idempotent:
    support: full
options:
  block_type:
    description:
      - Slug of the block type, for example V(aws-credentials), V(s3-bucket),
        V(docker-registry-credentials), V(secret).
    type: str
    required: true
  name:
    description:
      - Name of the block document (lower case letters, digits and dashes).
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the block, V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  data:
    description:
      - The block's fields, as the block type's schema defines them. Unknown fields and
        missing required fields are refused.
      - 'A field that holds another block is given as a reference, either
        C({"$ref": {"block_document_id": "<id>"}}) or, resolved by the module,
        C({"$ref": {"block_type_slug": "aws-credentials", "block_document_name": "name"}}).'
      - When not given, an existing block keeps its data and a new block gets none.
    type: dict
  block_schema_version:
    description:
      - Version of the block type's schema to use, when the server holds several (for
        example the version bundled with the server and the one of an installed
        integration).
      - By default an existing block keeps its schema and a new block gets the highest
        version the server holds.
    type: str
notes:
  - Secret fields are compared with the stored values read with C(include_secrets=true);
    these values never leave the module.
  - O(data) is not written to the target host's system log, as it may hold secrets.
seealso:
  - name: Prefect blocks
    description: Blocks in the Prefect documentation.
    link: https://docs.prefect.io/v3/concepts/blocks
"""

EXAMPLES = r"""
- name: S3 credentials for the SeaweedFS endpoint
  selfhosted.prefect.block_document:
    api_url: http://127.0.0.1:4200/api
    api_auth_string: "{{ prefect_auth_string }}"
    block_type: aws-credentials
    name: seaweedfs
    data:
      aws_access_key_id: "{{ s3_access_key }}"
      aws_secret_access_key: "{{ s3_secret_key }}"
      aws_client_parameters:
        endpoint_url: http://127.0.0.1:8333

- name: A bucket that uses those credentials
  selfhosted.prefect.block_document:
    block_type: s3-bucket
    name: flows
    data:
      bucket_name: flows
      credentials:
        $ref:
          block_type_slug: aws-credentials
          block_document_name: seaweedfs

- name: A plain secret
  selfhosted.prefect.block_document:
    block_type: secret
    name: smtp-password
    data:
      value: "{{ smtp_password }}"

- name: Remove a block
  selfhosted.prefect.block_document:
    block_type: secret
    name: smtp-password
    state: absent
"""

RETURN = r"""
block:
  description:
    - The block after the change (as predicted in check mode); empty after
      O(state=absent).
    - Secret fields show as C(********); references to other blocks as C($ref).
  returned: always
  type: dict
  contains:
    id:
      description: ID of the block document (missing in check mode for a new block).
      type: str
      returned: when the block exists
    name:
      description: Name of the block document.
      type: str
      returned: when O(state=present)
    block_type:
      description: Slug of the block type.
      type: str
      returned: when O(state=present)
    block_schema_version:
      description: Version of the block schema the document uses.
      type: str
      returned: when O(state=present)
    data:
      description: The block's fields, secrets masked.
      type: dict
      returned: when O(state=present)
  sample:
    id: 3b7f6a4e-3f5e-4d53-9a53-1f0e8f6f2a10
    name: seaweedfs
    block_type: aws-credentials
    block_schema_version: 0.7.12
    data:
      aws_access_key_id: prefect
      aws_secret_access_key: "********"
secret_fields:
  description: The fields the block schema declares secret.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [aws_secret_access_key]
changed_secret_fields:
  description: Secret fields whose value changed (names only).
  returned: when O(state=present)
  type: list
  elements: str
  sample: [aws_secret_access_key]
"""

import copy
from urllib.parse import quote

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import equal
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager, run_module
from ansible_collections.selfhosted.prefect.plugins.module_utils.masking import (
    changed_secret_paths,
    mask_secrets,
    masked_diff_pair,
    parse_secret_paths,
    secret_keys_in,
    secret_leaf_values,
)
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import (
    compare_versions,
    prefect_api_argument_spec,
)

REGISTER_HINT = (
    "Register it where the Python package that defines it is installed, against this server:"
    " PREFECT_API_URL=<api_url> PREFECT_API_AUTH_STRING=<user:pass> prefect block register -m <module>"
    " (for example -m prefect_aws, -m prefect_docker)."
)


def _string_leaves(value):
    found = set()
    if isinstance(value, dict):
        for item in value.values():
            found |= _string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            found |= _string_leaves(item)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        if text:
            found.add(text)
    return found


def schema_secret_paths(fields):
    """Secret paths of a block schema: its secret_fields plus write-only properties."""
    names = list(fields.get("secret_fields") or [])
    for name, prop in (fields.get("properties") or {}).items():
        if isinstance(prop, dict) and (prop.get("writeOnly") or prop.get("format") == "password"):
            names.append(name)
    return parse_secret_paths(names)


def is_reference(value):
    return isinstance(value, dict) and set(value) == {"$ref"}


def normalize_stored_data(document):
    """A stored document's data with nested block documents shown as references."""
    data = copy.deepcopy(document.get("data") or {})
    for key, ref in (document.get("block_document_references") or {}).items():
        ref_doc = (ref or {}).get("block_document") or {}
        if ref_doc.get("id"):
            data[key] = {"$ref": {"block_document_id": ref_doc["id"]}}
    return data


def pick_schema(schemas, version=None, current_schema_id=None):
    """The schema to use: the pinned version, else the current one, else the highest version."""
    if version is not None:
        matching = [s for s in schemas if s.get("version") == version]
        return matching[0] if matching else None
    if current_schema_id:
        for schema in schemas:
            if schema.get("id") == current_schema_id:
                return schema

    def key(schema):
        try:
            parsed = tuple(int(p) for p in _version_key(schema.get("version")))
        except ValueError:
            parsed = ()
        return (parsed, schema.get("created") or "")

    return max(schemas, key=key) if schemas else None


def _version_key(version):
    try:
        compare_versions(version, "0")
    except ValueError:
        return ()
    parts = str(version).split("+", maxsplit=1)[0].split(".")
    numbers = []
    for part in parts:
        digits = ""
        for char in part:
            if not char.isdigit():
                break
            digits += char
        if not digits:
            break
        numbers.append(digits)
    return numbers


class BlockModule(AnsibleModule):
    """AnsibleModule that keeps O(data) out of the target's syslog/journal entry.

    Which fields of data are secret is known only once the block schema has been read,
    after AnsibleModule has logged its invocation, so data is not logged at all.
    """

    def __init__(self, *args, **kwargs):
        super(BlockModule, self).__init__(*args, **kwargs)
        # Until the schema tells which fields are secret, every value of data is one: an
        # early failure (server unreachable, bad credentials) prints none of them.
        self.base_no_log = set(self.no_log_values)
        self.no_log_values.update(_string_leaves(self.params.get("data")))

    def _log_invocation(self):
        data = self.params.get("data")
        if data is not None:
            self.params["data"] = "NOT_LOGGING_BLOCK_DATA"
        try:
            super(BlockModule, self)._log_invocation()
        finally:
            if data is not None:
                self.params["data"] = data


class BlockDocumentManager(PrefectManager):
    def __init__(self, module, client):
        super(BlockDocumentManager, self).__init__(module, client)
        self.p = self.params
        self.secret_paths = None

    def invocation(self):
        params = dict(self.module.params)
        if params.get("data") is not None:
            if self.secret_paths is None:
                params["data"] = "(hidden: the block schema is not known)"
            else:
                params["data"] = mask_secrets(params["data"], self.secret_paths)
        return {"module_args": params}

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, invocation=self.invocation(), **kwargs)

    def exit(self, result):
        result["invocation"] = self.invocation()
        super(BlockDocumentManager, self).exit(result)

    def learn_secrets(self, schema):
        self.secret_paths = schema_secret_paths(schema.get("fields") or {})
        values = secret_leaf_values(self.p.get("data") or {}, self.secret_paths)
        self.module.no_log_values.clear()
        self.module.no_log_values.update(self.module.base_no_log)
        self.module.no_log_values.update(values)

    # -- reading ---------------------------------------------------------------
    def block_type(self):
        slug = self.p["block_type"]
        found = self.client.get_or_none("/block_types/slug/%s" % quote(slug, safe=""))
        if found is not None:
            return found
        if self.p["state"] == "absent":
            return None
        registered = sorted(t.get("slug") for t in self.client.post_paginated("/block_types/filter"))
        self.fail(
            "Block type %r is not registered on the Prefect server at %s. %s Registered types: %s."
            % (slug, self.client.api_url, REGISTER_HINT, ", ".join(registered)),
            registered_block_types=registered)
        return None

    def document(self):
        path = "/block_types/slug/%s/block_documents/name/%s" % (
            quote(self.p["block_type"], safe=""), quote(self.p["name"], safe=""))
        return self.client.get_or_none(path, params={"include_secrets": True})

    def schemas(self, block_type):
        body = {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}}
        return self.client.post_paginated("/block_schemas/filter", body)

    def resolve_references(self, data):
        resolved = {}
        for key, value in (data or {}).items():
            if is_reference(value) and isinstance(value["$ref"], dict):
                ref = value["$ref"]
                if ref.get("block_document_id"):
                    resolved[key] = {"$ref": {"block_document_id": ref["block_document_id"]}}
                    continue
                slug, name = ref.get("block_type_slug"), ref.get("block_document_name")
                if not (slug and name):
                    self.fail("data.%s: a $ref needs block_document_id, or block_type_slug and"
                              " block_document_name" % key)
                target = self.client.get_or_none("/block_types/slug/%s/block_documents/name/%s"
                                                 % (quote(slug, safe=""), quote(name, safe="")))
                if target is None:
                    self.fail("data.%s refers to block %s/%s, which does not exist on the server"
                              % (key, slug, name))
                resolved[key] = {"$ref": {"block_document_id": target["id"]}}
            else:
                resolved[key] = copy.deepcopy(value)
        return resolved

    def validate(self, schema, data):
        fields = schema.get("fields") or {}
        properties = fields.get("properties") or {}
        if properties and fields.get("additionalProperties") is not True:
            unknown = sorted(set(data) - set(properties))
            if unknown:
                self.fail("data has field(s) that block type %r (schema %s) does not define: %s. Its fields: %s"
                          % (self.p["block_type"], schema.get("version"), ", ".join(unknown),
                             ", ".join(sorted(properties))))
        missing = sorted(f for f in fields.get("required") or [] if f not in data)
        if missing:
            self.fail("data lacks field(s) required by block type %r: %s"
                      % (self.p["block_type"], ", ".join(missing)))

    # -- main ------------------------------------------------------------------
    def describe(self, document, schema, data, block_type):
        described = {
            "name": self.p["name"],
            "block_type": block_type["slug"],
            "block_schema_version": schema.get("version"),
            "data": mask_secrets(data, self.secret_paths or []),
        }
        if document and document.get("id"):
            described["id"] = document["id"]
        return described

    def header(self, block_type):
        return "block %s/%s" % (block_type["slug"], self.p["name"])

    def absent(self):
        block_type = self.block_type()
        document = self.document() if block_type is not None else None
        if document is None:
            self.secret_paths = []
            return self.result(False, block={})
        schema = document.get("block_schema") or {}
        self.learn_secrets(schema)
        if not self.check_mode:
            self.client.delete_if_exists("/block_documents/%s" % document["id"])
        before = self.describe(document, schema, normalize_stored_data(document), block_type)
        return self.result(True, before, {}, self.header(block_type), block={})

    def present(self):
        check = self.check_mode
        block_type = self.block_type()
        document = self.document()
        schemas = self.schemas(block_type)
        schema = pick_schema(schemas, self.p["block_schema_version"],
                             document.get("block_schema_id") if document else None)
        if schema is None:
            versions = sorted(set(str(s.get("version")) for s in schemas))
            if self.p["block_schema_version"] is not None:
                self.fail("Block type %r has no schema version %r on the server; it has: %s"
                          % (self.p["block_type"], self.p["block_schema_version"], ", ".join(versions) or "none"))
            self.fail("Block type %r has no schema registered on the server. %s" % (self.p["block_type"], REGISTER_HINT))
        self.learn_secrets(schema)
        current_data = normalize_stored_data(document) if document else None
        if self.p["data"] is None:
            desired = copy.deepcopy(current_data) if document else {}
        else:
            desired = self.resolve_references(self.p["data"])
        self.validate(schema, desired)
        schema_changes = document is not None and document.get("block_schema_id") != schema["id"]
        if document is None:
            changed = True
            new_document = None
            if not check:
                new_document = self.client.post("/block_documents/", {
                    "name": self.p["name"],
                    "block_type_id": block_type["id"],
                    "block_schema_id": schema["id"],
                    "data": desired,
                })
            changed_secrets = secret_keys_in(desired, self.secret_paths)
        else:
            changed = schema_changes or not equal(desired, current_data)
            new_document = document
            changed_secrets = changed_secret_paths(desired, current_data, self.secret_paths)
            if changed and not check:
                body = {"data": desired, "merge_existing_data": False}
                if schema_changes:
                    body["block_schema_id"] = schema["id"]
                self.client.patch("/block_documents/%s" % document["id"], body)

        # The diff shows secrets masked, a changed one as "******** (changed)".
        before_data, after_data = masked_diff_pair(current_data, desired, self.secret_paths)
        before = None
        if document is not None:
            before = self.describe(document, (document or {}).get("block_schema") or {}, current_data, block_type)
            before["data"] = before_data
        block = self.describe(new_document, schema, desired, block_type)
        after = dict(block, data=after_data)
        return self.result(
            changed, before, after, self.header(block_type),
            block=block,
            secret_fields=[".".join(p) for p in self.secret_paths],
            changed_secret_fields=changed_secrets if changed else [],
        )


def main():
    argument_spec = prefect_api_argument_spec()
    argument_spec.update(
        block_type=dict(type="str", required=True),
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        data=dict(type="dict"),
        block_schema_version=dict(type="str"),
    )
    module = BlockModule(argument_spec=argument_spec, supports_check_mode=True)
    run_module(module, BlockDocumentManager)


if __name__ == "__main__":
    main()
