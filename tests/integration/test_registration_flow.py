"""Registration end to end: files uploaded to S3 → EventBridge rule → handler → registry + events."""

from __future__ import annotations

import hashlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.support import (
    adapter_config,
    adapter_files,
    base_model_pin,
    lora_weights,
    manifest,
    upload,
)


def _model() -> str:
    return f"m-{uuid.uuid4().hex[:10]}"


def _events_for(aws: Any, model: str, kind: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in aws.events()
        if (e["detail"].get("model") == model or f"/{model}/" in (e["detail"].get("key") or ""))
        and (kind is None or e["detail-type"] == kind)
    ]


def _registry(aws: Any) -> Any:
    from ftserve.registry import Registry

    return Registry(aws.table)


def test_uploaded_adapter_becomes_a_version_with_lineage_and_checksums(aws: Any) -> None:
    # Given a training job's upload: adapter files, then the manifest
    model, files = _model(), adapter_files(seed=1)
    upload(aws.clients("s3"), aws.bucket, model, "v1", files)

    # When EventBridge delivers the "Object Created" event to the registration function
    assert aws.dispatcher.pump() == 1

    # Then the version is recorded with the manifest's lineage and each file's SHA-256
    record = _registry(aws).get_version(model, "v1")
    assert record.status == "registered"
    assert record.manifest.base_model == base_model_pin()
    assert record.adapter_uri == f"s3://{aws.bucket}/adapters/{model}/v1/"
    for name, data in files.items():
        assert record.files[name].sha256 == hashlib.sha256(data).hexdigest()
        assert record.files[name].size == len(data)
        assert record.files[name].s3_version_id
    assert [h.action for h in _registry(aws).history(model)] == ["registered"]
    registered = _events_for(aws, model, "AdapterRegistered")
    assert len(registered) == 1 and registered[0]["source"] == "ftserve"
    assert registered[0]["detail"]["content_sha256"] == record.content_sha256


def test_twenty_parallel_duplicate_deliveries_register_once(aws: Any) -> None:
    # Given one manifest upload whose event is delivered 20 times at once
    model = _model()
    aws.dispatcher.pump()  # nothing else waiting on the queue
    upload(aws.clients("s3"), aws.bucket, model, "v1", adapter_files(seed=2))
    sqs = aws.clients("sqs")
    queue = aws.cloud.rules["RegisterFunctionManifestUploaded"].queue_url
    message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    event = json.loads(message["Body"])

    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    def deliver(_: int) -> str:
        try:
            return str(aws.dispatcher.invoke_unlocked("RegisterFunction", event)["result"])
        except IdempotencyAlreadyInProgressError:
            return "in-progress (Lambda retries it)"

    aws.dispatcher.prepare("RegisterFunction")
    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(deliver, range(20)))
    # and the ones that found the first still in progress are retried, as Lambda would
    retried = [
        aws.dispatcher.invoke("RegisterFunction", event)["result"]
        for r in results
        if r.startswith("in-progress")
    ]

    # Then one record, one history entry, one AdapterRegistered
    assert set(results + retried) <= {"registered", "duplicate", "in-progress (Lambda retries it)"}
    assert len(_registry(aws).list_versions(model)) == 1
    assert len(_registry(aws).history(model)) == 1
    assert len(_events_for(aws, model, "AdapterRegistered")) == 1


def test_different_content_under_an_existing_version_is_refused_and_the_original_kept(
    aws: Any,
) -> None:
    # Given v1 registered
    model, s3 = _model(), aws.clients("s3")
    upload(s3, aws.bucket, model, "v1", adapter_files(seed=1))
    aws.dispatcher.pump()
    original = _registry(aws).get_version(model, "v1")
    aws.events()

    # When another job uploads different weights under the same version
    upload(s3, aws.bucket, model, "v1", {"adapter_model.safetensors": lora_weights(seed=99)})
    aws.dispatcher.pump()

    # Then it is refused as "version exists" and the record still pins the original files
    rejected = _events_for(aws, model, "AdapterRejected")
    assert len(rejected) == 1
    assert rejected[0]["detail"]["reasons"][0].startswith("version exists")
    assert _registry(aws).get_version(model, "v1") == original
    pinned = original.files["adapter_model.safetensors"]
    body = s3.get_object(
        Bucket=aws.bucket,
        Key=f"adapters/{model}/v1/adapter_model.safetensors",
        VersionId=pinned.s3_version_id,
    )["Body"].read()
    assert hashlib.sha256(body).hexdigest() == pinned.sha256


