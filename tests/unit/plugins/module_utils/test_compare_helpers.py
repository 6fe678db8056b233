# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Template merge, worker metadata, diffs and secret handling (pure functions)."""

from __future__ import annotations

import copy
import json

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import diff, job_template, masking

PROCESS_TEMPLATE = {
    "job_configuration": {"command": "{{ command }}", "env": "{{ env }}", "working_dir": "{{ working_dir }}"},
    "variables": {
        "type": "object",
        "properties": {
            "command": {"type": "string", "title": "Command"},
            "env": {"type": "object", "title": "Environment Variables", "additionalProperties": {"type": "string"}},
            "working_dir": {"type": "string", "format": "path"},
            "stream_output": {"type": "boolean", "default": True},
        },
    },
}

METADATA = {
    "prefect": {
        "process": {"type": "process", "display_name": "Process",
                    "default_base_job_configuration": PROCESS_TEMPLATE},
        "prefect-agent": {"type": "prefect-agent", "default_base_job_configuration": {}},
    },
    "prefect-docker": {"docker": {"type": "docker", "default_base_job_configuration": {"job_configuration": {}}}},
}


# -- merge ------------------------------------------------------------------------
def test_deep_merge_recurses_and_replaces_lists():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    override = {"a": {"c": [3], "e": {"f": 1}}, "g": None}
    merged = job_template.deep_merge(base, override)
    assert merged == {"a": {"b": 1, "c": [3], "e": {"f": 1}}, "d": 1, "g": None}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}


def test_deep_merge_does_not_share_objects():
    override = {"x": {"y": [1]}}
    merged = job_template.deep_merge({}, override)
    merged["x"]["y"].append(2)
    assert override == {"x": {"y": [1]}}


def test_deep_merge_non_dicts():
    assert job_template.deep_merge({"a": 1}, None) == {"a": 1}
    assert job_template.deep_merge(None, {"a": 1}) == {"a": 1}
    assert job_template.deep_merge({"a": {"b": 1}}, {"a": 5}) == {"a": 5}


def test_apply_job_variables_sets_defaults():
    original = copy.deepcopy(PROCESS_TEMPLATE)
    result = job_template.apply_job_variables(PROCESS_TEMPLATE, {"working_dir": "/flows", "env": {"A": "1"}})
    props = result["variables"]["properties"]
    assert props["working_dir"]["default"] == "/flows"
    assert props["env"]["default"] == {"A": "1"}
    assert props["stream_output"]["default"] is True
    assert result["job_configuration"] == PROCESS_TEMPLATE["job_configuration"]
    assert PROCESS_TEMPLATE == original


def test_apply_job_variables_merges_dict_defaults_and_replaces_others():
    template = copy.deepcopy(PROCESS_TEMPLATE)
    template["variables"]["properties"]["env"]["default"] = {"A": "1", "B": "2"}
    result = job_template.apply_job_variables(template, {"env": {"B": "3", "C": "4"}, "stream_output": False})
    assert result["variables"]["properties"]["env"]["default"] == {"A": "1", "B": "3", "C": "4"}
    assert result["variables"]["properties"]["stream_output"]["default"] is False


def test_apply_job_variables_unknown_name_lists_known_ones():
    with pytest.raises(job_template.TemplateError) as info:
        job_template.apply_job_variables(PROCESS_TEMPLATE, {"image": "x", "bogus": 1})
    message = str(info.value)
    assert "bogus, image" in message
    assert "command, env, stream_output, working_dir" in message


def test_apply_job_variables_without_variables_section():
    with pytest.raises(job_template.TemplateError, match="declares no variables"):
        job_template.apply_job_variables({}, {"image": "x"})
    assert job_template.apply_job_variables({}, None) == {}
    assert job_template.apply_job_variables(PROCESS_TEMPLATE, {}) == PROCESS_TEMPLATE


def test_template_variable_names():
    assert job_template.template_variable_names(PROCESS_TEMPLATE) == ["command", "env", "stream_output", "working_dir"]
    assert job_template.template_variable_names({}) == []


# -- worker metadata ------------------------------------------------------------------
def test_known_worker_types_skips_agent_and_names_collection():
    types = job_template.known_worker_types(METADATA)
    assert sorted(types) == ["docker", "process"]
    assert types["docker"]["collection"] == "prefect-docker"


def test_default_base_job_template_is_a_copy():
    template = job_template.default_base_job_template(METADATA, "process")
    assert template == PROCESS_TEMPLATE
    template["variables"]["properties"].clear()
    assert METADATA["prefect"]["process"]["default_base_job_configuration"]["variables"]["properties"]
    assert job_template.default_base_job_template(METADATA, "kubernetes") is None
    assert job_template.known_worker_types(None) == {}


def test_bundled_metadata_of_installed_prefect_if_available():
    """The JSON the server falls back to offline has the types the module documents."""
    try:
        from prefect.server.api import collections  # pylint: disable=import-outside-toplevel
    except ImportError:
        pytest.skip("prefect is not installed")
    import os  # pylint: disable=import-outside-toplevel
    path = os.path.join(os.path.dirname(collections.__file__), "collections_data", "views",
                        "aggregate-worker-metadata.json")
    with open(path) as handle:
        metadata = json.load(handle)
    types = job_template.known_worker_types(metadata)
    assert {"process", "docker", "kubernetes"} <= set(types)
    process = job_template.default_base_job_template(metadata, "process")
    result = job_template.apply_job_variables(process, {"working_dir": "/flows"})
    assert result["variables"]["properties"]["working_dir"]["default"] == "/flows"


