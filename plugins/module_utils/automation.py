# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Automations: triggers and actions normalized and compared as Prefect 3.9 stores them, and
AutomationManager, which the automation module runs and the deployment module uses for the
automation that retries a deployment's crashed runs (O(crash_retries))."""

from __future__ import annotations

import copy
import re

from ansible_collections.selfhosted.prefect.plugins.module_utils.diff import equal
from ansible_collections.selfhosted.prefect.plugins.module_utils.manager import PrefectManager
from ansible_collections.selfhosted.prefect.plugins.module_utils.prefect_client import PrefectAPIError

# The defaults the Prefect 3.9 server fills into what it stores (prefect/server/events/
# schemas/automations.py and actions.py). A key the task leaves out is compared with these.
TRIGGER_DEFAULTS = {
    "event": {"match": {}, "match_related": {}, "after": [], "expect": [], "for_each": [], "threshold": 1,
              "within": 0.0},
    "compound": {},
    "sequence": {},
}
_SELECTED = {"source": "selected"}
ACTION_DEFAULTS = {
    "do-nothing": {},
    "run-deployment": dict(_SELECTED, deployment_id=None, parameters=None, job_variables=None, schedule_after=0.0),
    "pause-deployment": dict(_SELECTED, deployment_id=None),
    "resume-deployment": dict(_SELECTED, deployment_id=None),
    "cancel-flow-run": {},
    "suspend-flow-run": {},
    "resume-flow-run": {},
    "delete-flow-run": {},
    "change-flow-run-state": {"name": None, "message": None, "force": False},
    "send-notification": {"subject": "Prefect automated notification"},
    "call-webhook": {"payload": ""},
    "pause-work-pool": dict(_SELECTED, work_pool_id=None),
    "resume-work-pool": dict(_SELECTED, work_pool_id=None),
    "pause-work-queue": dict(_SELECTED, work_queue_id=None),
    "resume-work-queue": dict(_SELECTED, work_queue_id=None),
    "pause-automation": dict(_SELECTED, automation_id=None),
    "resume-automation": dict(_SELECTED, automation_id=None),
}
# Fields Prefect keeps as sets: their order means nothing.
SET_FIELDS = ("after", "expect", "for_each")
# Minimum `within` of a proactive trigger; the server turns 0 into this.
PROACTIVE_MINIMUM_WITHIN = 10.0
ACTION_LISTS = ("actions", "actions_on_trigger", "actions_on_resolve")
FIELDS = ("id", "name", "description", "enabled", "tags", "trigger") + ACTION_LISTS
ISO_DURATION_RE = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$")
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
DURATION_UNITS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


class SpecError(ValueError):
    """A trigger or action the module cannot read."""