def test_same_content_delivered_again_is_a_no_op(aws: Any) -> None:
    model, s3 = _model(), aws.clients("s3")
    files = adapter_files(seed=3)
    upload(s3, aws.bucket, model, "v1", files)
    aws.dispatcher.pump()
    # The training job retries its whole upload with the same bytes
    upload(s3, aws.bucket, model, "v1", files)
    aws.dispatcher.pump()
    assert len(_events_for(aws, model, "AdapterRegistered")) == 1
    assert len(_registry(aws).history(model)) == 1


def _bad(name: str) -> tuple[dict[str, bytes], Any, str]:
    good = {"adapter_config.json": adapter_config(), "adapter_model.safetensors": lora_weights()}
    cases: dict[str, tuple[dict[str, bytes], Any, str]] = {
        "unknown manifest key": (good, {"surprise": 1}, "unknown key 'surprise'"),
        "latest": (good, {"version": "latest"}, "'latest' is refused"),
        "missing weights": (
            {"adapter_config.json": adapter_config()},
            {},
            "missing file 'adapter_model.safetensors'",
        ),
        "wrong base": (
            {**good, "adapter_config.json": adapter_config(base_id="meta-llama/Other")},
            {},
            "wrong base",
        ),
        "pickle": (
            {**good, "adapter_model.bin": b"\x80\x04K\x01."},
            {},
            "pickle file 'adapter_model.bin' refused",
        ),
        "wrong rank": (
            {**good, "adapter_model.safetensors": lora_weights(rank=4)},
            {},
            "wrong rank",
        ),
        "corrupt header": (
            {**good, "adapter_model.safetensors": b"\xff" * 64},
            {},
            "corrupt safetensors header",
        ),
        "unpinned base": (good, {"base_model": "ftserve/tiny-llama"}, "must be pinned"),
        "bad dataset hash": (good, {"dataset_hash": "md5:abc"}, "dataset_hash"),
    }
    return cases[name]


@pytest.mark.parametrize(
    "case",
    [
        "unknown manifest key",
        "latest",
        "missing weights",
        "wrong base",
        "pickle",
        "wrong rank",
        "corrupt header",
        "unpinned base",
        "bad dataset hash",
    ],
)
def test_bad_upload_is_rejected_with_a_reason_that_names_it_and_nothing_is_written(
    aws: Any, case: str
) -> None:
    model, s3 = _model(), aws.clients("s3")
    files, manifest_changes, expected = _bad(case)
    body = manifest(model, "v1", base_model_pin()) | manifest_changes
    version = body["version"] if case == "latest" else "v1"
    upload(s3, aws.bucket, model, version, files, body)

    aws.dispatcher.pump()

    rejected = _events_for(aws, model, "AdapterRejected")
    assert len(rejected) == 1, rejected
    reasons = rejected[0]["detail"]["reasons"]
    assert any(expected in r for r in reasons), reasons
    assert _registry(aws).list_versions(model) == []
    assert _registry(aws).history(model) == []


def test_bad_names_in_the_key_are_rejected(aws: Any) -> None:
    s3 = aws.clients("s3")
    s3.put_object(Bucket=aws.bucket, Key="adapters/Bad_Name/v1/ftserve.json", Body=b"{}")
    aws.dispatcher.pump()
    rejected = [
        e for e in aws.events() if e["detail"].get("key") == "adapters/Bad_Name/v1/ftserve.json"
    ]
    assert len(rejected) == 1
    assert "bad object key" in rejected[0]["detail"]["reasons"][0]


def test_oversized_adapter_is_rejected(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    model = _model()
    aws.cloud.functions["RegisterFunction"].environment["FTSERVE_MAX_ADAPTER_BYTES"] = "4096"
    aws.dispatcher.reload("RegisterFunction")
    try:
        upload(aws.clients("s3"), aws.bucket, model, "v1", adapter_files(seed=1))
        aws.dispatcher.pump()
    finally:
        aws.cloud.functions["RegisterFunction"].environment["FTSERVE_MAX_ADAPTER_BYTES"] = (
            "2147483648"
        )
        aws.dispatcher.reload("RegisterFunction")
    reasons = _events_for(aws, model, "AdapterRejected")[0]["detail"]["reasons"]
    assert any("over the 4096-byte limit" in r for r in reasons)
    assert _registry(aws).list_versions(model) == []
