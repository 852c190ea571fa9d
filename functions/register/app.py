"""Registration function: S3 "Object Created" (via EventBridge) for a manifest → a version."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import S3EventNotificationEventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.config import get_settings
from ftserve.observability import logger, metrics
from ftserve.registration import Registrar
from ftserve.registry import Registry
from ftserve.serving import Serving
from ftserve.tracing import tracer


@lru_cache(maxsize=1)
def _registrar() -> Registrar:
    settings = get_settings()
    return Registrar(
        registry=Registry(settings.table_name),
        bucket=settings.bucket_name,
        bus_name=settings.event_bus_name,
        max_adapter_bytes=settings.max_adapter_bytes,
        max_manifest_bytes=settings.max_manifest_bytes,
        serving=Serving(settings),
        alarms=settings.alarms,
    )


@lru_cache(maxsize=1)
def _register_once() -> tuple[Any, Any]:
    """Idempotent on the object (bucket, key, version/etag), never on the event id."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    def register(delivery: dict[str, str]) -> dict[str, Any]:
        return _registrar().register(delivery["key"], delivery.get("version_id") or None).as_dict()

    table = get_settings().idempotency_table_name
    config = IdempotencyConfig(expires_after_seconds=24 * 3600, raise_on_no_idempotency_key=True)
    if not table:
        return config, register
    return config, idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=DynamoDBPersistenceLayer(table_name=table),
        config=config,
    )(register)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    s3_event = parse(event=event, model=S3EventNotificationEventBridgeModel)
    detail = s3_event.detail
    delivery = {
        "bucket": detail.bucket.name,
        "key": detail.object.key,
        "object": detail.object.version_id or detail.object.etag or detail.object.sequencer or "",
        "version_id": detail.object.version_id or "",
    }
    logger.append_keys(s3_key=delivery["key"])
    config, register_once = _register_once()
    config.register_lambda_context(context)
    outcome = register_once(delivery=delivery)
    metrics.add_metric(name=f"Adapter{outcome['result'].capitalize()}", unit="Count", value=1)
    return dict(outcome)
