"""Pointer guard: a raw SSM write to a pointer is recorded, or reverted if it names no servable
version (SSM "Parameter Store Change" → EventBridge → here)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.aws import client
from ftserve.config import get_settings
from ftserve.observability import logger, metrics
from ftserve.pointer import model_from_parameter
from ftserve.registry import Registry
from ftserve.release import Releases
from ftserve.tracing import tracer
from ftserve.triggers import ParameterStoreChangeEvent


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    change = parse(event=event, model=ParameterStoreChangeEvent).detail
    settings = get_settings()
    model = model_from_parameter(settings.parameter_prefix, change.name)
    if model is None:
        return {"result": "ignored", "name": change.name}
    releases = Releases(
        Registry(settings.table_name),
        client("ssm"),
        settings.parameter_prefix,
        settings.event_bus_name,
    )
    outcome = releases.guard(model)
    if outcome["result"] == "reverted":
        metrics.add_metric(name="PointerReverted", unit="Count", value=1)
    logger.info("pointer change", extra={"model": model, **outcome})
    return outcome