# -- differences ----------------------------------------------------------------------
def test_changed_paths():
    before = {"a": 1, "b": {"c": 1, "d": 2}, "e": [1]}
    after = {"a": 1, "b": {"c": 2, "d": 2, "x": 0}, "e": [1, 2], "f": None}
    assert diff.changed_paths(before, after) == ["b.c", "b.x", "e", "f"]
    assert diff.changed_paths(before, copy.deepcopy(before)) == []


def test_equal_distinguishes_bool_and_int_but_not_int_and_float():
    assert not diff.equal({"a": True}, {"a": 1})
    assert not diff.equal(0, False)
    assert diff.equal({"a": 1}, {"a": 1.0})
    assert diff.equal(None, None)
    assert not diff.equal(None, {})


def test_is_subset():
    assert diff.is_subset({"a": {"b": 1}}, {"a": {"b": 1, "c": 2}, "d": 3})
    assert not diff.is_subset({"a": {"b": 2}}, {"a": {"b": 1}})
    assert not diff.is_subset({"a": 1}, {})
    assert not diff.is_subset({"a": 1}, None)


def test_build_diff():
    built = diff.build_diff({"b": 1, "a": 2}, None, before_header="x")
    assert built == {"before": {"a": 2, "b": 1}, "after": {}, "before_header": "x"}
    assert list(built["before"]) == ["a", "b"]


# -- secrets --------------------------------------------------------------------------
SECRETS = masking.parse_secret_paths(["password", "credentials.aws_secret_access_key", "headers.*", "password"])


def test_parse_secret_paths():
    assert SECRETS == [("credentials", "aws_secret_access_key"), ("headers", "*"), ("password",)]
    assert masking.parse_secret_paths(None) == []


@pytest.mark.parametrize("path, secret", [
    (("password",), True),
    (("password", "inner"), True),
    (("username",), False),
    (("credentials", "aws_secret_access_key"), True),
    (("credentials", "aws_access_key_id"), False),
    (("credentials",), False),
    (("headers", "Authorization"), True),
    (("headers",), False),
])
def test_is_secret_path(path, secret):
    assert masking.is_secret_path(path, SECRETS) is secret


def test_mask_secrets():
    data = {"username": "u", "password": "p4ss",
            "credentials": {"aws_access_key_id": "id", "aws_secret_access_key": "k3y"},
            "headers": {"Authorization": "Bearer t0k", "X": "y"}}
    masked = masking.mask_secrets(data, SECRETS)
    assert masked == {"username": "u", "password": "********",
                      "credentials": {"aws_access_key_id": "id", "aws_secret_access_key": "********"},
                      "headers": {"Authorization": "********", "X": "********"}}
    assert data["password"] == "p4ss"
    assert masking.mask_secrets({"password": {"nested": "x"}}, SECRETS) == {"password": "********"}
    assert masking.mask_secrets(data, []) == data


def test_secret_leaf_values():
    data = {"username": "u", "password": {"a": "one", "b": 2}, "headers": {"H": "two"}}
    values = masking.secret_leaf_values(data, SECRETS)
    assert {"one", "2", "two"} <= values
    assert "u" not in values


def test_secret_keys_in():
    data = {"password": "x", "credentials": {"$ref": {"block_document_id": "1"}}, "headers": {"A": "1"}}
    assert masking.secret_keys_in(data, SECRETS) == ["headers.A", "password"]


def test_changed_secret_paths():
    before = {"username": "u", "password": "old", "headers": {"A": "1"}}
    after = {"username": "v", "password": "new", "headers": {"A": "1", "B": "2"}}
    assert masking.changed_secret_paths(after, before, SECRETS) == ["headers.B", "password"]
    assert masking.changed_secret_paths(before, before, SECRETS) == []


def test_changed_secret_paths_whole_parent_added():
    before = {}
    after = {"credentials": {"aws_secret_access_key": "k"}}
    assert masking.changed_secret_paths(after, before, SECRETS) == ["credentials"]


def test_masked_diff_pair_never_shows_secret_values():
    before = {"username": "u", "password": "old-secret"}
    after = {"username": "u", "password": "new-secret"}
    masked_before, masked_after = masking.masked_diff_pair(before, after, SECRETS)
    assert masked_before == {"username": "u", "password": "********"}
    assert masked_after == {"username": "u", "password": "******** (changed)"}
    assert "old-secret" not in json.dumps([masked_before, masked_after])
    assert "new-secret" not in json.dumps([masked_before, masked_after])


def test_masked_diff_pair_unchanged_secret():
    data = {"password": "same"}
    assert masking.masked_diff_pair(data, dict(data), SECRETS) == ({"password": "********"}, {"password": "********"})
    assert masking.masked_diff_pair(None, data, SECRETS) == (None, {"password": "********"})


class _FakeModule(object):
    def __init__(self, diff_mode):
        self._diff = diff_mode


def test_module_result_adds_the_diff_only_with_diff_mode():
    plain = diff.module_result(_FakeModule(False), 1, {"a": 1}, {"a": 2}, "x", thing={"a": 2})
    assert plain == {"changed": True, "thing": {"a": 2}}
    shown = diff.module_result(_FakeModule(True), False, None, {"a": 2}, "pool p", thing={})
    assert shown["changed"] is False
    assert shown["diff"] == {"before": {}, "after": {"a": 2}, "before_header": "pool p", "after_header": "pool p"}
