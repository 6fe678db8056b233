# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the deployment module's schedules: normalising, comparing with the server, planning."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.selfhosted.prefect.plugins.module_utils import schedules as sc


def api_schedule(schedule, id_="s1", created="2026-01-01T00:00:00Z", active=True, parameters=None, slug=None,
                 max_scheduled_runs=None):
    return {
        "id": id_, "created": created, "updated": created, "deployment_id": "d1",
        "schedule": schedule, "active": active, "parameters": parameters or {}, "slug": slug,
        "max_scheduled_runs": max_scheduled_runs,
    }


# ---------------------------------------------------------------- normalisation

def test_three_times_a_day_cron():
    canon = sc.normalize_schedule({"cron": "0  8,13,18 * * *", "timezone": "Europe/Paris"})
    assert canon["kind"] == "cron"
    assert canon["cron"] == "0 8,13,18 * * *"
    assert canon["day_or"] is True and canon["active"] is True
    assert sc.schedule_api_body(canon) == {
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
    with pytest.raises(sc.ScheduleError, match=message):
        sc.normalize_schedule(bad)


def test_duplicate_slugs_refused_with_index():
    with pytest.raises(sc.ScheduleError, match=r"schedules\[1\]: slug 'a' is used twice"):
        sc.normalize_schedules([{"interval": 60, "slug": "a"}, {"interval": 120, "slug": "a"}])


def test_ansible_none_suboptions_are_ignored():
    # Ansible fills unset suboptions with None
    canon = sc.normalize_schedule({"cron": "0 8 * * *", "interval": None, "rrule": None, "anchor_date": None,
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
    assert sc.parse_datetime(text) == expected


def test_interval_body_keeps_integer_seconds_and_anchor():
    canon = sc.normalize_schedule({"interval": "3600", "anchor_date": "2024-01-01T08:00:00+01:00"})
    assert sc.schedule_definition(canon) == {"interval": 3600, "anchor_date": "2024-01-01T07:00:00Z"}
    assert sc.schedule_definition(sc.normalize_schedule({"interval": 90.5})) == {"interval": 90.5}


# ---------------------------------------------------------------- comparison with the server

def test_interval_without_anchor_ignores_server_anchor():
    canon = sc.normalize_schedule({"interval": 3600})
    actual = api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20.600945Z", "timezone": "UTC"})
    assert sc.schedule_matches(canon, actual)


def test_interval_with_anchor_compares_instants():
    canon = sc.normalize_schedule({"interval": 3600, "anchor_date": "2024-01-01T08:00:00+01:00"})
    same = api_schedule({"interval": 3600.0, "anchor_date": "2024-01-01T07:00:00Z", "timezone": "UTC"})
    other = api_schedule({"interval": 3600.0, "anchor_date": "2024-01-01T08:00:00Z", "timezone": "UTC"})
    assert sc.schedule_matches(canon, same)
    assert not sc.schedule_matches(canon, other)


def test_rrule_ignores_injected_dtstart_only_when_user_gave_none():
    actual = api_schedule({"rrule": "DTSTART:20200101T000000\nFREQ=DAILY;BYHOUR=9", "timezone": "UTC"})
    assert sc.schedule_matches(sc.normalize_schedule({"rrule": "FREQ=DAILY;BYHOUR=9"}), actual)
    assert sc.schedule_matches(sc.normalize_schedule({"rrule": "RRULE:FREQ=DAILY;BYHOUR=9"}), actual)
    assert not sc.schedule_matches(sc.normalize_schedule({"rrule": "FREQ=DAILY;BYHOUR=10"}), actual)
    explicit = sc.normalize_schedule({"rrule": "DTSTART:20240101T000000\nRRULE:FREQ=DAILY;BYHOUR=9"})
    assert not sc.schedule_matches(explicit, actual)


def test_timezone_unset_means_utc():
    canon = sc.normalize_schedule({"cron": "0 8 * * *"})
    assert sc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}))
    assert sc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": "UTC", "day_or": True}))
    assert not sc.schedule_matches(canon, api_schedule({"cron": "0 8 * * *", "timezone": "Europe/Paris"}))


def test_settings_compared():
    canon = sc.normalize_schedule({"cron": "0 8 * * *", "active": False, "parameters": {"city": "Lyon"}})
    base = {"cron": "0 8 * * *", "timezone": None, "day_or": True}
    assert sc.schedule_matches(canon, api_schedule(base, active=False, parameters={"city": "Lyon"}))
    assert not sc.schedule_matches(canon, api_schedule(base, active=True, parameters={"city": "Lyon"}))
    assert not sc.schedule_matches(canon, api_schedule(base, active=False, parameters={}))
    # a slug set on the server is ignored unless the user gives one
    assert sc.schedule_matches(canon, api_schedule(base, active=False, parameters={"city": "Lyon"}, slug="x"))


