# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Pure helpers inside the work_pool, block and info modules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.selfhosted.prefect.plugins.modules import block_document as block, server_info as info, work_pool


# -- info ------------------------------------------------------------------------------
NOW = datetime(2026, 1, 31, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("value, expected", [
    ("30m", NOW - timedelta(minutes=30)),
    ("24h", NOW - timedelta(hours=24)),
    ("7d", NOW - timedelta(days=7)),
    ("2w", NOW - timedelta(weeks=2)),
    ("45s", NOW - timedelta(seconds=45)),
    ("2026-01-30T00:00:00Z", datetime(2026, 1, 30, tzinfo=timezone.utc)),
    ("2026-01-30T02:00:00+02:00", datetime(2026, 1, 30, tzinfo=timezone.utc)),
    ("2026-01-30T00:00:00", datetime(2026, 1, 30, tzinfo=timezone.utc)),
])
def test_parse_since(value, expected):
    assert info.parse_since(value, now=NOW) == expected


@pytest.mark.parametrize("value", ["yesterday", "", "5y", "-1h"])
def test_parse_since_refuses(value):
    with pytest.raises(ValueError, match="flow_runs_since"):
        info.parse_since(value, now=NOW)


# -- block -----------------------------------------------------------------------------
SCHEMAS = [
    {"id": "old-bundled", "version": "0.4.14", "created": "2026-01-02T00:00:00Z"},
    {"id": "installed", "version": "0.7.12", "created": "2026-01-01T00:00:00Z"},
    {"id": "core", "version": "non-versioned", "created": "2026-01-03T00:00:00Z"},
]


def test_pick_schema_highest_version_by_default():
    assert block.pick_schema(SCHEMAS)["id"] == "installed"


def test_pick_schema_pinned_and_current():
    assert block.pick_schema(SCHEMAS, version="0.4.14")["id"] == "old-bundled"
    assert block.pick_schema(SCHEMAS, version="9.9.9") is None
    assert block.pick_schema(SCHEMAS, current_schema_id="old-bundled")["id"] == "old-bundled"
    assert block.pick_schema([]) is None


def test_schema_secret_paths_include_write_only_properties():
    fields = {
        "secret_fields": ["credentials.aws_secret_access_key"],
        "properties": {"token": {"type": "string", "writeOnly": True}, "pw": {"format": "password"},
                       "name": {"type": "string"}},
    }
    assert block.schema_secret_paths(fields) == [("credentials", "aws_secret_access_key"), ("pw",), ("token",)]


def test_normalize_stored_data_shows_references():
    document = {
        "data": {"bucket_name": "b", "credentials": {"aws_secret_access_key": "inlined-secret"}},
        "block_document_references": {"credentials": {"block_document": {"id": "abc"}}},
    }
    assert block.normalize_stored_data(document) == {
        "bucket_name": "b", "credentials": {"$ref": {"block_document_id": "abc"}}}


def test_is_reference():
    assert block.is_reference({"$ref": {"block_document_id": "x"}})
    assert not block.is_reference({"$ref": {}, "other": 1})
    assert not block.is_reference("x")


# -- work_pool --------------------------------------------------------------------------
def test_limit_minus_one_removes():
    assert work_pool._limit(-1) is None  # pylint: disable=protected-access
    assert work_pool._limit(0) == 0  # pylint: disable=protected-access
    assert work_pool._limit(None) is None  # pylint: disable=protected-access


def test_desired_queue_fields_only_given_ones():
    spec = {"name": "q", "description": None, "priority": 2, "concurrency_limit": -1, "paused": False}
    assert work_pool.desired_queue_fields(spec) == {"priority": 2, "concurrency_limit": None, "is_paused": False}


def test_pool_snapshot():
    pool = {"name": "p", "type": "process", "description": None, "is_paused": False, "concurrency_limit": 2,
            "base_job_template": None, "id": "x", "status": "READY"}
    queues = [{"name": "default", "priority": 1, "description": "d", "concurrency_limit": None,
               "is_paused": False, "id": "q"}]
    snap = work_pool.pool_snapshot(pool, queues)
    assert snap == {"name": "p", "type": "process", "description": None, "is_paused": False,
                    "concurrency_limit": 2, "base_job_template": {},
                    "queues": {"default": {"description": "d", "priority": 1, "concurrency_limit": None,
                                           "is_paused": False}}}
    assert work_pool.pool_snapshot(None, []) == {}


def test_block_data_is_not_logged_on_the_target(monkeypatch):
    seen = {}

    def fake_log_invocation(self):
        seen.update(self.params)

    monkeypatch.setattr(block.AnsibleModule, "_log_invocation", fake_log_invocation)
    module = object.__new__(block.BlockModule)
    module.params = {"name": "x", "data": {"value": "s3cr3t"}}
    module._log_invocation()  # pylint: disable=protected-access
    assert seen == {"name": "x", "data": "NOT_LOGGING_BLOCK_DATA"}
    assert module.params["data"] == {"value": "s3cr3t"}
