# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""scripts/check-collection on small fake collections: each rule fails when it should and passes
when the tree is right."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "check-collection"


def _load():
    loader = importlib.machinery.SourceFileLoader("check_collection", str(SCRIPT))
    spec = importlib.util.spec_from_loader("check_collection", loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


cc = _load()

GALAXY = """\
namespace: selfhosted
name: prefect
version: 0.1.0
dependencies:
  community.docker: ">=3.10.0"
"""
REQUIREMENTS = """\
collections:
  - name: community.docker
    version: ">=3.10.0"
"""
TASKS = """\
- name: A container
  community.docker.docker_container:
    name: x
"""
SPECS = """\
argument_specs:
  main:
    short_description: A role.
    options:
      demo_port:
        type: int
        default: 4200
        description: Port.
      demo_name:
        type: str
        default: "{{ inventory_hostname }}-demo"
        description: Name.
      demo_enabled:
        type: bool
        default: true
        description: On or off.
      demo_host:
        type: str
        required: true
        description: Host.
      demo_proxy:
        type: str
        description: Proxy URL; none when not set.
      demo_limit:
        type: int
        description: A limit; none when null.
      demo_password:
        type: str
        default: ""
        no_log: true
        description: Password; generated when empty.
"""
DEFAULTS = """\
demo_port: 4200
demo_name: "{{ inventory_hostname }}-demo"
demo_enabled: true
demo_limit: null
demo_password: ""
_demo_internal: 1
"""


def write(root, files):
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def tree(tmp_path, **overrides):
    files = {
        "galaxy.yml": GALAXY,
        "requirements.yml": REQUIREMENTS,
        "roles/demo/tasks/main.yml": TASKS,
        "roles/demo/meta/argument_specs.yml": SPECS,
        "roles/demo/defaults/main.yml": DEFAULTS,
        "playbooks/site.yml": "- hosts: all\n  roles:\n    - selfhosted.prefect.demo\n",
    }
    files.update({k.replace("__", "/").replace("_DOT_", "."): v for k, v in overrides.items()})
    write(tmp_path, {k: v for k, v in files.items() if v is not None})
    return cc.Checker(str(tmp_path)).run()


def only(problems, word):
    return [p for p in problems if word in p]


def test_a_good_tree_passes(tmp_path):
    assert tree(tmp_path) == []


def test_script_exit_codes(tmp_path):
    tree(tmp_path)
    ok = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (tmp_path / "roles/demo/defaults/main.yml").write_text(DEFAULTS + "demo_extra: 1\n")
    bad = subprocess.run([sys.executable, str(SCRIPT), str(tmp_path)], capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == [
        "roles/demo/defaults/main.yml: demo_extra is not an option of the main entry point in "
        "roles/demo/meta/argument_specs.yml"]


# -- a. dependencies -----------------------------------------------------------------------
@pytest.mark.parametrize("tasks, word", [
    ("- name: t\n  community.crypto.openssl_privatekey:\n    path: /x\n", "community.crypto.openssl_privatekey"),
    ("- name: b\n  block:\n    - name: ok\n      ansible.builtin.debug:\n  rescue:\n"
     "    - name: r\n      community.crypto.x509_certificate:\n        path: /x\n",
     "community.crypto.x509_certificate"),
    ("- name: b\n  block: []\n  always:\n    - name: a\n      community.crypto.x509_certificate: {}\n",
     "community.crypto.x509_certificate"),
    ("- name: i\n  ansible.builtin.include_role:\n    name: community.crypto.something\n",
     "include_role community.crypto.something"),
    ("- name: i\n  import_role:\n    name: community.crypto.something\n", "import_role community.crypto.something"),
    ("- name: l\n  ansible.builtin.debug:\n    msg: \"{{ lookup('community.crypto.gpg_fingerprint', 'x') }}\"\n",
     "community.crypto.gpg_fingerprint"),
    ("- name: f\n  ansible.builtin.set_fact:\n    x: \"{{ y | community.crypto.split_pem }}\"\n",
     "community.crypto.split_pem"),
    ("- name: w\n  ansible.builtin.debug:\n  when: x is community.crypto.foo\n", "community.crypto.foo"),
    ("- name: c\n  collections: [community.crypto]\n  ansible.builtin.debug:\n", "collections: community.crypto"),
    ("- name: a\n  action: community.crypto.openssl_dhparam path=/x\n", "community.crypto.openssl_dhparam"),
    ("- name: md\n  module_defaults:\n    group/community.crypto.acme: {}\n  ansible.builtin.debug:\n",
     "group/community.crypto.acme"),
])
def test_undeclared_collection_in_tasks(tmp_path, tasks, word):
    problems = tree(tmp_path, roles__demo__tasks__extra_DOT_yml=TASKS + tasks)
    assert len(problems) == 1, problems
    assert problems[0].startswith("roles/demo/tasks/extra.yml: uses community.crypto (")
    assert word in problems[0] and "does not declare" in problems[0]


def test_undeclared_collection_in_handlers_playbooks_templates_and_meta(tmp_path):
    problems = tree(
        tmp_path,
        roles__demo__handlers__main_DOT_yml="- name: h\n  community.general.ufw: {}\n",
        playbooks__site_DOT_yml="- hosts: all\n  roles:\n    - role: community.network.thing\n"
                                "  post_tasks:\n    - name: p\n      ansible.posix.sysctl: {}\n",
        roles__demo__templates__conf_DOT_j2="{{ x | community.dns.quote_txt }}\n",
        roles__demo__meta__main_DOT_yml="dependencies:\n  - role: community.aws.something\n",
        site_DOT_yml="- hosts: all\n  collections: [community.mysql]\n  tasks: []\n",
    )
    assert sorted(p.split(" (")[0] for p in problems) == [
        "playbooks/site.yml: uses ansible.posix",
        "playbooks/site.yml: uses community.network",
        "roles/demo/handlers/main.yml: uses community.general",
        "roles/demo/meta/main.yml: uses community.aws",
        "roles/demo/templates/conf.j2: uses community.dns",
        "site.yml: uses community.mysql",
        # the demo role's own tasks still use community.docker: declared, so no problem
    ]


def test_unused_declared_dependency(tmp_path):
    problems = tree(tmp_path, roles__demo__tasks__main_DOT_yml="- name: t\n  ansible.builtin.debug:\n")
    assert problems == ["galaxy.yml: dependency community.docker is declared but no role or playbook uses it"]


def test_requirements_must_match_galaxy(tmp_path):
    problems = tree(tmp_path, requirements_DOT_yml="collections:\n  - name: community.docker\n"
                                                   "    version: '>=3.0.0'\n  - name: community.crypto\n")
    assert problems == [
        "requirements.yml: lists community.crypto, which galaxy.yml does not declare",
        "requirements.yml: community.docker version '>=3.0.0' differs from galaxy.yml's '>=3.10.0'",
    ]


def test_module_args_and_jinja_in_plain_text_do_not_count(tmp_path):
    tasks = TASKS + ("- name: labels are not uses\n  community.docker.docker_container:\n    name: y\n"
                     "    labels:\n      io.selfhosted.prefect.tenant: x\n    command: echo a.b.c\n"
                     "  vars:\n    v: !unsafe '{{ raw }}'\n")
    assert tree(tmp_path, roles__demo__tasks__main_DOT_yml=tasks) == []


# -- b. defaults vs argument_specs ----------------------------------------------------------
def test_default_value_mismatches(tmp_path):
    defaults = DEFAULTS.replace("demo_port: 4200", "demo_port: '4200'")
    defaults = defaults.replace("demo_enabled: true", "demo_enabled: 1")
    problems = tree(tmp_path, roles__demo__defaults__main_DOT_yml=defaults)
    assert problems == [
        "roles/demo/meta/argument_specs.yml: main: option demo_enabled: default True differs from 1 in "
        "roles/demo/defaults/main.yml",
        "roles/demo/meta/argument_specs.yml: main: option demo_port: default 4200 differs from '4200' in "
        "roles/demo/defaults/main.yml",
    ]


def test_templated_default_compared_as_string(tmp_path):
    defaults = DEFAULTS.replace("-demo", "-other")
    assert len(only(tree(tmp_path, roles__demo__defaults__main_DOT_yml=defaults), "demo_name: default")) == 1


def test_default_missing_in_spec_or_in_defaults(tmp_path):
    specs = SPECS.replace("        default: 4200\n", "")
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs)
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option demo_port has no default but "
                        "roles/demo/defaults/main.yml sets 4200"]
    defaults = DEFAULTS.replace("demo_port: 4200\n", "")
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=SPECS,
                    roles__demo__defaults__main_DOT_yml=defaults)
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option demo_port: default 4200 is not in "
                        "roles/demo/defaults/main.yml (argument_specs defaults are not applied)"]


