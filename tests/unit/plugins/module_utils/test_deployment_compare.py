# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the deployment module's pure logic (schedules, fields, pull steps, S3 plans and signing)."""

from __future__ import annotations

import datetime
import hashlib
import os
import sys
import tempfile

import pytest

try:
    from ansible_collections.selfhosted.prefect.plugins.module_utils import deployment_compare as dc
except ImportError:  # run from a plain checkout: make the collection importable by its name
    _ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
    _BASE = tempfile.mkdtemp(prefix="shp-unit-")
    os.makedirs(os.path.join(_BASE, "ansible_collections", "selfhosted"))
    os.symlink(_ROOT, os.path.join(_BASE, "ansible_collections", "selfhosted", "prefect"))
    sys.path.insert(0, _BASE)
    from ansible_collections.selfhosted.prefect.plugins.module_utils import deployment_compare as dc

from ansible_collections.selfhosted.prefect.plugins.module_utils import deployment_s3 as s3  # noqa: E402


def api_schedule(schedule, id_="s1", created="2026-01-01T00:00:00Z", active=True, parameters=None, slug=None,
                 max_scheduled_runs=None):
    return {
        "id": id_, "created": created, "updated": created, "deployment_id": "d1",
        "schedule": schedule, "active": active, "parameters": parameters or {}, "slug": slug,
        "max_scheduled_runs": max_scheduled_runs,
    }


# ---------------------------------------------------------------- normalisation

def test_three_times_a_day_cron():
    canon = dc.normalize_schedule({"cron": "0  8,13,18 * * *", "timezone": "Europe/Paris"})
    assert canon["kind"] == "cron"
    assert canon["cron"] == "0 8,13,18 * * *"
    assert canon["day_or"] is True and canon["active"] is True
    assert dc.schedule_api_body(canon) == {
        "active": True, "parameters": {},
        "schedule": {"cron": "0 8,13,18 * * *", "day_or": True, "timezone": "Europe/Paris"},
    }


@pytest.mark.parametrize("bad, message", [
    ({}, "exactly one of cron, interval or rrule"),
    ({"cron": "* * * * *", "interval": 60}, "exactly one"),
    ({"interval": 0}, "positive"),
    ({"interval": "soon"}, "number of seconds"),
    ({"cron": "0 8"}, "5 fields"),
    ({"cron": "0 8 * * *", "anchor_date": "2024-01-01"}, "anchor_date only applies"),
    ({"rrule": "FREQ=DAILY", "day_or": False}, "day_or only applies"),
    ({"interval": 60, "anchor_date": "yesterday"}, "ISO 8601"),
    ({"interval": 60, "colour": "blue"}, "unknown schedule key"),
    ({"interval": 60, "max_scheduled_runs": 0}, "positive integer"),
])
def test_invalid_schedules(bad, message):
    with pytest.raises(dc.ScheduleError, match=message):
        dc.normalize_schedule(bad)


def test_duplicate_slugs_refused_with_index():
    with pytest.raises(dc.ScheduleError, match=r"schedules\[1\]: slug 'a' is used twice"):
        dc.normalize_schedules([{"interval": 60, "slug": "a"}, {"interval": 120, "slug": "a"}])


def test_ansible_none_suboptions_are_ignored():
    # Ansible fills unset suboptions with None
    canon = dc.normalize_schedule({"cron": "0 8 * * *", "interval": None, "rrule": None, "anchor_date": None,
                                   "timezone": None, "day_or": None, "active": True, "parameters": None,
                                   "slug": None, "max_scheduled_runs": None})
    assert canon["kind"] == "cron" and canon["parameters"] == {} and canon["slug"] is None


@pytest.mark.parametrize("text, expected", [
    ("2024-01-01T08:00:00Z", datetime.datetime(2024, 1, 1, 8, tzinfo=datetime.timezone.utc)),
    ("2024-01-01T08:00:00+01:00", datetime.datetime(2024, 1, 1, 7, tzinfo=datetime.timezone.utc)),
    ("2024-01-01 08:00", datetime.datetime(2024, 1, 1, 8, tzinfo=datetime.timezone.utc)),
    ("2024-01-01", datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)),
    ("2026-11-26T15:02:20.600945Z", datetime.datetime(2026, 11, 26, 15, 2, 20, 600945, tzinfo=datetime.timezone.utc)),
    ("2024-01-01T08:00:00.5-0230", datetime.datetime(2024, 1, 1, 10, 30, 0, 500000, tzinfo=datetime.timezone.utc)),
])
def test_parse_datetime(text, expected):
    assert dc.parse_datetime(text) == expected


def test_interval_body_keeps_integer_seconds_and_anchor():
    canon = dc.normalize_schedule({"interval": "3600", "anchor_date": "2024-01-01T08:00:00+01:00"})
    assert dc.schedule_definition(canon) == {"interval": 3600, "anchor_date": "2024-01-01T07:00:00Z"}
    assert dc.schedule_definition(dc.normalize_schedule({"interval": 90.5})) == {"interval": 90.5}


