"""Reconcile function: on a schedule (or invoked), reload adapters replicas have forgotten."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.aws import client
from ftserve.config import get_settings
from ftserve.observability import logger, metrics
from ftserve.reconcile import reconcile
from ftserve.registry import Registry
from ftserve.serving import Serving
from ftserve.tracing import tracer


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = get_settings()
    report = reconcile(
        Registry(settings.table_name),
        Serving(settings),
        client("ssm"),
        settings.parameter_prefix,
        settings.keep_warm,
    )
    metrics.add_metric(name="AdaptersReloaded", unit="Count", value=len(report.loaded))
    metrics.add_metric(name="ReplicasUnreachable", unit="Count", value=len(set(report.unreachable)))
    return report.as_dict()
