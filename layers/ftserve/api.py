"""The API's service layer: auth, request parsing, resolution, metrics and OpenAI-shaped errors."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from typing import Any

from aws_lambda_powertools.event_handler import Response

from ftserve import errors
from ftserve.auth import Forbidden, KeyStore, Unauthorized
from ftserve.inference import (
    ChatRequest,
    CompletionRequest,
    Inference,
    InvalidRequest,
    parse_request,
)
from ftserve.observability import logger, metrics
from ftserve.routing import ModelNotFound, Rejection

PATHS = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}


class PayloadTooLarge(errors.FtserveError):
    pass


def error_response(
    status: int,
    message: str,
    kind: str,
    param: str | None = None,
    code: str | None = None,
    retry_after: int | None = None,
) -> Response:
    headers = {"Retry-After": str(retry_after)} if retry_after else {}
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return Response(
        status_code=status, content_type="application/json", body=json.dumps(body), headers=headers
    )


def json_response(body: dict[str, Any], headers: dict[str, str]) -> Response:
    return Response(
        status_code=200, content_type="application/json", body=json.dumps(body), headers=headers
    )


def map_error(exc: Exception) -> Response:
    """Every failure becomes OpenAI's error JSON with the right status; never a stack trace."""
    if isinstance(exc, InvalidRequest):
        return error_response(400, str(exc), "invalid_request_error", param=exc.param)
    if isinstance(exc, PayloadTooLarge):
        return error_response(413, str(exc), "invalid_request_error", code="payload_too_large")
    if isinstance(exc, Unauthorized):
        return error_response(401, str(exc), "invalid_request_error", code="invalid_api_key")
    if isinstance(exc, Forbidden):
        return error_response(403, str(exc), "permission_denied", code="model_not_allowed")
    if isinstance(exc, ModelNotFound):
        return error_response(
            404, str(exc), "invalid_request_error", param="model", code="model_not_found"
        )
    if isinstance(exc, errors.BackendError):
        kind = "invalid_request_error" if exc.status == 400 else "server_error"
        return error_response(
            exc.status,
            str(exc),
            kind,
            retry_after=exc.retry_after,
            code="backend_" + type(exc).__name__.lower(),
        )
    logger.exception("unhandled error")
    return error_response(
        500,
        "Internal error; the request id is in the x-request-id header",
        "server_error",
        code="internal_error",
    )


