"""Canary: every minute, promote canaries whose bake time is over with their alarms quiet."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.alarms import alarm_states
from ftserve.aws import client
from ftserve.config import get_settings
from ftserve.observability import logger, metrics
from ftserve.registry import Registry
from ftserve.release import Releases
from ftserve.tracing import tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    registry = Registry(settings.table_name)
    releases = Releases(registry, client("ssm"), settings.parameter_prefix, settings.event_bus_name)
    cloudwatch = client("cloudwatch")
    promoted = releases.finish_canaries(
        registry.models(), lambda model, version: alarm_states(cloudwatch, model, version)
    )
    metrics.add_metric(name="CanariesPromoted", unit="Count", value=len(promoted))
    return {"promoted": promoted}