def test_optional_option_needs_a_description(tmp_path):
    specs = SPECS.replace("        description: Proxy URL; none when not set.\n", "")
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs)
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option demo_proxy has no default, is not "
                        "required and has no description"]


def test_required_with_default_or_defaults_value(tmp_path):
    specs = SPECS.replace("        required: true\n", "        required: true\n        default: h\n")
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs)
    assert only(problems, "is required and has a default")
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=SPECS,
                    roles__demo__defaults__main_DOT_yml=DEFAULTS + "demo_host: h\n")
    assert only(problems, "demo_host has no default but")
    assert only(problems, "demo_host is required but roles/demo/defaults/main.yml gives it a value")


def test_role_without_specs_and_other_entry_points(tmp_path):
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=None,
                    roles__bare__defaults__main_DOT_yml="bare_x: 1\n_bare_internal: 2\n")
    assert "roles/bare/defaults/main.yml: the role has defaults but no meta/argument_specs.yml" in problems
    other = SPECS + "  " + textwrap.dedent("""\
      wait:
        short_description: Wait.
        options:
          _demo_wait_url:
            type: str
            required: true
            description: URL.
          _demo_wait_timeout:
            type: int
            default: 120
            description: Seconds.
          _demo_wait_ca:
            type: path
    """).replace("\n", "\n  ").rstrip() + "\n"
    problems = tree(tmp_path / "two", roles__demo__meta__argument_specs_DOT_yml=other)
    # no defaults/wait.yml: a spec default is accepted, an undescribed optional option is not
    assert problems == ["roles/demo/meta/argument_specs.yml: wait: option _demo_wait_ca has no default, is not "
                        "required and has no description"]
    problems = tree(tmp_path / "three", roles__demo__meta__argument_specs_DOT_yml=other.replace(
        "        type: path\n", "        type: path\n        description: CA.\n"),
        roles__demo__defaults__wait_DOT_yml="_demo_wait_timeout: 60\nwait_public: 1\n")
    assert problems == [
        "roles/demo/defaults/wait.yml: wait_public is not an option of the wait entry point in "
        "roles/demo/meta/argument_specs.yml",
        "roles/demo/meta/argument_specs.yml: wait: option _demo_wait_timeout: default 120 differs from 60 in "
        "roles/demo/defaults/wait.yml",
    ]