# ---------------------------------------------------------------- planning

def test_plan_unchanged_keeps_everything():
    desired = sc.normalize_schedules([{"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris"}, {"interval": 3600},
                                      {"rrule": "FREQ=DAILY;BYHOUR=9"}])
    actual = [
        api_schedule({"rrule": "DTSTART:20200101T000000\nFREQ=DAILY;BYHOUR=9", "timezone": "UTC"}, "c"),
        api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC"}, "b"),
        api_schedule({"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris", "day_or": True}, "a"),
    ]
    plan = sc.plan_schedules(desired, actual)
    assert not sc.plan_has_changes(plan)
    assert sorted(a["id"] for _c, a in plan["keep"]) == ["a", "b", "c"]


def test_plan_active_change_patches_without_definition():
    desired = sc.normalize_schedules([{"interval": 3600, "active": False}])
    actual = [api_schedule({"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC"}, "b")]
    plan = sc.plan_schedules(desired, actual)
    assert plan["keep"] == [] and plan["create"] == [] and plan["delete"] == []
    (canon, act, definition_changed), = plan["update"]
    assert act["id"] == "b" and definition_changed is False
    body = sc.schedule_api_body(canon, for_update=True, include_definition=definition_changed)
    assert body == {"active": False, "parameters": {}}  # no "schedule": the anchor stays
    view = sc.planned_schedule_view(plan)
    assert view == [{"interval": 3600.0, "anchor_date": "2026-11-26T15:02:20Z", "timezone": "UTC", "active": False}]


def test_plan_changed_cron_updates_same_id():
    desired = sc.normalize_schedules([{"cron": "0 9 * * *"}, {"interval": 60}])
    actual = [api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}, "a"),
              api_schedule({"interval": 60.0, "anchor_date": "2026-01-01T00:00:00Z", "timezone": "UTC"}, "b")]
    plan = sc.plan_schedules(desired, actual)
    assert [a["id"] for _c, a in plan["keep"]] == ["b"]
    assert [(a["id"], changed) for _c, a, changed in plan["update"]] == [("a", True)]


def test_plan_create_and_delete():
    desired = sc.normalize_schedules([{"rrule": "FREQ=WEEKLY"}])
    actual = [api_schedule({"cron": "0 8 * * *", "timezone": None, "day_or": True}, "a")]
    plan = sc.plan_schedules(desired, actual)
    assert [c["kind"] for c in plan["create"]] == ["rrule"]
    assert [a["id"] for a in plan["delete"]] == ["a"]


def test_plan_empty_list_deletes_all():
    actual = [api_schedule({"cron": "0 8 * * *"}, "a"), api_schedule({"interval": 5.0}, "b")]
    plan = sc.plan_schedules([], actual)
    assert sorted(a["id"] for a in plan["delete"]) == ["a", "b"]


def test_plan_slug_pairs_by_slug():
    desired = sc.normalize_schedules([{"cron": "0 7 * * *", "slug": "morning"}, {"cron": "0 8 * * *"}])
    actual = [api_schedule({"cron": "0 8 * * *"}, "x", created="2026-01-01T00:00:00Z"),
              api_schedule({"cron": "0 6 * * *"}, "m", created="2026-01-02T00:00:00Z", slug="morning")]
    plan = sc.plan_schedules(desired, actual)
    assert [(a["id"], changed) for _c, a, changed in plan["update"]] == [("m", True)]
    assert [a["id"] for _c, a in plan["keep"]] == ["x"]
    assert not plan["create"] and not plan["delete"]


def test_plan_duplicates_pair_one_to_one():
    desired = sc.normalize_schedules([{"interval": 60}, {"interval": 60}])
    actual = [api_schedule({"interval": 60.0}, "a")]
    plan = sc.plan_schedules(desired, actual)
    assert len(plan["keep"]) == 1 and len(plan["create"]) == 1


# ---------------------------------------------------------------- the module's option

@pytest.mark.parametrize("name, known", [
    ("Europe/Paris", True),
    ("UTC", True),
    ("America/Argentina/Buenos_Aires", True),
    ("Mars/Olympus", False),
    ("../../etc/passwd", False),
])
def test_timezone_known(name, known):
    assert sc.timezone_known(name) is known


def test_desired_schedules_checks_time_zones_and_keeps_none():
    assert sc.desired_schedules(None) is None
    assert sc.desired_schedules([]) == []
    with pytest.raises(sc.ScheduleError, match=r"schedules\[1\]: unknown timezone 'Mars/Olympus'"):
        sc.desired_schedules([{"cron": "0 8 * * *"}, {"cron": "0 8 * * *", "timezone": "Mars/Olympus"}])
