"""Promotion, rollback (CLI and raw SSM write), the pointer guard, auto-revert and canaries,
against moto server and real vLLM. moto emits neither SSM nor alarm events: they are put on
EventBridge here with their real shapes, and reach the functions through the template's rules."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.integration.test_invoke_api import Api
from tests.support import load_event

pytestmark = pytest.mark.vllm


@pytest.fixture
def api(served: Any) -> Iterator[Api]:
    from ftserve.auth import KeyStore

    family = f"r{uuid.uuid4().hex[:6]}"
    key, _ = KeyStore(served.table).create("tests", [f"{family}-*"])
    yield Api(served, "", key, f"{family}-support")


def cli(api: Api, *args: str) -> Any:
    from typer.testing import CliRunner

    from ftserve.cli import app

    result = CliRunner().invoke(
        app,
        [*args, "--endpoint-url", api.stack.url, "--table", api.stack.table],
        env={"FTSERVE_ACTOR": "alice"},
    )
    return result


def serves(api: Api, version: str, within_s: float = 3.0) -> float:
    """Seconds until every response is attributed to `version` (fails past `within_s`)."""
    started = time.monotonic()
    while api.chat()[1]["x-ftserve-version"] != f"{api.model}@{version}":
        assert time.monotonic() - started < within_s, f"{version} not served within {within_s} s"
        time.sleep(0.05)
    return time.monotonic() - started


def ssm_change_event(api: Api) -> None:
    event = load_event("ssm_parameter_store_change")
    name = f"/ftserve/models/{api.model}/active"
    event["detail"]["name"] = name
    api.stack.clients("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(event["detail"]),
                "Resources": [f"arn:aws:ssm:us-east-1:123456789012:parameter{name}"],
            }
        ]
    )


def alarm_event(api: Api, version: str, state: str = "ALARM") -> None:
    event = load_event("cloudwatch_alarm_state_change")
    detail = event["detail"]
    detail["alarmName"] = f"ftserve-{api.model}-{version}-errors"
    detail["state"]["value"] = state
    for metric in detail["configuration"]["metrics"]:
        if "metricStat" in metric:
            metric["metricStat"]["metric"]["dimensions"] |= {"model": api.model, "version": version}
    api.stack.clients("events").put_events(
        Entries=[
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(detail),
            }
        ]
    )


def test_promote_then_rollback_by_cli_and_by_raw_ssm_write_each_served_within_the_ttl(
    api: Api,
) -> None:
    for version, seed in (("v1", 1), ("v2", 2), ("v3", 3)):
        api.register(version, seed=seed)
    assert cli(api, "promote", api.model, "v1").exit_code == 0
    serves(api, "v1")
    promoted = cli(api, "promote", api.model, "v2", "--reason", "better eval")
    assert promoted.exit_code == 0, promoted.output
    serves(api, "v2")

    rolled = cli(api, "rollback", api.model, "--reason", "customer complaints")
    assert rolled.exit_code == 0, rolled.output
    assert serves(api, "v1") < 3.0

    # An operator's raw write (aws ssm put-parameter --overwrite) is just as valid
    api.set_pointer("v3")
    ssm_change_event(api)
    api.stack.dispatcher.pump()
    serves(api, "v3")

    history = json.loads(cli(api, "history", api.model, "--json").output)
    moves = [
        (h["action"], h["details"].get("from"), h["details"].get("to"), h["actor"])
        for h in history
        if "to" in h["details"]
    ]
    assert moves == [
        ("promoted", None, "v1", "cli:alice"),
        ("promoted", "v1", "v2", "cli:alice"),
        ("rolled_back", "v2", "v1", "cli:alice"),
        ("pointer_changed", "v1", "v3", "ssm"),
    ]
    assert [h["reason"] for h in history if h["action"] == "rolled_back"] == ["customer complaints"]
    kinds = [e["detail-type"] for e in api.stack.events() if e["detail"].get("model") == api.model]
    assert kinds.count("ModelPromoted") == 2 and kinds.count("ModelRolledBack") == 1


def test_a_raw_write_naming_no_servable_version_is_reverted(api: Api) -> None:
    api.register("v1", seed=1)
    assert cli(api, "promote", api.model, "v1").exit_code == 0
    api.stack.events()

    api.set_pointer("v9")
    ssm_change_event(api)
    api.stack.dispatcher.pump()

    assert (
        api.stack.clients("ssm").get_parameter(Name=f"/ftserve/models/{api.model}/active")[
            "Parameter"
        ]["Value"]
        == "v1"
    )
    events = [e for e in api.stack.events() if e["detail"].get("model") == api.model]
    rejected = [e["detail"] for e in events if e["detail-type"] == "PointerRejected"]
    assert rejected and rejected[0]["value"] == "v9" and rejected[0]["detected_by"] == "guard"
    history = json.loads(cli(api, "history", api.model, "--json").output)
    assert (
        history[-1]["action"] == "pointer_reverted" and history[-1]["details"]["rejected"] == "v9"
    )
    # The guard's own write comes back as a change event: already recorded, nothing more happens
    ssm_change_event(api)
    api.stack.dispatcher.pump()
    assert len(json.loads(cli(api, "history", api.model, "--json").output)) == len(history)


def test_an_alarm_on_v3_reverts_to_v2_once_even_when_it_fires_three_times(api: Api) -> None:
    for version, seed in (("v1", 1), ("v2", 2), ("v3", 3)):
        api.register(version, seed=seed)
    for version in ("v1", "v2", "v3"):
        assert cli(api, "promote", api.model, version).exit_code == 0
    serves(api, "v3")

    for _ in range(3):
        alarm_event(api, "v3")
    api.stack.dispatcher.pump()

    serves(api, "v2")
    history = json.loads(cli(api, "history", api.model, "--json").output)
    reverts = [h for h in history if h["action"] == "auto_reverted"]
    assert len(reverts) == 1
    assert (reverts[0]["details"]["from"], reverts[0]["details"]["to"]) == ("v3", "v2")
    assert reverts[0]["actor"] == f"alarm:ftserve-{api.model}-v3-errors"
    # An alarm that returns to OK and fires again on v3 does not walk back to v1
    alarm_event(api, "v3", state="OK")
    alarm_event(api, "v3")
    api.stack.dispatcher.pump()
    assert api.chat()[1]["x-ftserve-version"] == f"{api.model}@v2"
    # and an alarm on v2 now never flaps traffic back onto v3, the version reverted for an alarm
    api.stack.events()
    alarm_event(api, "v2")
    api.stack.dispatcher.pump()
    assert api.chat()[1]["x-ftserve-version"] == f"{api.model}@v2"
    blocked = [e["detail"] for e in api.stack.events() if e["detail-type"] == "PointerRejected"]
    assert blocked and blocked[0]["detected_by"] == "auto-revert" and blocked[0]["value"] == "v3"


def test_a_canary_promotes_after_a_quiet_bake_and_reverts_on_an_alarm(api: Api) -> None:
    for version, seed in (("v1", 1), ("v2", 2), ("v3", 3)):
        api.register(version, seed=seed)
    assert cli(api, "promote", api.model, "v1").exit_code == 0
    started = cli(api, "promote", api.model, "v2", "--canary", "50", "--bake", "1s")
    assert started.exit_code == 0, started.output
    assert (
        api.stack.clients("ssm").get_parameter(Name=f"/ftserve/models/{api.model}/active")[
            "Parameter"
        ]["Value"]
        == "v2:50,v1:50"
    )
    time.sleep(1.1)
    assert api.stack.dispatcher.invoke("CanaryFunction", {"source": "aws.events"})["promoted"]
    serves(api, "v2")

    assert cli(api, "promote", api.model, "v3", "--canary", "50", "--bake", "30m").exit_code == 0
    alarm_event(api, "v3")
    api.stack.dispatcher.pump()
    serves(api, "v2")
    assert api.stack.dispatcher.invoke("CanaryFunction", {"source": "aws.events"})["promoted"] == []
    actions = [h["action"] for h in json.loads(cli(api, "history", api.model, "--json").output)]
    assert actions[-4:] == ["canary_started", "canary_promoted", "canary_started", "auto_reverted"]


def test_the_gate_refuses_a_failing_eval_unless_forced_with_a_reason(api: Api) -> None:
    api.register("v1", seed=1)
    assert cli(api, "gate", "set", api.model, "accuracy>=0.95").exit_code == 0

    refused = cli(api, "promote", api.model, "v1")
    assert (
        refused.exit_code == 1 and "accuracy=0.91 fails the gate accuracy>=0.95" in refused.output
    )
    assert cli(api, "promote", api.model, "v1", "--force").exit_code == 1  # no reason given
    forced = cli(api, "promote", api.model, "v1", "--force", "--reason", "hotfix for incident 42")
    assert forced.exit_code == 0, forced.output
    last = json.loads(cli(api, "history", api.model, "--json").output)[-1]
    assert last["details"]["forced"] is True and last["reason"] == "hotfix for incident 42"


def test_status_shows_pointer_loaded_replicas_and_alarms(api: Api, vllm: Any) -> None:
    api.register("v1", seed=1)
    assert cli(api, "promote", api.model, "v1").exit_code == 0
    report = json.loads(cli(api, "status", api.model, "--json").output)
    assert report["pointer"] == "v1"
    v1 = report["versions"][0]
    assert v1["loaded_on"] == [vllm.url]
    assert set(v1["alarms"]) == {
        f"ftserve-{api.model}-v1-{k}" for k in ("errors", "latency-p99", "feedback")
    }
