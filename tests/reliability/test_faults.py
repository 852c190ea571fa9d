"""Faults: a replica that is down, AWS throttling, SSM unreachable, a slow backend, and a pointer
flipped under load. Nothing is lost; traffic keeps being served; failures are clear."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.conftest import STUB_BASE
from tests.support import adapter_files, load_event, manifest, register_on_stub, upload


def _model() -> str:
    return f"flt-{uuid.uuid4().hex[:8]}"


@contextmanager
def injected(client: Any, event: str, handler: Any) -> Iterator[None]:
    client.meta.events.register(event, handler)
    try:
        yield
    finally:
        client.meta.events.unregister(event, handler)


def _chat(aws: Any, key: str, model: str) -> dict[str, Any]:
    event = load_event("apigw_chat_completions")
    event["headers"]["authorization"] = f"Bearer {key}"
    event["body"] = json.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
    return dict(aws.dispatcher.invoke("InvokeFunction", event))


@pytest.fixture
def key(aws: Any) -> str:
    from ftserve.auth import KeyStore

    return KeyStore(aws.table).create("faults", ["flt-*"])[0]


def test_a_replica_down_during_registration_gets_the_adapter_when_it_returns(
    aws: Any, replica: Any
) -> None:
    from ftserve.registry import Registry
    from ftserve_local.moto_server import free_port
    from ftserve_local.stub_backend import StubBackend

    port = free_port()
    spec = aws.cloud.functions
    for name in ("RegisterFunction", "ReconcileFunction"):
        spec[name].environment["FTSERVE_VLLM_ENDPOINTS"] = json.dumps(
            {STUB_BASE: [f"http://127.0.0.1:{port}"]}
        )
        aws.dispatcher.reload(name)
    model = _model()
    register_on_stub(aws, model)
    record = Registry(aws.table).get_version(model, "v1")
    assert record.status == "registered" and "waiting for replicas" in record.status_reason

    back = StubBackend(port=port)  # the replica returns
    try:
        report = aws.dispatcher.invoke("ReconcileFunction", {"source": "aws.events"})
    finally:
        back.stop()
    assert f"{model}@v1 on http://127.0.0.1:{port}" in report["loaded"]
    assert back.loads.count(f"{model}@v1") == 1
    assert Registry(aws.table).get_version(model, "v1").status == "serving"


def test_dynamodb_throttling_is_retried_then_the_event_lands_intact_in_the_dead_letter_queue(
    aws: Any, replica: Any
) -> None:
    from botocore.awsrequest import AWSResponse

    from ftserve.aws import client

    attempts = [0]

    class Body:
        def __init__(self, data: bytes) -> None:
            self.data = data

        def stream(self, **_: Any) -> Iterator[bytes]:
            yield self.data

    def throttle(request: Any, **_: Any) -> AWSResponse:
        attempts[0] += 1
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException",
                "message": "Rate of requests exceeds the allowed throughput.",
            }
        ).encode()
        return AWSResponse(request.url, 400, {"x-amzn-requestid": "throttled"}, Body(body))

    model = _model()
    aws.dispatcher.prepare("RegisterFunction")
    with injected(client("dynamodb"), "before-send.dynamodb.TransactWriteItems", throttle):
        upload(
            aws.clients("s3"),
            aws.bucket,
            model,
            "v1",
            adapter_files(seed=1),
            manifest(model, "v1", STUB_BASE),
        )
        aws.dispatcher.pump()

    assert attempts[0] >= 3 * 2  # botocore's own retries, on each of Lambda's three attempts
    dlq = aws.cloud.functions["RegisterFunction"].on_failure_queue_url
    messages = aws.clients("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    failed = [json.loads(m["Body"]) for m in messages]
    mine = [
        f
        for f in failed
        if f["requestPayload"]["detail"]["object"]["key"].startswith(f"adapters/{model}/")
    ]
    assert len(mine) == 1
    assert mine[0]["requestContext"]["condition"] == "RetriesExhausted"
    assert "throttled" in mine[0]["responsePayload"]["errorMessage"]
    assert mine[0]["requestPayload"]["detail-type"] == "Object Created"  # the event, intact
    # and once DynamoDB recovers, redriving that event registers the version
    assert (
        aws.dispatcher.invoke("RegisterFunction", mine[0]["requestPayload"])["result"]
        == "registered"
    )


def test_the_invoke_path_keeps_serving_when_ssm_is_unreachable(
    aws: Any, replica: Any, key: str
) -> None:
    from botocore.exceptions import EndpointConnectionError

    from ftserve.aws import client

    model = _model()
    register_on_stub(aws, model)
    aws.clients("ssm").put_parameter(
        Name=f"/ftserve/models/{model}/active", Value="v1", Type="String", Overwrite=True
    )
    assert _chat(aws, key, model)["statusCode"] == 200

    def unreachable(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://ssm.us-east-1.amazonaws.com")

    with injected(client("ssm"), "before-send.ssm", unreachable):
        time.sleep(2.1)  # past the pointer TTL: the container tries to refresh
        for _ in range(3):
            result = _chat(aws, key, model)
            assert result["statusCode"] == 200
            assert result["headers"]["x-ftserve-version"] == f"{model}@v1"


def test_a_slow_backend_gets_a_504_in_openai_shape_within_the_deadline(
    aws: Any, replica: Any, key: str
) -> None:
    model = _model()
    register_on_stub(aws, model)
    aws.clients("ssm").put_parameter(
        Name=f"/ftserve/models/{model}/active", Value="v1", Type="String", Overwrite=True
    )
    spec = aws.cloud.functions["InvokeFunction"]
    spec.environment["FTSERVE_BACKEND_TIMEOUT_S"] = "0.5"
    aws.dispatcher.reload("InvokeFunction")
    replica.delay_s = 3.0
    try:
        started = time.monotonic()
        result = _chat(aws, key, model)
        elapsed = time.monotonic() - started
    finally:
        replica.delay_s = 0.0
        spec.environment["FTSERVE_BACKEND_TIMEOUT_S"] = "25"
        aws.dispatcher.reload("InvokeFunction")
    body = json.loads(result["body"])
    assert result["statusCode"] == 504 and body["error"]["type"] == "server_error"
    assert result["headers"].get("Retry-After")
    assert elapsed < 2.0


def test_a_pointer_flipped_every_200_ms_under_concurrent_load_fails_no_request(
    aws: Any, replica: Any, key: str
) -> None:
    import os

    from ftserve_local.containers import Container

    model = _model()
    register_on_stub(aws, model, versions=2)
    name = f"/ftserve/models/{model}/active"
    aws.clients("ssm").put_parameter(Name=name, Value="v1", Type="String", Overwrite=True)
    env = {k: v for k, v in os.environ.items() if k.startswith(("AWS_", "FTSERVE_"))}
    env |= aws.cloud.functions["InvokeFunction"].environment | {
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "FTSERVE_POINTER_TTL_S": "0.2",
    }
    containers = [Container(env, model, key, i) for i in range(3)]
    try:
        for c in containers:
            c.run(5.0)
        started, value = time.monotonic(), "v1"
        while time.monotonic() - started < 5.0:
            value = "v2" if value == "v1" else "v1"
            aws.clients("ssm").put_parameter(Name=name, Value=value, Type="String", Overwrite=True)
            time.sleep(0.2)
        results = [r for c in containers for r in c.result()["results"]]
    finally:
        for c in containers:
            c.stop()
    assert len(results) > 30
    assert [r for r in results if r[3] != 200] == []
    assert {r[2] for r in results} == {f"{model}@v1", f"{model}@v2"}