def test_specs_in_meta_main(tmp_path):
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=None,
                    roles__demo__meta__main_DOT_yml="galaxy_info: {}\n" + SPECS)
    assert problems == []


# -- c. secrets -----------------------------------------------------------------------------
def test_secret_option_without_no_log(tmp_path):
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=SPECS.replace("        no_log: true\n", ""))
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option demo_password holds a secret but has no "
                        "no_log: true"]


@pytest.mark.parametrize("name", ["demo_admin_password_file", "demo_secret", "demo_api_key", "demo_auth_string",
                                  "demo_token", "demo_db_password"])
def test_secret_options_need_no_log(tmp_path, name):
    specs = SPECS + "      %s:\n        type: str\n        description: A secret.\n" % name
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs)
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option %s holds a secret but has no "
                        "no_log: true" % name]
    fixed = specs.replace("description: A secret.", "description: A secret.\n        no_log: true")
    assert tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=fixed) == []


@pytest.mark.parametrize("name", ["demo_key_path", "demo_secret_dir", "demo_tokens_file", "demo_monkey"])
def test_names_that_are_not_secrets(tmp_path, name):
    specs = SPECS + "      %s:\n        type: str\n        description: Not a secret.\n" % name
    assert tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs) == []


def test_secret_suboptions_need_no_log(tmp_path):
    specs = SPECS + "\n".join("      " + line if line else line for line in textwrap.dedent("""\
        demo_users:
          type: list
          elements: dict
          description: Users.
          options:
            name:
              type: str
              description: Name.
            password:
              type: str
              description: Password.
            key_path:
              type: path
              description: Not a secret.
        """).splitlines()) + "\n"
    problems = tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs)
    assert problems == ["roles/demo/meta/argument_specs.yml: main: option demo_users.password holds a secret "
                        "but has no no_log: true"]
    assert tree(tmp_path, roles__demo__meta__argument_specs_DOT_yml=specs.replace(
        "description: Password.", "description: Password.\n            no_log: true")) == []


def test_helpers():
    assert cc.collection_of("community.docker.docker_container") == "community.docker"
    assert cc.collection_of("group/community.crypto.acme") == "community.crypto"
    assert cc.collection_of("debug") is None
    assert cc.collection_of("a.b") is None
    assert cc.same_value({"a": [1, "x"]}, {"a": [1, "x"]})
    assert not cc.same_value(True, 1) and not cc.same_value(0, False)
    assert not cc.same_value("15", 15)
    assert cc.same_value(" {{ x }}\n", "{{ x }}")
