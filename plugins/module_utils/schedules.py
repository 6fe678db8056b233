# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A deployment's schedules: normalising, comparing, planning changes, API bodies.

Pure logic (no I/O; unit-tested directly) of the ``deployment`` module.

Why it exists
-------------
A Prefect 3.9 server replaces every schedule of a deployment on each
``POST /deployments/`` (upsert) and gives interval schedules a fresh
``anchor_date`` (and rrule schedules a ``DTSTART``) whenever the user did not
set one. A module that simply re-POSTs its input would therefore change the
deployment on every run. This file turns the user's schedules into the state the
server would store, compares them with what the server holds while ignoring the
fields the server sets itself (ids, created/updated, anchors the user left out,
an injected ``DTSTART``), and plans the smallest set of schedule API calls:

* :func:`desired_schedules` validates the module's ``schedules`` option (each
  schedule with :func:`normalize_schedule`, time zones with :func:`timezone_known`);
  :func:`schedule_api_body` gives the body the API expects for one of them.
* :func:`schedule_matches` says whether a schedule read from the server is the
  one the user asked for.
* :func:`plan_schedules` pairs desired with actual schedules (by slug, then by
  equality, then by kind) and returns what to keep, update (by schedule id, so
  ids and anchors stay stable), create and delete.
* :func:`describe_schedule`, :func:`actual_schedule_view` and
  :func:`planned_schedule_view` are the readable forms shown in diffs and results.
