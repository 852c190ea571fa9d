"""Hosted fine-tunes by webhook: a signed `fine_tuning.job.succeeded` becomes a version through
the same S3 → registration path; forged, stale and repeated deliveries change nothing."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support import load_event


class Platform:
    """An OpenAI-compatible platform's fine-tuning API on loopback (the external party)."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        platform = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                if self.headers.get("authorization") != "Bearer sk-platform":
                    return self._send(401, {"error": {"message": "bad key"}})
                if self.path == "/v1/models":
                    models = [
                        {"id": j["fine_tuned_model"], "object": "model"}
                        for j in platform.jobs.values()
                    ]
                    return self._send(200, {"object": "list", "data": models})
                job = platform.jobs.get(self.path.rsplit("/", 1)[-1])
                return (
                    self._send(200, job)
                    if job
                    else self._send(404, {"error": {"message": "no job"}})
                )

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook(aws: Any) -> Iterator[dict[str, Any]]:
    platform = Platform()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    sm = aws.clients("secretsmanager")
    names = (f"ftserve/webhook-{uuid.uuid4().hex[:6]}", f"ftserve/platform-{uuid.uuid4().hex[:6]}")
    sm.create_secret(Name=names[0], SecretString=secret)
    sm.create_secret(Name=names[1], SecretString="sk-platform")
    spec = aws.cloud.functions["WebhookFunction"]
    saved = dict(spec.environment)
    spec.environment |= {
        "FTSERVE_OPENAI_WEBHOOK_SECRET_NAME": names[0],
        "FTSERVE_OPENAI_API_KEY_SECRET": names[1],
        "FTSERVE_OPENAI_BASE_URL": platform.url,
    }
    aws.dispatcher.reload("WebhookFunction")
    yield {"platform": platform, "secret": secret, "stack": aws}
    spec.environment.clear()
    spec.environment.update(saved)
    aws.dispatcher.reload("WebhookFunction")
    platform.server.shutdown()


def deliver(
    ctx: dict[str, Any],
    job_id: str,
    stamp: int | None = None,
    secret: str | None = None,
    msg_id: str | None = None,
) -> tuple[int, dict[str, Any]]:
    from ftserve.webhooks import sign

    body = json.dumps(
        {
            "object": "event",
            "id": f"evt_{job_id}",
            "type": "fine_tuning.job.succeeded",
            "created_at": int(time.time()),
            "data": {"id": job_id},
        }
    )
    stamp = stamp or int(time.time())
    msg_id = msg_id or f"msg_{job_id}"
    event = load_event("apigw_chat_completions")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/v1/webhooks/openai"
    event["routeKey"] = event["requestContext"]["routeKey"] = "POST /v1/webhooks/openai"
    event["headers"] = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret or ctx["secret"], msg_id, stamp, body),
    }
    event["body"] = body
    result = ctx["stack"].dispatcher.invoke("WebhookFunction", event)
    return result["statusCode"], json.loads(result["body"])


def add_job(ctx: dict[str, Any], model: str) -> str:
    job_id = f"ftjob-{uuid.uuid4().hex[:10]}"
    ctx["platform"].jobs[job_id] = {
        "id": job_id,
        "object": "fine_tuning.job",
        "status": "succeeded",
        "model": "gpt-4.1-mini-2025-04-14",
        "fine_tuned_model": f"ft:gpt-4.1-mini-2025-04-14:acme:{model}:{job_id[-6:]}",
        "training_file": "file-train",
        "validation_file": None,
        "hyperparameters": {"n_epochs": 3},
        "metadata": {"ftserve_model": model, "eval_accuracy": "0.93"},
    }
    return job_id


def test_a_signed_webhook_registers_the_fine_tune_as_the_next_version(
    webhook: dict[str, Any],
) -> None:
    from ftserve.registry import Registry

    stack, model = webhook["stack"], f"h-{uuid.uuid4().hex[:8]}"
    job = add_job(webhook, model)

    status, body = deliver(webhook, job)
    assert (status, body["manifest"]) == (202, f"adapters/{model}/v1/ftserve.json")
    stack.dispatcher.pump()

    record = Registry(stack.table).get_version(model, "v1")
    assert record.manifest.backend == "openai" and record.status == "serving"
    assert record.manifest.hosted_model_id == webhook["platform"].jobs[job]["fine_tuned_model"]
    assert record.manifest.base_model == "openai/gpt-4.1-mini@2025-04-14"
    assert record.manifest.hyperparams["job_id"] == job and record.manifest.eval == {
        "accuracy": 0.93
    }

    # The platform retries the same delivery: still one version
    assert deliver(webhook, job)[1]["manifest"] == f"adapters/{model}/v1/ftserve.json"
    stack.dispatcher.pump()
    assert [v.version for v in Registry(stack.table).list_versions(model)] == ["v1"]
    # The next job of the same model becomes v2
    assert (
        deliver(webhook, add_job(webhook, model))[1]["manifest"]
        == f"adapters/{model}/v2/ftserve.json"
    )


@pytest.mark.parametrize("case", ["forged", "stale", "future"])
def test_forged_or_stale_webhooks_are_refused_and_nothing_is_written(
    webhook: dict[str, Any], case: str
) -> None:
    model = f"h-{uuid.uuid4().hex[:8]}"
    job = add_job(webhook, model)
    other = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    stamp = {"stale": int(time.time()) - 310, "future": int(time.time()) + 310}.get(case)
    status, body = deliver(webhook, job, stamp=stamp, secret=other if case == "forged" else None)
    assert status == 401 and body["error"]["message"]
    listed = (
        webhook["stack"]
        .clients("s3")
        .list_objects_v2(Bucket=webhook["stack"].bucket, Prefix=f"adapters/{model}/")
    )
    assert listed.get("KeyCount", 0) == 0