# ---------------------------------------------------------------- comparison with the server

def test_interval_without_anchor_ignores_server_anchor():
    canon = dc.normalize_schedule({"interval": 3600})
    actual = api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20.600945Z", "timezone": "UTC"})
    assert dc.schedule_matches(canon, actual)


def test_interval_with_anchor_compares_instants():
    canon = dc.normalize_schedule({"interval": 3600, "anchor_date": "2024-01-01T08:00:00+01:00"})
    same = api_schedule({"interval": 3600.0, "anchor_date": "2024-01-01T07:00:00Z", "timezone": "UTC"})
    other = api_schedule({"interval": 3600.0, "anchor_date": "2024-01-01T08:00:00Z", "timezone": "UTC"})
    assert dc.schedule_matches(canon, same)
    assert not dc.schedule_matches(canon, other)


def test_rrule_ignores_injected_dtstart_only_when_user_gave_none():
    actual = api_schedule({"rrule": "DTSTART:20200101T000000\nFREQ=DAILY;BYHOUR=9", "timezone": "UTC"})
    assert dc.schedule_matches(dc.normalize_schedule({"rrule": "FREQ=DAILY;BYHOUR=9"}), actual)
    assert dc.schedule_matches(dc.normalize_schedule({"rrule": "RRULE:FREQ=DAILY;BYHOUR=9"}), actual)
    assert not dc.schedule_matches(dc.normalize_schedule({"rrule": "FREQ=DAILY;BYHOUR=10"}), actual)
    explicit = dc.normalize_schedule({"rrule": "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;BYHOUR=9"})
    assert not dc.schedule_matches(explicit, actual)


def test_timezone_unset_means_utc():
    canon = dc.normalize_schedule({"cron": "0 8 * * *"})
    assert dc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}))
    assert dc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": "UTC", "day_or": True}))
    assert not dc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": "Europe/Paris"}))


def test_settings_compared():
    canon = dc.normalize_schedule({"cron": "0 8 * * *", "active": False, "parameters": {"city": "Lyon"}})
    base = {"cron": "0 8 * * *", "timezone": None, "day_or": True}
    assert dc.schedule_matches(canon, api_schedule(base, active=False, parameters={"city": "Lyon"}))
    assert not dc.schedule_matches(canon, api_schedule(base, active=True, parameters={"city": "Lyon"}))
    assert not dc.schedule_matches(canon, api_schedule(base, active=False, parameters={}))
    # a slug set on the server is ignored unless the user gives one
    assert dc.schedule_matches(canon, api_schedule(base, active=False, parameters={"city": "Lyon"}, slug="x"))


# ---------------------------------------------------------------- planning

def test_plan_unchanged_keeps_everything():
    desired = dc.normalize_schedules([{"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris"}, {"interval": 3600},
                                      {"rrule": "FREQ=DAILY;BYHOUR=9"}])
    actual = [
        api_schedule({"rrule": "DTSTART:20200101T000000\nFREQ=DAILY;BYHOUR=9", "timezone": "UTC"}, "c"),
        api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC"}, "b"),
        api_schedule({"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris", "day_or": True}, "a"),
    ]
    plan = dc.plan_schedules(desired, actual)
    assert not dc.plan_has_changes(plan)
    assert sorted(a["id"] for _c, a in plan["keep"]) == ["a", "b", "c"]


def test_plan_active_change_patches_without_definition():
    desired = dc.normalize_schedules([{"interval": 3600, "active": False}])
    actual = [api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC"}, "b")]
    plan = dc.plan_schedules(desired, actual)
    assert plan["keep"] == [] and plan["create"] == [] and plan["delete"] == []
    (canon, act, definition_changed), = plan["update"]
    assert act["id"] == "b" and definition_changed is False
    body = dc.schedule_api_body(canon, for_update=True, include_definition=definition_changed)
    assert body == {"active": False, "parameters": {}}  # no "schedule": the anchor stays
    view = dc.planned_schedule_view(plan)
    assert view == [{"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC", "active": False}]


def test_plan_changed_cron_updates_same_id():
    desired = dc.normalize_schedules([{"cron": "0 9 * * *"}, {"interval": 60}])
    actual = [api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}, "a"),
              api_schedule({"interval": 60.0, "anchor_date": "2026-01-01T00:00:00Z", "timezone": "UTC"}, "b")]
    plan = dc.plan_schedules(desired, actual)
    assert [a["id"] for _c, a in plan["keep"]] == ["b"]
    assert [(a["id"], changed) for _c, a, changed in plan["update"]] == [("a", True)]