@dataclass
class ApiService:
    keys: KeyStore
    inference: Inference
    max_request_bytes: int

    @classmethod
    def from_settings(cls) -> ApiService:
        from ftserve import eventbus
        from ftserve.aws import client
        from ftserve.config import get_settings
        from ftserve.pointer import read_pointers
        from ftserve.registry import Registry
        from ftserve.routing import PointerTable, RecordCache
        from ftserve.serving import Serving

        settings = get_settings()
        records = RecordCache(Registry(settings.table_name))

        def rejected(rejection: Rejection) -> None:
            logger.warning(
                "pointer rejected; serving the last good resolution",
                extra={
                    "model": rejection.model,
                    "value": rejection.value,
                    "reason": rejection.reason,
                    "serving": rejection.serving,
                },
            )
            metrics.add_metric(name="PointerRejected", unit="Count", value=1)
            eventbus.publish(
                "PointerRejected",
                {
                    "model": rejection.model,
                    "value": rejection.value,
                    "reason": rejection.reason,
                    "serving": rejection.serving,
                    "detected_by": "invoke",
                },
                settings.event_bus_name,
            )

        def fetch_failed(exc: Exception) -> None:
            logger.warning(
                "pointer refresh failed; serving the last good resolution",
                extra={"error": str(exc)},
            )
            metrics.add_metric(name="PointerRefreshFailed", unit="Count", value=1)

        pointers = PointerTable(
            fetch=partial(read_pointers, client("ssm"), settings.parameter_prefix),
            records=records,
            ttl_s=settings.pointer_ttl_s,
            on_reject=rejected,
            on_fetch_error=fetch_failed,
        )
        inference = Inference(
            pointers,
            records,
            Serving(settings),
            frozenset(settings.strict_system_prompt_models),
            settings.backend_timeout_s,
        )
        return cls(KeyStore(settings.table_name), inference, settings.max_request_bytes)

    def check_size(self, raw: str) -> None:
        if len(raw) > self.max_request_bytes:
            raise PayloadTooLarge(
                f"The request body is {len(raw)} bytes; the limit is {self.max_request_bytes}"
            )

    def complete(
        self, kind: str, body: Any, headers: dict[str, str], context: Any
    ) -> tuple[dict[str, Any], dict[str, str]]:
        key = self.keys.authenticate(headers.get("authorization"))
        request = parse_request(ChatRequest if kind == "chat" else CompletionRequest, body)
        caller = request.user or headers.get("x-ftserve-user") or key.key_id
        started = time.perf_counter()
        target = None
        try:
            target = self.inference.target(request.model, caller, key)
            self._dimensions(target.record.model, target.record.version)
            served = self.inference.complete(request, caller, key, PATHS[kind], target=target)
        except errors.BackendError:
            if target is not None:
                metrics.add_metric(name="Errors", unit="Count", value=1)
                metrics.add_metric(name="Requests", unit="Count", value=1)
            raise
        record = served.target.record
        latency_ms = (time.perf_counter() - started) * 1000
        usage = served.body.get("usage") or {}
        metrics.add_metric(name="Requests", unit="Count", value=1)
        metrics.add_metric(name="Errors", unit="Count", value=0)
        metrics.add_metric(name="Latency", unit="Milliseconds", value=latency_ms)
        metrics.add_metric(name="PromptTokens", unit="Count", value=usage.get("prompt_tokens", 0))
        metrics.add_metric(
            name="CompletionTokens", unit="Count", value=usage.get("completion_tokens", 0)
        )
        if served.system_prompt_drift:
            metrics.add_metric(name="SystemPromptDrift", unit="Count", value=1)
        if "id" in served.body:
            served.body["id"] = f"{served.body['id']}.{record.model}.{record.version}"
        request_id = getattr(context, "aws_request_id", "")
        logger.info(
            "served",
            extra={
                "request_id": request_id,
                "model": record.model,
                "version": record.version,
                "how": served.target.how,
                "latency_ms": round(latency_ms, 2),
            },
        )
        return served.body, {
            "x-ftserve-version": record.name,
            "x-ftserve-base": record.manifest.base_model,
            "x-request-id": request_id,
        }

    def list_models(self, headers: dict[str, str]) -> dict[str, Any]:
        key = self.keys.authenticate(headers.get("authorization"))
        data = []
        for model, resolution in sorted(self.inference.pointers.models().items()):
            if not key.allows(model):
                continue
            primary = resolution.records[resolution.pointer.primary]
            data.append(
                {
                    "id": model,
                    "object": "model",
                    "created": 0,
                    "owned_by": "ftserve",
                    "active": str(resolution.pointer),
                    "base_model": primary.manifest.base_model,
                }
            )
        return {"object": "list", "data": data}

    def feedback(self, body: Any, headers: dict[str, str]) -> dict[str, Any]:
        """`{"response_id": …, "score": -1..1}` counted for the version that produced it."""
        key = self.keys.authenticate(headers.get("authorization"))
        if not isinstance(body, dict) or not isinstance(body.get("response_id"), str):
            raise InvalidRequest(
                'Send {"response_id": <id of a response>, "score": -1..1}', param="response_id"
            )
        score = body.get("score")
        if isinstance(score, bool) or not isinstance(score, int | float) or not -1 <= score <= 1:
            raise InvalidRequest("score must be a number from -1 (bad) to 1 (good)", param="score")
        parts = body["response_id"].rsplit(".", 2)
        if len(parts) != 3:
            raise InvalidRequest(
                "response_id is not the id of an ftserve response", param="response_id"
            )
        _, model, version = parts
        if not key.allows(model):
            raise Forbidden(f"This API key may not use the model '{model}'")
        record = self.inference.records.get(model, version)
        if record is None:
            raise ModelNotFound(f"The model '{model}@{version}' does not exist")
        self._dimensions(model, version)
        metrics.add_metric(name="Feedback", unit="Count", value=1)
        metrics.add_metric(name="FeedbackScore", unit="None", value=float(score))
        metrics.add_metric(name="NegativeFeedback", unit="Count", value=1 if score < 0 else 0)
        return {"object": "feedback", "model": record.name, "score": score}

    @staticmethod
    def _dimensions(model: str, version: str) -> None:
        metrics.add_dimension(name="model", value=model)
        metrics.add_dimension(name="version", value=version)
