"""Duplicates and races: at-least-once delivery and concurrent writers never double-register,
never mix two uploads, and never leave the pointer on something that cannot serve."""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import STUB_BASE
from tests.support import adapter_files, lora_weights, manifest, register_on_stub, upload


def _model() -> str:
    return f"rel-{uuid.uuid4().hex[:8]}"


def _manifest_event(aws: Any) -> dict[str, Any]:
    sqs = aws.clients("sqs")
    queue = aws.cloud.rules["RegisterFunctionManifestUploaded"].queue_url
    message = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"][0]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    return dict(json.loads(message["Body"]))


def test_fifty_parallel_deliveries_register_once_load_once_announce_once(
    aws: Any, replica: Any
) -> None:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
    )

    from ftserve.registry import Registry

    model = _model()
    aws.dispatcher.pump()  # nothing else waiting on the queue
    upload(
        aws.clients("s3"),
        aws.bucket,
        model,
        "v1",
        adapter_files(seed=1),
        manifest(model, "v1", STUB_BASE),
    )
    event = _manifest_event(aws)
    assert event["detail"]["object"]["key"] == f"adapters/{model}/v1/ftserve.json"
    aws.dispatcher.prepare("RegisterFunction")

    def deliver(_: int) -> str:
        try:
            return str(aws.dispatcher.invoke_unlocked("RegisterFunction", event)["result"])
        except IdempotencyAlreadyInProgressError:
            return "retry"

    with ThreadPoolExecutor(max_workers=25) as pool:
        results = list(pool.map(deliver, range(50)))
    results += [
        aws.dispatcher.invoke("RegisterFunction", event)["result"] for r in results if r == "retry"
    ]

    assert len(Registry(aws.table).list_versions(model)) == 1
    assert replica.loads.count(f"{model}@v1") == 1
    announced = [
        e
        for e in aws.events()
        if e["detail"].get("model") == model and e["detail-type"] == "AdapterRegistered"
    ]
    assert len(announced) == 1


def test_two_uploads_racing_for_one_version_one_wins_and_nothing_is_mixed(
    aws: Any, replica: Any
) -> None:
    from ftserve.registry import Registry

    model, s3 = _model(), aws.clients("s3")
    a = {
        "adapter_config.json": adapter_files(seed=1)["adapter_config.json"],
        "adapter_model.safetensors": lora_weights(seed=11),
    }
    b = {
        "adapter_config.json": a["adapter_config.json"],
        "adapter_model.safetensors": lora_weights(seed=22),
    }
    prefix = f"adapters/{model}/v1/"

    def declared(files: dict[str, bytes], job: str) -> dict[str, Any]:
        digests = {n: "sha256:" + hashlib.sha256(d).hexdigest() for n, d in files.items()}
        return manifest(model, "v1", STUB_BASE, files=digests, hyperparams={"job": job})

    # Interleaved the worst way: A's files, B's files, A's manifest, B's manifest
    for name, data in a.items():
        s3.put_object(Bucket=aws.bucket, Key=prefix + name, Body=data)
    for name, data in b.items():
        s3.put_object(Bucket=aws.bucket, Key=prefix + name, Body=data)
    for body in (declared(a, "A"), declared(b, "B")):
        s3.put_object(
            Bucket=aws.bucket, Key=prefix + "ftserve.json", Body=json.dumps(body).encode()
        )
    aws.dispatcher.pump()

    record = Registry(aws.table).get_version(model, "v1")
    assert record.manifest.hyperparams == {"job": "A"}
    weights = record.files["adapter_model.safetensors"]
    assert weights.sha256 == hashlib.sha256(a["adapter_model.safetensors"]).hexdigest()
    pinned = s3.get_object(
        Bucket=aws.bucket, Key=prefix + "adapter_model.safetensors", VersionId=weights.s3_version_id
    )["Body"].read()
    assert pinned == a["adapter_model.safetensors"]  # A's bytes, though B's are the latest
    rejected = [
        e["detail"]
        for e in aws.events()
        if e["detail"].get("model") == model and e["detail-type"] == "AdapterRejected"
    ]
    assert len(rejected) == 1 and rejected[0]["reasons"][0].startswith("version exists")


def test_promote_and_rollback_racing_leave_a_consistent_history_and_a_servable_pointer(
    aws: Any, replica: Any
) -> None:
    from ftserve.registry import Registry
    from ftserve.release import ReleaseRefused, Releases

    model = _model()
    register_on_stub(aws, model, versions=3)
    releases = Releases(Registry(aws.table), aws.clients("ssm"), "/ftserve/models", "default")
    releases.promote(model, "v1", "setup")
    barrier = threading.Barrier(6)

    def operator(i: int) -> None:
        barrier.wait()
        for n in range(5):
            try:
                if (i + n) % 3 == 0:
                    releases.rollback(model, f"op{i}")
                else:
                    releases.promote(model, ("v2", "v3")[(i + n) % 2], f"op{i}")
            except ReleaseRefused:
                pass  # e.g. "already serves": a refusal is a consistent outcome

    threads = [threading.Thread(target=operator, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    value = releases.pointer_value(model)
    assert value in ("v1", "v2", "v3")
    releases.check_pointer(model, value or "")
    changes = releases.pointer_changes(model)
    newest = max(changes, key=lambda h: h.details["parameter_version"])
    assert newest.details["to"] == value  # the history's last word is the pointer's value
    versions = [h.details["parameter_version"] for h in changes]
    assert len(versions) == len(set(versions))  # one entry per write, none lost or doubled