"""

from __future__ import annotations

import copy
import datetime
import re

SCHEDULE_KINDS = ("cron", "interval", "rrule")


class ScheduleError(ValueError):
    """A schedule given by the user is not valid."""


# --------------------------------------------------------------------------------------
# dates
# --------------------------------------------------------------------------------------
_ISO_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)(Z|[+-]\d{2}:?\d{2})?$")


def parse_datetime(value):
    """An aware UTC datetime from an ISO 8601 string or datetime (naive means UTC).

    Accepts ``2024-01-01T08:00:00Z``, ``2024-01-01 08:00:00+01:00``,
    ``2024-01-01T08:00``, ``2024-01-01``. Raises ScheduleError otherwise.
    """
    if isinstance(value, datetime.datetime):
        dt = value
    elif isinstance(value, datetime.date):
        dt = datetime.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        if re.match(r"^\d{4}-\d{2}-\d{2}$", text):
            text += "T00:00:00"
        match = _ISO_RE.match(text)
        if not match:
            raise ScheduleError("anchor_date %r is not an ISO 8601 date-time such as 2024-01-01T08:00:00Z" % (value,))
        date_part, time_part, tz_part = match.groups()
        if len(time_part) == 5:
            time_part += ":00"
        if "." in time_part:
            main, frac = time_part.split(".", 1)
            time_part = main + "." + (frac + "000000")[:6]
            fmt = "%Y-%m-%dT%H:%M:%S.%f"
        else:
            fmt = "%Y-%m-%dT%H:%M:%S"
        dt = datetime.datetime.strptime(date_part + "T" + time_part, fmt)
        if tz_part and tz_part != "Z":
            sign = 1 if tz_part[0] == "+" else -1
            digits = tz_part[1:].replace(":", "")
            offset = datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
            dt = dt.replace(tzinfo=datetime.timezone(sign * offset))
        elif tz_part == "Z":
            dt = dt.replace(tzinfo=datetime.timezone.utc)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return dt.astimezone(datetime.timezone.utc)


def format_datetime(dt):
    """ISO 8601 in UTC with a Z, as the server writes it."""
    text = dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")
    text = text.rstrip("0").rstrip(".") if text.endswith("000000") else text
    return text + "Z"


# --------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------
def _clean_cron(cron):
    return " ".join(str(cron).split())


def _rrule_lines(rrule):
    """The lines of an rrule string, stripped, without a leading ``RRULE:``."""
    lines = []
    for line in str(rrule).replace("\\n", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.upper().startswith("RRULE:"):
            line = line[len("RRULE:"):]
        lines.append(line)
    return lines


def _has_dtstart(lines):
    return any(line.upper().startswith("DTSTART") for line in lines)


def _interval_seconds(value):
    if isinstance(value, bool):
        raise ScheduleError("interval must be a number of seconds, got %r" % (value,))
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    else:
        try:
            seconds = float(value)
        except (TypeError, ValueError):
            raise ScheduleError("interval must be a number of seconds, got %r" % (value,))
    if seconds <= 0:
        raise ScheduleError("interval must be a positive number of seconds, got %r" % (value,))
    return seconds


def schedule_kind(schedule):
    """'cron', 'interval' or 'rrule' for a user schedule or the ``schedule`` of an API one."""
    kinds = [k for k in SCHEDULE_KINDS if schedule.get(k) not in (None, "")]
    if len(kinds) != 1:
        raise ScheduleError(
            "each schedule needs exactly one of cron, interval or rrule; got %s"
            % (", ".join(kinds) if kinds else "none"))
    return kinds[0]


def normalize_schedule(schedule):
    """Validate one user schedule and return its canonical form.

    The canonical form is a dict with ``kind``, the kind's fields (``cron`` and
    ``day_or``; ``interval`` in seconds and ``anchor_date`` (a UTC datetime or
    None when not set); or ``rrule`` as a list of lines), ``timezone`` (None if
    not set), ``active``, ``parameters``, ``slug`` and ``max_scheduled_runs``
    (None when not set).
    """
    if not isinstance(schedule, dict):
        raise ScheduleError("each schedule must be a dictionary, got %r" % (schedule,))
    known = set(SCHEDULE_KINDS) | {"timezone", "day_or", "anchor_date", "active", "parameters",
                                   "slug", "max_scheduled_runs"}
    unknown = sorted(k for k in schedule if k not in known and schedule[k] is not None)
    if unknown:
        raise ScheduleError("unknown schedule key(s) %s; use %s" % (", ".join(unknown), ", ".join(sorted(known))))
    kind = schedule_kind(schedule)
    canon = {
        "kind": kind,
        "timezone": schedule.get("timezone") or None,
        "active": True if schedule.get("active") is None else bool(schedule.get("active")),
        "parameters": copy.deepcopy(schedule.get("parameters") or {}),
        "slug": schedule.get("slug") or None,
        "max_scheduled_runs": schedule.get("max_scheduled_runs"),
    }
    if kind != "cron" and schedule.get("day_or") is not None:
        raise ScheduleError("day_or only applies to cron schedules")
    if kind != "interval" and schedule.get("anchor_date") is not None:
        raise ScheduleError("anchor_date only applies to interval schedules")
    if kind == "cron":
        cron = _clean_cron(schedule["cron"])
        if len(cron.split()) not in (5, 6):
            raise ScheduleError("cron %r must have 5 fields (minute hour day month weekday)" % (schedule["cron"],))
        canon["cron"] = cron
        canon["day_or"] = True if schedule.get("day_or") is None else bool(schedule.get("day_or"))
    elif kind == "interval":
        canon["interval"] = _interval_seconds(schedule["interval"])
        anchor = schedule.get("anchor_date")
        canon["anchor_date"] = parse_datetime(anchor) if anchor not in (None, "") else None
    else:
        lines = _rrule_lines(schedule["rrule"])
        if not lines:
            raise ScheduleError("rrule must not be empty")
        canon["rrule"] = lines
    if canon["max_scheduled_runs"] is not None:
        try:
            canon["max_scheduled_runs"] = int(canon["max_scheduled_runs"])
        except (TypeError, ValueError):
            raise ScheduleError("max_scheduled_runs must be a positive integer")
        if canon["max_scheduled_runs"] <= 0:
            raise ScheduleError("max_scheduled_runs must be a positive integer")
    return canon


def normalize_schedules(schedules):
    """Canonical forms of a list of user schedules; checks that slugs are unique."""
    result = []
    seen = set()
    for index, schedule in enumerate(schedules or []):
        try:
            canon = normalize_schedule(schedule)
        except ScheduleError as exc:
            raise ScheduleError("schedules[%d]: %s" % (index, exc))
        if canon["slug"]:
            if canon["slug"] in seen:
                raise ScheduleError("schedules[%d]: slug %r is used twice" % (index, canon["slug"]))
            seen.add(canon["slug"])
        result.append(canon)
    return result


def schedule_definition(canon):
    """The ``schedule`` object the API expects for a canonical schedule."""
    kind = canon["kind"]
    if kind == "cron":
        body = {"cron": canon["cron"], "day_or": canon["day_or"]}
    elif kind == "interval":
        interval = canon["interval"]
        body = {"interval": int(interval) if float(interval).is_integer() else interval}
        if canon.get("anchor_date") is not None:
            body["anchor_date"] = format_datetime(canon["anchor_date"])
    else:
        body = {"rrule": "\n".join(canon["rrule"])}
    if canon.get("timezone"):
        body["timezone"] = canon["timezone"]
    return body


def schedule_api_body(canon, for_update=False, include_definition=True):
    """Body of ``POST /deployments/`` (one item of ``schedules``), of
    ``POST /deployments/{id}/schedules`` (one item) or, with ``for_update``, of
    ``PATCH /deployments/{id}/schedules/{schedule_id}``.

    ``include_definition=False`` leaves the schedule itself out of an update, so
    the server keeps it as is (an interval schedule keeps its anchor date).
    """
    body = {"active": canon["active"], "parameters": copy.deepcopy(canon["parameters"])}
    if include_definition or not for_update:
        body["schedule"] = schedule_definition(canon)
    return _add_slug_and_limit(body, canon)


def _timezone_or_utc(value):
    return value or "UTC"


def definition_matches(canon, actual_definition):
    """True if the ``schedule`` object read from the server is the one of ``canon``.

    Ignores what the server sets on its own: an interval's anchor date when the
    user gave none, an rrule's injected DTSTART when the user gave none, a
    timezone left out (the server stores UTC or nothing, both meaning UTC).
    """
    if not isinstance(actual_definition, dict):
        return False
    try:
        actual_kind = schedule_kind(actual_definition)
    except ScheduleError:
        return False
    if actual_kind != canon["kind"]:
        return False
    if _timezone_or_utc(canon.get("timezone")) != _timezone_or_utc(actual_definition.get("timezone")):
        return False
    if actual_kind == "cron":
        day_or = actual_definition.get("day_or")
        return (_clean_cron(actual_definition["cron"]) == canon["cron"]
                and (True if day_or is None else bool(day_or)) == canon["day_or"])
    if actual_kind == "interval":
        try:
            if abs(_interval_seconds(actual_definition["interval"]) - canon["interval"]) > 1e-6:
                return False
        except ScheduleError:
            return False
        if canon.get("anchor_date") is None:
            return True
        actual_anchor = actual_definition.get("anchor_date")
        if not actual_anchor:
            return False
        try:
            return parse_datetime(actual_anchor) == canon["anchor_date"]
        except ScheduleError:
            return False
    lines = _rrule_lines(actual_definition["rrule"])
    if not _has_dtstart(canon["rrule"]):
        lines = [line for line in lines if not line.upper().startswith("DTSTART")]
    return lines == canon["rrule"]


def schedule_settings_match(canon, actual):
    """True if active, parameters, slug and max_scheduled_runs of an API schedule match."""
    if bool(actual.get("active", True)) != canon["active"]:
        return False
    if (actual.get("parameters") or {}) != canon["parameters"]:
        return False
    if canon.get("slug") and actual.get("slug") != canon["slug"]:
        return False
    if canon.get("max_scheduled_runs") is not None and actual.get("max_scheduled_runs") != canon["max_scheduled_runs"]:
        return False
    return True


def schedule_matches(canon, actual):
    """True if the deployment schedule ``actual`` (as read from the API) is ``canon``."""
    return definition_matches(canon, actual.get("schedule")) and schedule_settings_match(canon, actual)


def plan_schedules(desired, actual):
    """Plan the schedule calls that turn ``actual`` (API schedules) into ``desired``
    (canonical schedules, from :func:`normalize_schedules`).

    Returns a dict with lists:

    * ``keep``: ``(canon, actual)`` pairs already equal: nothing to do;
    * ``update``: ``(canon, actual, definition_changed)``: PATCH the schedule by
      its id (``definition_changed`` False means only active/parameters/slug
      change, so the schedule itself, and its anchor, is left alone);
    * ``create``: canonical schedules to add;
    * ``delete``: API schedules to remove.

    Pairing: a desired schedule with a slug goes with the actual schedule of the
    same slug; then each remaining desired schedule goes with an equal actual
    one; then remaining ones of the same kind are paired in order (an update
    keeps the schedule id); the rest is created or deleted.
    """
    remaining = sorted(actual or [], key=lambda s: (str(s.get("created") or ""), str(s.get("id") or "")))
    plan = {"keep": [], "update": [], "create": [], "delete": []}
    pending = []

    def take(predicate):
        for index, candidate in enumerate(remaining):
            if predicate(candidate):
                return remaining.pop(index)
        return None

    for canon in desired:
        if canon.get("slug"):
            match = take(lambda a, c=canon: a.get("slug") == c["slug"])
            if match is not None:
                _pair(plan, canon, match)
                continue
        pending.append(canon)

    still = []
    for canon in pending:
        match = take(lambda a, c=canon: schedule_matches(c, a))
        if match is not None:
            plan["keep"].append((canon, match))
        else:
            still.append(canon)

    for canon in still:
        match = take(lambda a, c=canon: _actual_kind(a) == c["kind"]
                     and (not a.get("slug") or not c.get("slug")))
        if match is not None:
            _pair(plan, canon, match)
        else:
            plan["create"].append(canon)

    plan["delete"].extend(remaining)
    return plan


def _actual_kind(actual):
    try:
        return schedule_kind(actual.get("schedule") or {})
    except ScheduleError:
        return None


def _pair(plan, canon, actual):
    same_definition = definition_matches(canon, actual.get("schedule"))
    if same_definition and schedule_settings_match(canon, actual):
        plan["keep"].append((canon, actual))
    else:
        plan["update"].append((canon, actual, not same_definition))


def plan_has_changes(plan):
    return bool(plan["update"] or plan["create"] or plan["delete"])


def _add_slug_and_limit(out, source):
    """Copy ``slug`` and ``max_scheduled_runs`` into ``out`` when ``source`` sets them."""
    if source.get("slug"):
        out["slug"] = source["slug"]
    if source.get("max_scheduled_runs") is not None:
        out["max_scheduled_runs"] = source["max_scheduled_runs"]
    return out


def _add_schedule_options(out, source):
    """Copy the optional schedule fields that are set in ``source`` into ``out``."""
    if source.get("parameters"):
        out["parameters"] = source["parameters"]
    return _add_slug_and_limit(out, source)


def describe_schedule(canon):
    """A readable dict for diffs and return values."""
    out = schedule_definition(canon)
    if canon["kind"] == "interval" and canon.get("anchor_date") is None:
        out.pop("anchor_date", None)
    out["active"] = canon["active"]
    return _add_schedule_options(out, canon)


def describe_actual_schedule(actual):
    """A readable dict of an API schedule (without ids and timestamps)."""
    out = copy.deepcopy(actual.get("schedule") or {})
    out["active"] = bool(actual.get("active", True))
    return _add_schedule_options(out, actual)


def planned_schedule_view(plan):
    """What the schedules will look like after the plan, for the diff's ``after``:
    kept and updated schedules in the server's order (by creation), then new ones."""
    by_created = []
    for canon, actual in plan["keep"]:
        by_created.append((actual, describe_actual_schedule(actual)))
    for canon, actual, definition_changed in plan["update"]:
        view = describe_schedule(canon)
        if not definition_changed:
            kept = describe_actual_schedule(actual)
            for key in ("active", "parameters", "slug", "max_scheduled_runs"):
                kept.pop(key, None)
            kept.update(dict((k, v) for k, v in view.items() if k in ("active", "parameters", "slug", "max_scheduled_runs")))
            view = kept
        by_created.append((actual, view))
    by_created.sort(key=lambda item: (str(item[0].get("created") or ""), str(item[0].get("id") or "")))
    return [view for _actual, view in by_created] + [describe_schedule(canon) for canon in plan["create"]]