def test_plan_create_and_delete():
    desired = dc.normalize_schedules([{"rrule": "FREQ=WEEKLY"}])
    actual = [api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}, "a")]
    plan = dc.plan_schedules(desired, actual)
    assert [c["kind"] for c in plan["create"]] == ["rrule"]
    assert [a["id"] for a in plan["delete"]] == ["a"]


def test_plan_empty_list_deletes_all():
    actual = [api_schedule({"cron": "0 8 * * *"}, "a"), api_schedule({"interval": 5.0}, "b")]
    plan = dc.plan_schedules([], actual)
    assert sorted(a["id"] for a in plan["delete"]) == ["a", "b"]


def test_plan_slug_pairs_by_slug():
    desired = dc.normalize_schedules([{"cron": "0 7 * * *", "slug": "morning"}, {"cron": "0 8 * * *"}])
    actual = [api_schedule({"cron": "0 8 * * *"}, "x", created="2026-01-01T00:00:00Z"),
              api_schedule({"cron": "0 6 * * *"}, "m", created="2026-01-02T00:00:00Z", slug="morning")]
    plan = dc.plan_schedules(desired, actual)
    assert [(a["id"], changed) for _c, a, changed in plan["update"]] == [("m", True)]
    assert [a["id"] for _c, a in plan["keep"]] == ["x"]
    assert not plan["create"] and not plan["delete"]


def test_plan_duplicates_pair_one_to_one():
    desired = dc.normalize_schedules([{"interval": 60}, {"interval": 60}])
    actual = [api_schedule({"interval": 60.0}, "a")]
    plan = dc.plan_schedules(desired, actual)
    assert len(plan["keep"]) == 1 and len(plan["create"]) == 1


# ---------------------------------------------------------------- deployment fields

SERVER_DEPLOYMENT = {
    "id": "d1", "name": "three", "flow_id": "f1", "entrypoint": "weather.py:weather",
    "pull_steps": [{dc.LOCAL_PULL_STEP: {"directory": "/srv/flows"}}],
    "work_pool_name": "pool", "work_queue_name": "default", "job_variables": {},
    "parameters": {"city": "Paris"}, "parameter_openapi_schema": {"type": "object", "properties": {}},
    "enforce_parameter_schema": True, "description": None, "version": None, "tags": ["b", "a"],
    "paused": False, "concurrency_limit": None,
    "global_concurrency_limit": {"limit": 2, "name": "deployment:d1"},
    "schedules": [], "created": "x", "updated": "y", "labels": {"prefect.flow.id": "f1"},
}


def test_actual_fields_read_concurrency_from_global_limit():
    fields = dc.actual_deployment_fields(SERVER_DEPLOYMENT)
    assert fields["concurrency_limit"] == 2
    assert set(fields) == set(dc.DEPLOYMENT_FIELDS)


def test_no_changes_when_equal_and_unmanaged_ignored():
    actual = dc.actual_deployment_fields(SERVER_DEPLOYMENT)
    desired = {"entrypoint": "weather.py:weather", "pull_steps": [{dc.LOCAL_PULL_STEP: {"directory": "/srv/flows"}}],
               "work_pool_name": "pool", "work_queue_name": None, "parameters": {"city": "Paris"},
               "tags": ["a", "b"], "description": None, "paused": None, "job_variables": None,
               "parameter_openapi_schema": {"type": "object", "properties": {}}}
    assert dc.deployment_changes(desired, actual) == {}


def test_changes_listed():
    actual = dc.actual_deployment_fields(SERVER_DEPLOYMENT)
    desired = {"parameters": {"city": "Lyon"}, "paused": True, "concurrency_limit": None, "work_queue_name": "fast",
               "work_pool_name": "pool"}
    changes = dc.deployment_changes(desired, actual)
    assert changes == {"parameters": {"city": "Lyon"}, "paused": True, "concurrency_limit": None,
                       "work_queue_name": "fast"}
    body = dc.update_body(changes, desired)
    assert body["work_pool_name"] == "pool" and body["work_queue_name"] == "fast"
    assert "schedules" not in body


def test_create_body():
    desired = {"entrypoint": "w.py:w", "pull_steps": [], "work_pool_name": "pool", "parameters": None,
               "concurrency_limit": 3}
    schedules = dc.normalize_schedules([{"cron": "0 8,13,18 * * *"}])
    body = dc.create_body(desired, "f1", "three", schedules)
    assert body == {"name": "three", "flow_id": "f1", "entrypoint": "w.py:w", "pull_steps": [],
                    "work_pool_name": "pool", "concurrency_limit": 3,
                    "schedules": [{"active": True, "parameters": {},
                                   "schedule": {"cron": "0 8,13,18 * * *", "day_or": True}}]}


# ---------------------------------------------------------------- sources

