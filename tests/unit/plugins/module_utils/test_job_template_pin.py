# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""pin_job_variables: job variables a deployment or a flow run can no longer override."""

from __future__ import annotations

import copy

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import job_template

# The shape of prefect-docker 0.7's default template (the parts that matter here).
DOCKER_TEMPLATE = {
    "job_configuration": {
        "image": "{{ image }}",
        "privileged": "{{ privileged }}",
        "volumes": "{{ volumes }}",
        "network_mode": "{{network_mode}}",
        "networks": "{{ networks }}",
        "labels": {"flow": "{{ flow_name }}"},
        "name": "{{ name }}-{{ flow_name }}",
    },
    "variables": {
        "type": "object",
        "required": ["image", "privileged"],
        "properties": {
            "image": {"type": "string"},
            "privileged": {"type": "boolean", "default": False},
            "volumes": {"type": "array", "default": []},
            "network_mode": {"type": "string"},
            "networks": {"type": "array", "default": []},
            "name": {"type": "string"},
            "flow_name": {"type": "string"},
        },
    },
}


def test_pinned_values_replace_placeholders_and_leave_the_schema():
    pinned = job_template.pin_job_variables(
        DOCKER_TEMPLATE, {"privileged": False, "volumes": [], "network_mode": None, "networks": ["stack"]})
    config = pinned["job_configuration"]
    assert config["privileged"] is False
    assert config["volumes"] == []
    assert config["network_mode"] is None  # no spaces inside the braces: still found
    assert config["networks"] == ["stack"]
    assert config["image"] == "{{ image }}"
    props = pinned["variables"]["properties"]
    assert sorted(props) == ["flow_name", "image", "name"]
    assert pinned["variables"]["required"] == ["image"]


def test_input_is_not_modified_and_nothing_pinned_is_a_copy():
    before = copy.deepcopy(DOCKER_TEMPLATE)
    job_template.pin_job_variables(DOCKER_TEMPLATE, {"privileged": False})
    assert DOCKER_TEMPLATE == before
    assert job_template.pin_job_variables(DOCKER_TEMPLATE, {}) == DOCKER_TEMPLATE


def test_placeholder_inside_a_string_takes_a_scalar_only():
    pinned = job_template.pin_job_variables(DOCKER_TEMPLATE, {"flow_name": "etl"})
    assert pinned["job_configuration"]["name"] == "{{ name }}-etl"
    assert pinned["job_configuration"]["labels"] == {"flow": "etl"}
    with pytest.raises(job_template.TemplateError, match="inside the string"):
        job_template.pin_job_variables(DOCKER_TEMPLATE, {"flow_name": ["a"]})


def test_unknown_name_is_refused_with_the_declared_ones():
    with pytest.raises(job_template.TemplateError) as info:
        job_template.pin_job_variables(DOCKER_TEMPLATE, {"priviledged": False})
    assert "priviledged" in str(info.value)
    assert "privileged" in str(info.value).split("declares:")[1]


def test_pinning_twice_gives_the_same_template():
    once = job_template.pin_job_variables(DOCKER_TEMPLATE, {"privileged": False, "volumes": []})
    # A pinned template no longer declares the variable nor uses it: pinning it again fails
    # loudly instead of silently doing nothing, so callers pin the server's default template.
    with pytest.raises(job_template.TemplateError):
        job_template.pin_job_variables(once, {"privileged": False})
