"""Invoke function: the OpenAI-compatible API (API Gateway HTTP API → here → the backend)."""

from __future__ import annotations

import json
import time
from functools import lru_cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from ftserve.api import (
    ApiService,
    error_response,
    json_response,
    map_error,
)
from ftserve.observability import logger, metrics

app = APIGatewayHttpResolver()


@lru_cache(maxsize=1)
def _service() -> ApiService:
    return ApiService.from_settings()


def _body() -> Any:
    raw = app.current_event.decoded_body or ""
    _service().check_size(raw)
    try:
        return json.loads(raw)
    except ValueError as exc:
        from ftserve.inference import InvalidRequest

        raise InvalidRequest(f"The request body is not valid JSON: {exc}") from exc


def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (app.current_event.headers or {}).items()}


@app.post("/v1/chat/completions")
def chat_completions() -> Response:
    return json_response(*_service().complete("chat", _body(), _headers(), app.lambda_context))


@app.post("/v1/completions")
def completions() -> Response:
    return json_response(
        *_service().complete("completion", _body(), _headers(), app.lambda_context)
    )


@app.get("/v1/models")
def list_models() -> Response:
    return json_response(_service().list_models(_headers()), {})


@app.post("/v1/feedback")
def feedback() -> Response:
    return json_response(_service().feedback(_body(), _headers()), {})


@app.not_found
def not_found(exc: Exception) -> Response:
    return error_response(
        404,
        f"Unknown route {app.current_event.http_method} {app.current_event.path}",
        "invalid_request_error",
        code="unknown_route",
    )


@app.exception_handler(Exception)
def handle_error(exc: Exception) -> Response:
    return map_error(exc)


# No Tracer on the hot path (see ftserve.observability); Lambda's active tracing still records it.
@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    started = time.perf_counter()
    response = app.resolve(event, context)
    logger.append_keys(latency_ms=round((time.perf_counter() - started) * 1000, 2))
    return response