def test_pull_steps_local_and_docker():
    assert dc.build_pull_steps({"type": "local", "path": "/srv/prefect/flows"}) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/srv/prefect/flows"}}]
    assert dc.build_pull_steps({"type": "docker", "image": "r:5000/flows/weather:1.0", "working_dir": None}) == [
        {"prefect.deployments.steps.set_working_directory": {"directory": "/opt/prefect/flows"}}]


def test_pull_steps_s3_reference_block_never_secrets():
    steps = dc.build_pull_steps({
        "type": "s3", "bucket": "flows", "folder": "/weather/", "endpoint_url": "http://127.0.0.1:8333",
        "credentials": {"block": "lab-s3", "aws_access_key_id": "AK", "aws_secret_access_key": "SECRET"}})
    assert steps == [{"prefect_aws.deployments.steps.pull_from_s3": {
        "requires": "prefect-aws", "bucket": "flows", "folder": "weather",
        "credentials": "{{ prefect.blocks.aws-credentials.lab-s3 }}",
        "client_parameters": {"endpoint_url": "http://127.0.0.1:8333"}}}]
    assert "SECRET" not in repr(steps) and "aws_access_key_id" not in repr(steps)


def test_pull_steps_s3_without_block_refused():
    with pytest.raises(ValueError, match="credentials.block"):
        dc.build_pull_steps({"type": "s3", "bucket": "b", "credentials": None})


@pytest.mark.parametrize("entrypoint", ["weather.py", "weather.py:", ":flow", "/abs/weather.py:w", "../x.py:w",
                                        "w.py:bad-name", None])
def test_bad_entrypoints(entrypoint):
    with pytest.raises(ValueError):
        dc.parse_entrypoint(entrypoint)


def test_good_entrypoint():
    assert dc.parse_entrypoint("flows/weather.py:weather") == ("flows/weather.py", "weather")


def test_s3_upload_plan():
    local = {"weather.py": "aaa", "lib/util.py": "bbb"}
    remote = {"weather/weather.py": '"aaa"', "weather/lib/util.py": "old", "weather/stale.py": "ccc"}
    plan = dc.plan_s3_upload(local, remote, "/weather/")
    assert plan == {"upload": [("lib/util.py", "weather/lib/util.py")], "unchanged": ["weather/weather.py"],
                    "delete": []}
    plan = dc.plan_s3_upload(local, remote, "weather", delete_extra=True)
    assert plan["delete"] == ["weather/stale.py"]
    plan = dc.plan_s3_upload(local, {}, "")
    assert [k for _r, k in plan["upload"]] == ["lib/util.py", "weather.py"]


# ---------------------------------------------------------------- S3 signing (AWS's published examples)

AWS_EXAMPLE = dict(access_key="AKIAIOSFODNN7EXAMPLE", secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                   region="us-east-1", now=datetime.datetime(2013, 5, 24, tzinfo=datetime.timezone.utc))


def test_sigv4_get_object_example():
    headers = s3.signature_v4_headers("GET", "https://examplebucket.s3.amazonaws.com/test.txt",
                                      {"Range": "bytes=0-9"}, s3.EMPTY_SHA256, **AWS_EXAMPLE)
    assert headers["Authorization"].endswith(
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


def test_sigv4_list_objects_example():
    headers = s3.signature_v4_headers("GET", "https://examplebucket.s3.amazonaws.com/?max-keys=2&prefix=J", {},
                                      s3.EMPTY_SHA256, **AWS_EXAMPLE)
    assert headers["Authorization"].endswith(
        "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    assert headers["x-amz-date"] == "20130524T000000Z"


def test_s3_urls():
    custom = s3.S3Client("a", "b", endpoint_url="http://127.0.0.1:8333/")
    assert custom._url("flows", "weather/dir with space/a+b.py") == \
        "http://127.0.0.1:8333/flows/weather/dir%20with%20space/a%2Bb.py"
    assert custom._url("flows", query={"prefix": "weather/", "list-type": "2"}) == \
        "http://127.0.0.1:8333/flows?list-type=2&prefix=weather%2F"
    aws = s3.S3Client("a", "b", region="eu-west-3")
    assert aws._url("flows", "x.py") == "https://flows.s3.eu-west-3.amazonaws.com/x.py"


def test_s3_client_needs_both_keys():
    with pytest.raises(s3.S3Error, match="incomplete"):
        s3.S3Client("a", "")


def test_scan_directory_excludes(tmp_path):
    (tmp_path / "weather.py").write_text("print(1)\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "weather.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "util.py").write_text("")
    (tmp_path / "lib" / "old.pyc").write_bytes(b"x")
    files = s3.scan_directory(str(tmp_path), ["__pycache__", "*.pyc"])
    assert files == {"weather.py": hashlib.md5(b"print(1)\n").hexdigest(),  # nosec - S3 ETag
                     "lib/util.py": "d41d8cd98f00b204e9800998ecf8427e"}