def duration_seconds(value, path):
    """A duration given as seconds (number or digits) or ISO 8601 (PT1M30S) -> float seconds."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise SpecError("%s: a duration in seconds is expected, not %r" % (path, value))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        match = ISO_DURATION_RE.match(text.upper())
        if match and text.upper() not in ("P", "PT") and not text.upper().endswith("T"):
            return float(sum(float(amount) * DURATION_UNITS[unit]
                             for unit, amount in match.groupdict().items() if amount))
    raise SpecError("%s: %r is not a duration; give a number of seconds (90) or an ISO 8601 duration (PT1M30S)"
                    % (path, value))


def _number_text(value):
    """'3' -> 3 (what Ansible's templating makes of a number on older cores); anything else unchanged."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


def _sorted_set(value):
    if isinstance(value, (list, tuple, set)):
        return sorted(set(value), key=str)
    return value


def trigger_type(trigger):
    """The type of a trigger dict; Prefect infers it when left out."""
    if trigger.get("type") is not None:
        return trigger["type"]
    if "triggers" in trigger:
        return "compound" if "require" in trigger else "sequence"
    return "event"


def normalize_trigger(trigger, path="trigger", keep_ids=False):
    """The trigger as the server stores it: type and defaults filled in, sets sorted,
    durations in seconds, IDs left out (unless keep_ids). Raises SpecError."""
    if not isinstance(trigger, dict):
        raise SpecError("%s: a dict is expected, got %r" % (path, trigger))
    result = copy.deepcopy(trigger)
    if not keep_ids:
        result.pop("id", None)
    kind = trigger_type(result)
    result["type"] = kind
    for key, default in TRIGGER_DEFAULTS.get(kind, {}).items():
        if key not in result:
            result[key] = copy.deepcopy(default)
    for key in SET_FIELDS:
        if key in result:
            result[key] = _sorted_set(result[key])
    if "within" in result:
        result["within"] = duration_seconds(result["within"], path + ".within")
    if kind == "event" and result.get("posture") == "Proactive" and not result.get("within"):
        result["within"] = PROACTIVE_MINIMUM_WITHIN
    for key in ("threshold", "require"):
        if key in result:
            result[key] = _number_text(result[key])
    if isinstance(result.get("triggers"), list):
        result["triggers"] = [normalize_trigger(child, "%s.triggers[%d]" % (path, index), keep_ids)
                              for index, child in enumerate(result["triggers"])]
    return result


def normalize_action(action, path="actions[0]"):
    """The action as the server stores it: defaults of its type filled in, durations in
    seconds, UUIDs in lower case. Raises SpecError."""
    if not isinstance(action, dict):
        raise SpecError("%s: a dict is expected, got %r" % (path, action))
    if not action.get("type"):
        raise SpecError("%s: type is required (for example change-flow-run-state, run-deployment,"
                        " send-notification)" % path)
    result = copy.deepcopy(action)
    for key, default in ACTION_DEFAULTS.get(result["type"], {}).items():
        if key not in result:
            result[key] = copy.deepcopy(default)
    if "schedule_after" in result:
        result["schedule_after"] = duration_seconds(result["schedule_after"], path + ".schedule_after")
    for key, value in result.items():
        if key.endswith("_id") and isinstance(value, str) and UUID_RE.match(value):
            result[key] = value.lower()
    return result


def normalize_actions(actions, name):
    if not isinstance(actions, list):
        raise SpecError("%s: a list is expected" % name)
    return [normalize_action(action, "%s[%d]" % (name, index)) for index, action in enumerate(actions)]


def fields_match(wanted, actual):
    """Every key of the normalized `wanted` dict equals the one of `actual` (a missing key
    counts as None); keys only in `actual` are not compared."""
    if not isinstance(actual, dict):
        return False
    return all(equal(value, actual.get(key)) for key, value in wanted.items())


def trigger_matches(wanted, actual):
    """Whether the server's trigger `actual` is the normalized `wanted` one (see DOCUMENTATION)."""
    if not isinstance(actual, dict):
        return False
    try:
        actual = normalize_trigger(actual)
    except SpecError:
        return False
    children = wanted.get("triggers")
    if isinstance(children, list):
        others = actual.get("triggers")
        if not isinstance(others, list) or len(others) != len(children):
            return False
        if not all(trigger_matches(child, other) for child, other in zip(children, others)):
            return False
    return fields_match(dict((k, v) for k, v in wanted.items() if k != "triggers"), actual)


def actions_match(wanted, actual):
    """Whether the server's list of actions is the normalized `wanted` list (same order)."""
    if not isinstance(actual, list) or len(actual) != len(wanted):
        return False
    for want, have in zip(wanted, actual):
        if not isinstance(have, dict):
            return False
        try:
            have = normalize_action(have)
        except SpecError:
            return False
        if not fields_match(want, have):
            return False
    return True


def describe(automation, keep_ids=True):
    """The automation for the result (keep_ids) or the diff (without the IDs that change)."""
    if not automation:
        return {}
    described = dict((key, copy.deepcopy(automation[key])) for key in FIELDS if key in automation)
    if not keep_ids:
        described.pop("id", None)
    if isinstance(described.get("trigger"), dict):
        try:
            described["trigger"] = normalize_trigger(described["trigger"], keep_ids=keep_ids)
        except SpecError:
            pass
    if isinstance(described.get("tags"), list):
        described["tags"] = sorted(described["tags"], key=str)
    return described


# -- the server's validation errors, made readable ----------------------------------------
_ENTRY_SPLIT_RE = re.compile(r"; (?=body(?:\.|:))")


def _segments(loc):
    """'body.actions.0.function-after[a(), B].type' -> ['body', 'actions', '0', 'function-after[a(), B]', 'type']."""
    parts, depth, current = [], 0, ""
    for char in loc:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def _is_alternative(segment):
    """A pydantic union member (a class name or a validator wrapper), not a field or an index."""
    return bool(re.match(r"^[A-Z]\w*$", segment)) or "[" in segment


def _child_path(path, key):
    if key.isdigit():
        return "%s[%s]" % (path, key)
    return "%s.%s" % (path, key) if path else key


def _child_value(value, key):
    if isinstance(value, dict):
        return value.get(key)
    if isinstance(value, list) and key.isdigit() and int(key) < len(value):
        return value[int(key)]
    return None


def _condense(entries, value, path):
    messages = [("%s: %s" % (path, msg)) if path else msg for segments, msg in entries if not segments]
    rest = [(segments, msg) for segments, msg in entries if segments]
    if not rest:
        return messages
    groups = {}
    order = []
    for segments, msg in rest:
        if segments[0] not in groups:
            order.append(segments[0])
            groups[segments[0]] = []
        groups[segments[0]].append((segments[1:], msg))
    if all(_is_alternative(key) for key in order):
        # One member of a union per key: keep those whose `type` is the one given.
        expected, matching = [], []
        for key in order:
            literal = [msg for segments, msg in groups[key] if segments == ["type"] and msg.startswith("Input should be")]
            if literal:
                expected.extend(re.findall(r"'([^']*)'", literal[0]))
            else:
                matching.append(groups[key])
        if not matching:
            given = value.get("type") if isinstance(value, dict) else value
            messages.append("%s: unknown type %r; this server knows: %s"
                            % (path or "body", given, ", ".join(sorted(set(expected)))))
            return messages
        for items in matching:
            messages.extend(_condense(items, value, path))
        return messages
    for key in order:
        messages.extend(_condense(groups[key], _child_value(value, key), _child_path(path, key)))
    return messages


def condense_validation_error(detail, body):
    """Prefect's 422 detail (``loc: msg; loc: msg``, one entry for every member of every
    union the value did not fit) -> the few messages that concern what was sent, or None
    when the detail is not of that form."""
    if not detail or not detail.startswith("body"):
        return None
    entries = []
    for item in _ENTRY_SPLIT_RE.split(detail):
        loc, sep, msg = item.partition(": ")
        if not sep:
            return None
        segments = _segments(loc)
        if segments[0] != "body":
            return None
        entries.append((segments[1:], msg))
    messages = []
    for message in _condense(entries, body, ""):
        if message not in messages:
            messages.append(message)
    return "; ".join(messages) or None


# present() and absent() read the server themselves unless given what find() returned.
NOT_READ = object()


class AutomationManager(PrefectManager):
    """One automation, found by name. ``params`` (the automation module's options) default to the
    module's own; another module passes its own dict to manage an automation beside its object."""

    def __init__(self, module, client, params=None):
        super(AutomationManager, self).__init__(module, client)
        if params is not None:
            self.params = params
        p = self.params
        self.name = p["name"]
        self.header = "automation %s" % self.name
        if not self.name or not self.name.strip():
            self.fail("name must not be empty")
        self.trigger = None
        self.actions = {}
        if p["state"] != "present":
            return
        missing = [key for key in ("trigger", "actions") if p[key] is None]
        if missing:
            self.fail("%s required to create or update automation %r"
                      % (" and ".join(missing) + (" are" if len(missing) > 1 else " is"), self.name))
        try:
            self.trigger = normalize_trigger(p["trigger"])
            for key in ACTION_LISTS:
                if p[key] is not None:
                    self.actions[key] = normalize_actions(p[key], key)
        except SpecError as exc:
            self.fail(str(exc))

    # -- reading ---------------------------------------------------------------
    def find(self):
        """The one automation named self.name, or None; refuses when there are more."""
        found = self.find_all()
        if len(found) > 1:
            ids = sorted(a.get("id") for a in found)
            self.fail("The server holds %d automations named %r (%s); the module manages one automation per"
                      " name. Delete or rename the others first." % (len(found), self.name, ", ".join(ids)),
                      automation_ids=ids)
        return found[0] if found else None

    def find_all(self):
        body = {"automations": {"name": {"any_": [self.name]}}}
        # The name filter matches exactly; the check guards against a server that ignores it.
        return [a for a in self.client.post_paginated("/automations/filter", body) if a.get("name") == self.name]

    # -- comparing -------------------------------------------------------------
    def differences(self, current):
        """Names of the top-level fields that differ from the server's automation."""
        p = self.params
        fields = []
        if bool(current.get("enabled")) != p["enabled"]:
            fields.append("enabled")
        if p["description"] is not None and p["description"] != (current.get("description") or ""):
            fields.append("description")
        if p["tags"] is not None and sorted(set(p["tags"])) != sorted(set(current.get("tags") or [])):
            fields.append("tags")
        if not trigger_matches(self.trigger, current.get("trigger")):
            fields.append("trigger")
        for key, wanted in self.actions.items():
            if not actions_match(wanted, current.get(key) or []):
                fields.append(key)
        return fields

    def desired_body(self, current=None):
        """The full automation to create, or to PUT in place of `current`."""
        p = self.params
        current = current or {}
        body = {
            "name": self.name,
            "description": p["description"] if p["description"] is not None else current.get("description") or "",
            "enabled": p["enabled"],
            "trigger": self.trigger,
        }
        for key in ACTION_LISTS:
            if key in self.actions:
                body[key] = self.actions[key]
            elif key in current:
                body[key] = current[key]
        if p["tags"] is not None:
            body["tags"] = sorted(set(p["tags"]))
        elif "tags" in current:
            body["tags"] = current["tags"]
        return body

    # -- writing ---------------------------------------------------------------
    def refused(self, exc, body):
        """Fail with the server's validation message, reduced to what concerns `body`."""
        kwargs = exc.to_fail_kwargs()
        kwargs.pop("msg")
        summary = condense_validation_error(exc.detail, body) if exc.status == 422 else None
        self.fail("Prefect refused automation %r (HTTP %s): %s" % (self.name, exc.status, summary or exc.detail),
                  **kwargs)

    def write(self, method, path, body):
        try:
            return self.client.request(method, path, data=body)
        except PrefectAPIError as exc:
            if exc.status in (400, 409, 422):
                self.refused(exc, body)
            raise

    def create(self, body):
        created = self.write("POST", "/automations/", body)
        # Names are not unique on the server: when another run created the same automation
        # at the same time, the oldest stays and the newer ones are removed again.
        others = [a for a in self.find_all() if a.get("id") != created.get("id")]
        if others:
            everyone = sorted(others + [created], key=lambda a: (a.get("created") or "", a.get("id") or ""))
            oldest = everyone[0]
            if oldest.get("id") != created.get("id"):
                self.client.delete_if_exists("/automations/%s" % created["id"])
                self.warn("Another automation named %r was created at the same time (%s); this run's copy was"
                          " removed again." % (self.name, oldest.get("id")))
                return oldest
        return created

    def absent(self, current=NOT_READ):
        """Delete the automation; ``current`` is what find() returned when the caller already asked."""
        if current is NOT_READ:
            current = self.find()
        if current is None:
            return self.result(False, header=self.header, automation={})
        if not self.check_mode:
            self.client.delete_if_exists("/automations/%s" % current["id"])
        return self.result(True, describe(current, keep_ids=False), {}, self.header, automation={})

    def present(self, current=NOT_READ):
        """Create or update the automation; ``current`` as for absent()."""
        if current is NOT_READ:
            current = self.find()
        if current is None:
            body = self.desired_body()
            after = body if self.check_mode else self.create(body)
            return self.result(True, {}, describe(body, keep_ids=False), self.header, automation=describe(after))

        fields = self.differences(current)
        if not fields:
            return self.result(False, describe(current, keep_ids=False), describe(current, keep_ids=False),
                               self.header, automation=describe(current))
        path = "/automations/%s" % current["id"]
        if fields == ["enabled"]:
            predicted = dict(current, enabled=self.params["enabled"])
            if not self.check_mode:
                self.write("PATCH", path, {"enabled": self.params["enabled"]})
        else:
            body = self.desired_body(current)
            predicted = dict(current, **body)
            if not self.check_mode:
                self.write("PUT", path, body)
        after = predicted
        if not self.check_mode:
            after = self.client.get_or_none(path) or predicted
        return self.result(True, describe(current, keep_ids=False), describe(after, keep_ids=False), self.header,
                           automation=describe(after), changed_fields=fields)