def actual_schedule_view(actual_schedules):
    """Readable API schedules in the server's order (by creation)."""
    ordered = sorted(actual_schedules or [], key=lambda s: (str(s.get("created") or ""), str(s.get("id") or "")))
    return [describe_actual_schedule(s) for s in ordered]


# --------------------------------------------------------------------------------------
# the module's option
# --------------------------------------------------------------------------------------
def timezone_known(name):
    """False only when this host's time zone database is readable and lacks ``name``."""
    try:
        import zoneinfo  # pylint: disable=import-outside-toplevel
    except ImportError:
        return True
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except Exception:  # pylint: disable=broad-except
        pass
    try:  # not found: trust that only when the database is there at all (listing it costs ~40 ms)
        zones = zoneinfo.available_timezones()
    except Exception:  # pylint: disable=broad-except
        return True
    return not zones or name in zones or name == "UTC"


def desired_schedules(schedules):
    """Canonical forms of the module's ``schedules`` option (None when not managed).

    Raises ScheduleError naming the schedule's index for an invalid schedule or an
    unknown time zone."""
    if schedules is None:
        return None
    result = normalize_schedules(schedules)
    for index, canon in enumerate(result):
        if canon.get("timezone") and not timezone_known(canon["timezone"]):
            raise ScheduleError("schedules[%d]: unknown timezone %r (use an IANA name such as Europe/Paris)"
                                % (index, canon["timezone"]))
    return result
