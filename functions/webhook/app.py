"""Webhook function: OpenAI's `fine_tuning.job.succeeded` → a new hosted version (via S3)."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.observability import logger, metrics
from ftserve.tracing import tracer

app = APIGatewayHttpResolver()


@lru_cache(maxsize=1)
def _secrets() -> tuple[str, str | None]:
    from ftserve.backends.hosted import api_key
    from ftserve.config import get_settings
    from ftserve.webhooks import WebhookRejected

    settings = get_settings()
    if not settings.openai_webhook_secret_name:
        raise WebhookRejected("this deployment has no OpenAI webhook secret configured", 503)
    return str(api_key(settings.openai_webhook_secret_name)), api_key(
        settings.openai_api_key_secret
    )


@lru_cache(maxsize=1)
def _accept_once() -> tuple[Any, Any]:
    """Idempotent on the job id: the platform retries deliveries; one job is one version."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    from ftserve.aws import client
    from ftserve.backends.hosted import HostedBackend
    from ftserve.config import get_settings
    from ftserve.errors import BackendUnavailable
    from ftserve.webhooks import WebhookRejected, manifest_for_job, write_manifest

    settings = get_settings()

    def accept(delivery: dict[str, str]) -> dict[str, str]:
        platform = HostedBackend(settings.openai_base_url, _secrets()[1])
        try:
            job = platform.fine_tuning_job(delivery["job_id"])
        except BackendUnavailable as exc:
            raise WebhookRejected(str(exc), 502) from exc
        manifest = manifest_for_job(job, settings.openai_base_url, settings.openai_api_key_secret)
        key = write_manifest(client("s3"), settings.bucket_name, manifest)
        return {"manifest": key}

    config = IdempotencyConfig(event_key_jmespath="job_id", expires_after_seconds=7 * 24 * 3600)
    if not settings.idempotency_table_name:
        return config, accept
    return config, idempotent_function(
        data_keyword_argument="delivery",
        persistence_store=DynamoDBPersistenceLayer(table_name=settings.idempotency_table_name),
        config=config,
    )(accept)


def _reply(status: int, body: dict[str, Any]) -> Response:
    return Response(status_code=status, content_type="application/json", body=json.dumps(body))


@app.post("/v1/webhooks/openai")
def openai_webhook() -> Response:
    from ftserve.webhooks import WebhookRejected, verify

    body = app.current_event.decoded_body or ""
    headers = {k.lower(): v for k, v in (app.current_event.headers or {}).items()}
    try:
        verify(_secrets()[0], headers, body)
        event = json.loads(body)
        if event.get("type") != "fine_tuning.job.succeeded":
            return _reply(200, {"result": "ignored", "type": event.get("type")})
        config, accept = _accept_once()
        config.register_lambda_context(app.lambda_context)
        key = accept(delivery={"job_id": str(event["data"]["id"])})["manifest"]
    except WebhookRejected as exc:
        logger.warning("webhook rejected", extra={"reason": str(exc)})
        return _reply(exc.status, {"error": {"message": str(exc), "type": "invalid_request_error"}})
    except (ValueError, KeyError, TypeError) as exc:
        return _reply(
            400,
            {
                "error": {
                    "message": f"unusable webhook payload: {exc}",
                    "type": "invalid_request_error",
                }
            },
        )
    metrics.add_metric(name="HostedFineTuneReceived", unit="Count", value=1)
    logger.info(
        "hosted fine-tune received", extra={"key": key, "webhook_id": headers["webhook-id"]}
    )
    return _reply(202, {"result": "accepted", "manifest": key})


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
