# -*- coding: utf-8 -*-
# Copyright (c) selfhosted.prefect maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""selfhosted.prefect.deployment against a real Prefect server (and a real S3 server).

Registration life cycle, idempotency checked over the API (schedule ids and
anchors stay, nothing is written on a second run), diff and check mode, bad
input refused before anything changes, S3 upload idempotency. The end-to-end
runs of each code source on real workers are in test_deployment_e2e.py.
"""

from __future__ import annotations

import sys
import time

PREFECT_PYTHON = sys.executable  # the venv: it has prefect; the module itself runs under /usr/bin/python3

THREE_TIMES_A_DAY = {"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris"}


def make_pool(api, name, worker_type="process"):
    api.post("/work_pools/", {"name": name, "type": worker_type})
    return name


def deployment(api, flow_name, name):
    return api.get_or_none("/deployments/name/%s/%s" % (flow_name, name))


def count_deployments(api):
    return api.post("/deployments/count", {})


def local_args(flows_dir, name, pool, **extra):
    args = {
        "name": name,
        "entrypoint": "weather.py:weather",
        "source": {"type": "local", "path": str(flows_dir)},
        "work_pool_name": pool,
        "prefect_python": PREFECT_PYTHON,
    }
    args.update(extra)
    return args


def schedules_by_id(dep):
    return {s["id"]: s for s in dep["schedules"]}


def create_aws_block(api, name, s3_server, with_endpoint=True):
    block_type = api.get("/block_types/slug/aws-credentials")
    schemas = api.post("/block_schemas/filter", {"block_schemas": {"block_type_id": {"any_": [block_type["id"]]}}})
    schema = sorted(schemas, key=lambda s: [int(x) for x in s["version"].split(".") if x.isdigit()])[-1]
    data = {"aws_access_key_id": s3_server.access_key, "aws_secret_access_key": s3_server.secret_key,
            "region_name": s3_server.region}
    if with_endpoint:
        data["aws_client_parameters"] = {"endpoint_url": s3_server.endpoint_url}
    return api.post("/block_documents/", {"name": name, "block_type_id": block_type["id"],
                                          "block_schema_id": schema["id"], "data": data})


# ---------------------------------------------------------------------------------------------------------------
# life cycle
# ---------------------------------------------------------------------------------------------------------------
def test_lifecycle_local_source(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    name = unique_name("three")
    args = local_args(flows_dir, name, pool, parameters={"city": "Lyon"}, tags=["weather", "guide"],
                      description="The guide's weather flow", version="1.0",
                      schedules=[THREE_TIMES_A_DAY, {"interval": 3600}, {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}])

    # check mode: reports the creation, creates nothing
    result = run_module("deployment", args, check=True, diff=True)
    assert result["changed"] is True and not result["failed"], result
    assert result["deployment"]["id"] is None
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["schedules"][0]["cron"] == "0 8,13,18 * * *"
    assert deployment(prefect_api, "weather", name) is None

    # create
    result = run_module("deployment", args, diff=True)
    assert result["changed"] is True and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert dep is not None
    assert result["deployment"]["id"] == dep["id"]
    assert result["deployment"]["name"] == "weather/%s" % name
    assert result["deployment"]["flow_id"] == dep["flow_id"]
    assert result["flow_name"] == "weather"
    assert dep["entrypoint"] == "weather.py:weather"
    assert dep["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(flows_dir)}}]
    assert dep["work_pool_name"] == pool
    assert dep["parameters"] == {"city": "Lyon"}
    props = dep["parameter_openapi_schema"]["properties"]
    assert props["city"]["default"] == "Paris" and props["city"]["type"] == "string"
    assert props["days"]["default"] == 3
    assert sorted(dep["tags"]) == ["guide", "weather"]
    assert dep["description"] == "The guide's weather flow" and dep["version"] == "1.0"
    assert len(dep["schedules"]) == 3
    crons = [s["schedule"] for s in dep["schedules"] if "cron" in s["schedule"]]
    assert crons == [{"cron": "0 8,13,18 * * *", "timezone": "Europe/Paris", "day_or": True}]
    assert len(result["deployment"]["schedules"]) == 3
    before_second = dep

    # second run: no change, and nothing written (same schedule ids, anchors, update times)
    time.sleep(1.1)
    result = run_module("deployment", args, diff=True)
    assert result["changed"] is False and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert schedules_by_id(dep) == schedules_by_id(before_second)
    assert dep["updated"] == before_second["updated"]
    interval = [s for s in dep["schedules"] if "interval" in s["schedule"]][0]
    assert interval["schedule"]["anchor_date"] == [
        s for s in before_second["schedules"] if "interval" in s["schedule"]][0]["schedule"]["anchor_date"]

    # one field changes: the diff shows it, schedules are not touched
    changed_args = dict(args, parameters={"city": "Nice"})
    result = run_module("deployment", changed_args, diff=True)
    assert result["changed"] is True and not result["failed"], result
    assert result["diff"]["before"]["parameters"] == {"city": "Lyon"}
    assert result["diff"]["after"]["parameters"] == {"city": "Nice"}
    assert result["diff"]["before"]["schedules"] == result["diff"]["after"]["schedules"]
    dep = deployment(prefect_api, "weather", name)
    assert dep["parameters"] == {"city": "Nice"}
    assert schedules_by_id(dep) == schedules_by_id(before_second)

    # pause one schedule: same ids, the interval keeps its anchor
    sched_args = dict(changed_args, schedules=[THREE_TIMES_A_DAY, {"interval": 3600, "active": False},
                                               {"rrule": "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9"}])
    result = run_module("deployment", sched_args, diff=True)
    assert result["changed"] is True, result
    dep_after = deployment(prefect_api, "weather", name)
    assert set(schedules_by_id(dep_after)) == set(schedules_by_id(before_second))
    new_interval = [s for s in dep_after["schedules"] if "interval" in s["schedule"]][0]
    assert new_interval["active"] is False
    assert new_interval["schedule"]["anchor_date"] == interval["schedule"]["anchor_date"]
    assert run_module("deployment", sched_args)["changed"] is False

    # check mode change: reported, not made
    result = run_module("deployment", dict(sched_args, tags=["other"]), check=True, diff=True)
    assert result["changed"] is True
    assert sorted(result["diff"]["after"]["tags"]) == ["other"]
    assert sorted(deployment(prefect_api, "weather", name)["tags"]) == ["guide", "weather"]

    # absent: check mode, then for real, then again
    absent = {"name": name, "flow_name": "weather", "state": "absent"}
    result = run_module("deployment", absent, check=True, diff=True)
    assert result["changed"] is True and result["diff"]["after"] == {}
    assert deployment(prefect_api, "weather", name) is not None
    result = run_module("deployment", absent)
    assert result["changed"] is True and not result["failed"], result
    assert deployment(prefect_api, "weather", name) is None
    result = run_module("deployment", absent)
    assert result["changed"] is False and not result["failed"], result


def test_flow_cache_reused_until_the_code_changes(run_module, prefect_api, unique_name, flows_dir):
    """The flow read once is reused from the cache; editing the code or disabling the cache reads it again."""
    pool = make_pool(prefect_api, unique_name("pool"))
    name = unique_name("cached")
    args = local_args(flows_dir, name, pool)

    # check mode reads the flow but leaves no cache entry behind
    result = run_module("deployment", args, check=True)
    assert result["changed"] is True and not result["failed"], result
    assert result["introspection"]["source"] == "code"
    assert result["introspection"]["cache"] == "miss: no entry"

    result = run_module("deployment", args)
    assert result["changed"] is True and not result["failed"], result
    assert result["introspection"] == {"source": "code", "cache": "miss: no entry", "python": PREFECT_PYTHON}
    schema = deployment(prefect_api, "weather", name)["parameter_openapi_schema"]
    assert set(schema["properties"]) == {"city", "days"}

    result = run_module("deployment", args)
    assert result["changed"] is False and not result["failed"], result
    assert result["introspection"] == {"source": "cache", "cache": "hit: unchanged code and environment",
                                       "python": PREFECT_PYTHON}
    assert result["flow_name"] == "weather"

    # the flow is renamed and gains a parameter: the cache entry is stale, the new flow is read
    code = (flows_dir / "weather.py").read_text()
    code = code.replace("@flow(log_prints=True)", '@flow(name="weather-renamed", log_prints=True)')
    code = code.replace("days: int = 3) -> str:", "days: int = 3, unit: str = \"C\") -> str:")
    (flows_dir / "weather.py").write_text(code)
    result = run_module("deployment", args)
    assert result["changed"] is True and not result["failed"], result
    assert result["introspection"]["cache"] == "miss: the code changed"
    assert result["flow_name"] == "weather-renamed"
    renamed = deployment(prefect_api, "weather-renamed", name)
    assert set(renamed["parameter_openapi_schema"]["properties"]) == {"city", "days", "unit"}

    result = run_module("deployment", dict(args, introspection_cache=False))
    assert result["changed"] is False and not result["failed"], result
    assert result["introspection"] == {"source": "code", "cache": "disabled", "python": PREFECT_PYTHON}

    # flow_name and schema given: nothing is read
    result = run_module("deployment", dict(args, flow_name="weather-renamed",
                                           parameter_openapi_schema=renamed["parameter_openapi_schema"]))
    assert result["changed"] is False and not result["failed"], result
    assert result["introspection"] == {"source": "given"}

    # import mode runs the file and has its own entry, reused the same way
    for expected in ("miss: no entry", "hit: unchanged code and environment"):
        result = run_module("deployment", dict(args, introspection="import"))
        assert result["changed"] is False and not result["failed"], result
        assert result["introspection"]["cache"] == expected


def test_schedules_replaced_one_by_one(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    name = unique_name("sched")
    args = local_args(flows_dir, name, pool, schedules=[
        {"cron": "0 8 * * *", "slug": "morning"}, {"interval": 600, "anchor_date": "2024-01-01T00:00:00Z"}])
    assert run_module("deployment", args)["changed"] is True
    first = deployment(prefect_api, "weather", name)
    morning = [s for s in first["schedules"] if s["slug"] == "morning"][0]
    assert [s["schedule"]["anchor_date"] for s in first["schedules"] if "interval" in s["schedule"]] == [
        "2024-01-01T00:00:00Z"]

    # change the morning cron (same slug -> same id), drop the interval, add an rrule
    args["schedules"] = [{"cron": "30 7 * * *", "slug": "morning"}, {"rrule": "FREQ=DAILY;BYHOUR=20"}]
    result = run_module("deployment", args, diff=True)
    assert result["changed"] is True, result
    dep = deployment(prefect_api, "weather", name)
    assert len(dep["schedules"]) == 2
    new_morning = [s for s in dep["schedules"] if s["slug"] == "morning"][0]
    assert new_morning["id"] == morning["id"]
    assert new_morning["schedule"]["cron"] == "30 7 * * *"
    assert any("FREQ=DAILY;BYHOUR=20" in s["schedule"].get("rrule", "") for s in dep["schedules"])
    assert run_module("deployment", args)["changed"] is False

    # an empty list removes every schedule; omitting schedules leaves them alone
    args["schedules"] = []
    assert run_module("deployment", args)["changed"] is True
    assert deployment(prefect_api, "weather", name)["schedules"] == []
    del args["schedules"]
    assert run_module("deployment", args)["changed"] is False


def test_other_fields_and_concurrency(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    name = unique_name("fields")
    args = local_args(flows_dir, name, pool, work_queue_name="fast", concurrency_limit=2, paused=True,
                      enforce_parameter_schema=False, job_variables={"env": {"TZ": "Europe/Paris"}})
    assert run_module("deployment", args)["changed"] is True
    dep = deployment(prefect_api, "weather", name)
    assert dep["work_queue_name"] == "fast" and dep["paused"] is True
    assert dep["global_concurrency_limit"]["limit"] == 2
    assert dep["enforce_parameter_schema"] is False
    assert dep["job_variables"] == {"env": {"TZ": "Europe/Paris"}}
    assert run_module("deployment", args)["changed"] is False

    args.update(concurrency_limit=0, paused=False, work_queue_name="slow")
    result = run_module("deployment", args, diff=True)
    assert result["changed"] is True and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert dep["work_queue_name"] == "slow" and dep["paused"] is False
    assert not dep.get("global_concurrency_limit")
    assert run_module("deployment", args)["changed"] is False


# ---------------------------------------------------------------------------------------------------------------
# bad input: refused with a clear message, nothing changed on the server
# ---------------------------------------------------------------------------------------------------------------
def _assert_refused(result, *fragments):
    assert result["failed"] is True, result
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]


def test_entrypoint_file_missing(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    before = count_deployments(prefect_api)
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool, entrypoint="nope.py:weather"))
    _assert_refused(result, "entrypoint file nope.py not found")
    assert count_deployments(prefect_api) == before


def test_entrypoint_not_a_flow(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    before = count_deployments(prefect_api)
    flows = prefect_api.post("/flows/count", {})
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool, entrypoint="not_a_flow.py:weather"))
    _assert_refused(result, "is not a flow", "@flow")
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool, entrypoint="weather.py:nothing"))
    _assert_refused(result, "no function 'nothing'")
    assert count_deployments(prefect_api) == before
    assert prefect_api.post("/flows/count", {}) == flows


def test_s3_source_without_credentials(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    before = count_deployments(prefect_api)
    args = local_args(flows_dir, unique_name("x"), pool)
    args["source"] = {"type": "s3", "path": str(flows_dir), "bucket": "flows", "folder": "x",
                      "endpoint_url": "http://127.0.0.1:9"}
    result = run_module("deployment", args)
    _assert_refused(result, "an s3 source needs credentials", "credentials.block")
    # a block that does not exist is refused too, before any upload or write
    args["source"]["credentials"] = {"block": "no-such-block"}
    result = run_module("deployment", args)
    _assert_refused(result, "aws-credentials block 'no-such-block' does not exist")
    assert count_deployments(prefect_api) == before


def test_unknown_pool_and_no_prefect(run_module, prefect_api, unique_name, flows_dir):
    before = count_deployments(prefect_api)
    flows = prefect_api.post("/flows/count", {})
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), "no-such-pool"))
    _assert_refused(result, "work pool 'no-such-pool' does not exist")
    # /usr/bin/python3 has no prefect: a clear message, not a traceback
    args = local_args(flows_dir, unique_name("x"), "no-such-pool", prefect_python="/usr/bin/python3")
    result = run_module("deployment", args)
    _assert_refused(result, "prefect package is not importable", "prefect_python", "flow_name")
    assert count_deployments(prefect_api) == before
    assert prefect_api.post("/flows/count", {}) == flows


def test_bad_schedule_refused(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("pool"))
    before = count_deployments(prefect_api)
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool, schedules=[{"cron": "0 8"}]))
    _assert_refused(result, "schedules[0]", "5 fields")
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool,
                                                 schedules=[{"cron": "0 8 * * *", "interval": 60}]))
    assert result["failed"] is True and "mutually exclusive" in result["msg"], result
    result = run_module("deployment", local_args(flows_dir, unique_name("x"), pool,
                                                 schedules=[{"cron": "0 8 * * *", "timezone": "Mars/Olympus"}]))
    _assert_refused(result, "unknown timezone 'Mars/Olympus'")
    assert count_deployments(prefect_api) == before

    # refused by the server itself (a cron the module cannot check): the flow made for it is removed again
    flows = prefect_api.post("/flows/count", {})
    args = local_args(flows_dir, unique_name("x"), pool, entrypoint="failing.py:always_fails",
                      schedules=[{"cron": "61 25 * * *"}])
    result = run_module("deployment", args)
    assert result["failed"] is True and "cron" in result["msg"].lower(), result
    assert count_deployments(prefect_api) == before
    assert prefect_api.post("/flows/count", {}) == flows


# ---------------------------------------------------------------------------------------------------------------
# S3 and Docker sources: registration (runs are in test_deployment_e2e.py)
# ---------------------------------------------------------------------------------------------------------------
def test_s3_upload_is_idempotent(run_module, prefect_api, unique_name, flows_dir, s3_server, assert_no_secret):
    pool = make_pool(prefect_api, unique_name("pool"))
    block = unique_name("s3cred")
    create_aws_block(prefect_api, block, s3_server)
    name = unique_name("s3")
    folder = "code/%s" % name
    args = local_args(flows_dir, name, pool, schedules=[THREE_TIMES_A_DAY])
    args["source"] = {"type": "s3", "path": str(flows_dir), "bucket": s3_server.bucket, "folder": folder,
                      "endpoint_url": s3_server.endpoint_url, "credentials": {"block": block}}

    result = run_module("deployment", args, check=True, diff=True)
    assert result["changed"] is True and not result["failed"], result
    assert sorted(result["s3_upload"]["uploaded"]) == sorted("%s/%s" % (folder, f) for f in
                                                             ("failing.py", "not_a_flow.py", "weather.py"))
    assert s3_server.keys(folder) == {}

    result = run_module("deployment", args, diff=True)
    assert result["changed"] is True and not result["failed"], result
    keys = s3_server.keys(folder)
    assert sorted(keys) == sorted(result["s3_upload"]["uploaded"])
    dep = deployment(prefect_api, "weather", name)
    assert dep["pull_steps"] == [{"prefect_aws.deployments.steps.pull_from_s3": {
        "requires": "prefect-aws", "bucket": s3_server.bucket, "folder": folder,
        "credentials": "{{ prefect.blocks.aws-credentials.%s }}" % block,
        "client_parameters": {"endpoint_url": s3_server.endpoint_url}}}]
    assert_no_secret(result, s3_server.secret_key)
    assert s3_server.secret_key not in str(dep)

    result = run_module("deployment", args)
    assert result["changed"] is False, result
    assert result["s3_upload"] == {"bucket": s3_server.bucket, "folder": folder, "uploaded": [], "unchanged": 3,
                                   "deleted": []}
    assert s3_server.keys(folder) == keys

    # one file changes: only it is uploaded
    (flows_dir / "failing.py").write_text((flows_dir / "failing.py").read_text() + "\n# changed\n")
    (flows_dir / "not_a_flow.py").unlink()
    result = run_module("deployment", dict(args, source=dict(args["source"], delete_extra=True)), diff=True)
    assert result["changed"] is True, result
    assert result["s3_upload"]["uploaded"] == ["%s/failing.py" % folder]
    assert result["s3_upload"]["deleted"] == ["%s/not_a_flow.py" % folder]
    assert result["diff"]["after"]["s3_objects"].keys() == {"%s/failing.py" % folder}
    assert sorted(s3_server.keys(folder)) == ["%s/failing.py" % folder, "%s/weather.py" % folder]

    # explicit upload keys instead of the block's; a wrong secret is a clear S3 error
    wrong = dict(args["source"], credentials={"block": block, "aws_access_key_id": s3_server.access_key,
                                              "aws_secret_access_key": "wrong-secret"})
    (flows_dir / "weather.py").write_text((flows_dir / "weather.py").read_text() + "\n")
    result = run_module("deployment", dict(args, source=wrong))
    _assert_refused(result, "SignatureDoesNotMatch")
    assert_no_secret(result, "wrong-secret", s3_server.secret_key)

    # a bucket that does not exist
    result = run_module("deployment", dict(args, source=dict(args["source"], bucket="no-such-bucket")))
    _assert_refused(result, "bucket 'no-such-bucket' does not exist")


def test_docker_source_registration(run_module, prefect_api, unique_name, flows_dir):
    pool = make_pool(prefect_api, unique_name("dpool"), worker_type="docker")
    name = unique_name("docker")
    image = "registry.lab.internal:5000/flows/weather:1.0"
    args = {"name": name, "entrypoint": "weather.py:weather", "work_pool_name": pool,
            "source": {"type": "docker", "image": image}, "schedules": [THREE_TIMES_A_DAY]}

    # no code on this host and no flow_name: refused
    result = run_module("deployment", args)
    _assert_refused(result, "flow_name is required")

    # flow_name given: registered without a parameter schema
    result = run_module("deployment", dict(args, flow_name="weather", job_variables={"env": {"A": "1"}}))
    assert result["changed"] is True and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert dep["job_variables"] == {"env": {"A": "1"}, "image": image}
    assert dep["pull_steps"] == [{"prefect.deployments.steps.set_working_directory":
                                  {"directory": "/opt/prefect/flows"}}]

    # a local copy of the image's code gives the schema; the names must agree
    args["source"].update(introspect_path=str(flows_dir), working_dir="/srv/code")
    args.update(prefect_python=PREFECT_PYTHON, job_variables={"env": {"A": "1"}})
    result = run_module("deployment", args, diff=True)
    assert result["changed"] is True and not result["failed"], result
    dep = deployment(prefect_api, "weather", name)
    assert dep["parameter_openapi_schema"]["properties"]["city"]["default"] == "Paris"
    assert dep["pull_steps"][0]["prefect.deployments.steps.set_working_directory"]["directory"] == "/srv/code"
    assert run_module("deployment", args)["changed"] is False
    result = run_module("deployment", dict(args, flow_name="another"))
    _assert_refused(result, "does not match the flow at weather.py:weather")
