"""Auto-revert: a version's alarm fired (CloudWatch "Alarm State Change" → EventBridge → here):
move its traffic back, once, however often the alarm fires."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.aws import client
from ftserve.config import get_settings
from ftserve.observability import logger, metrics
from ftserve.registry import Registry
from ftserve.release import Releases, alarm_target
from ftserve.tracing import tracer
from ftserve.triggers import AlarmStateChangeEvent


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = parse(event=event, model=AlarmStateChangeEvent).detail
    if change.state.value != "ALARM":
        return {"result": "ignored", "state": change.state.value}
    target = alarm_target(change.model_dump())
    if target is None:
        return {"result": "ignored", "alarm": change.alarmName}
    settings = get_settings()
    releases = Releases(
        Registry(settings.table_name),
        client("ssm"),
        settings.parameter_prefix,
        settings.event_bus_name,
    )
    outcome = releases.revert_alarming(*target, alarm=change.alarmName)
    if outcome["result"] == "reverted":
        metrics.add_metric(name="AutoReverted", unit="Count", value=1)
    logger.info("alarm handled", extra={"alarm": change.alarmName, **outcome})
    return outcome
