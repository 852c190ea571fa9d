"""Hosted fine-tunes that arrive without S3: OpenAI's `fine_tuning.job.succeeded` webhook.

The request is verified as a Standard Webhook (HMAC-SHA256 over `id.timestamp.body` with the
endpoint's `whsec_` secret; timestamps more than 5 minutes away refused). The job is read from
the platform, and its manifest is written to `adapters/<model>/<next version>/ftserve.json`:
from there the normal S3 → EventBridge → registration path validates and records it, so a
webhook version gets exactly the same checks and lineage as an uploaded one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
from typing import Any

from ftserve.aws import error_code
from ftserve.errors import FtserveError
from ftserve.manifest import check_model_name

TOLERANCE_S = 300
OPENAI_URL = "https://api.openai.com/v1"


class WebhookRejected(FtserveError):
    """Bad signature, stale timestamp, or a payload ftserve cannot use; `status` for the reply."""

    def __init__(self, message: str, status: int = 400) -> None:
        self.status = status
        super().__init__(message)


def verify(secret: str, headers: dict[str, str], body: str, now: float | None = None) -> None:
    """Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<b64> …`."""
    msg_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    signatures = headers.get("webhook-signature", "")
    if not (msg_id and stamp and signatures):
        raise WebhookRejected("missing webhook-id, webhook-timestamp or webhook-signature", 401)
    try:
        sent = int(stamp)
    except ValueError as exc:
        raise WebhookRejected("webhook-timestamp is not a number", 401) from exc
    if abs((now or time.time()) - sent) > TOLERANCE_S:
        raise WebhookRejected(
            "webhook-timestamp is more than 5 minutes away: refused (replay?)", 401
        )
    key = base64.b64decode(secret.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()
    ).decode()
    for candidate in signatures.split():
        version, _, signature = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(signature, expected):
            return
    raise WebhookRejected("webhook signature does not match", 401)


def sign(secret: str, msg_id: str, stamp: int, body: str) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{stamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def manifest_for_job(
    job: dict[str, Any], base_url: str | None = None, key_secret: str | None = None
) -> dict[str, Any]:
    """The manifest of a succeeded fine-tuning job (the job's metadata names the ftserve model)."""
    metadata = job.get("metadata") or {}
    try:
        model = check_model_name(str(metadata.get("ftserve_model", "")))
    except ValueError as exc:
        raise WebhookRejected(
            f"job {job.get('id')} has no usable metadata.ftserve_model: {exc}"
        ) from exc
    if job.get("status") != "succeeded" or not job.get("fine_tuned_model"):
        raise WebhookRejected(f"job {job.get('id')} has not succeeded (status {job.get('status')})")
    base = str(job.get("model", ""))
    dated = re.fullmatch(r"(.+)-(\d{4}-\d{2}-\d{2})", base)
    base_model = f"openai/{dated[1]}@{dated[2]}" if dated else f"openai/{base}@snapshot"
    files = f"{job.get('training_file')}|{job.get('validation_file')}"
    return (
        {
            "model": model,
            "version": "v0",  # allocated when written
            "base_model": base_model,
            "backend": "openai",
            "dataset_hash": "sha256:" + hashlib.sha256(files.encode()).hexdigest(),
            "hyperparams": {
                **(job.get("hyperparameters") or {}),
                "job_id": job.get("id"),
                "training_file": job.get("training_file"),
                "validation_file": job.get("validation_file"),
            },
            "eval": {
                k.removeprefix("eval_"): float(v)
                for k, v in metadata.items()
                if k.startswith("eval_") and re.fullmatch(r"-?[0-9.]+", str(v))
            },
            "system_prompt": str(metadata.get("ftserve_system_prompt", "")),
            "hosted_model_id": job["fine_tuned_model"],
        }
        | ({"hosted_base_url": base_url} if base_url and base_url != OPENAI_URL else {})
        | ({"hosted_api_key_secret": key_secret} if key_secret else {})
    )


def write_manifest(s3: Any, bucket: str, manifest: dict[str, Any], attempts: int = 20) -> str:
    """Write it under the next free version; S3's If-None-Match makes two writers never share one."""
    model = manifest["model"]
    paginator = s3.get_paginator("list_objects_v2")
    taken = [0]
    for page in paginator.paginate(Bucket=bucket, Prefix=f"adapters/{model}/", Delimiter="/"):
        for prefix in page.get("CommonPrefixes", []):
            match = re.fullmatch(rf"adapters/{model}/v(\d+)/", prefix["Prefix"])
            if match:
                taken.append(int(match[1]))
    version = max(taken) + 1
    for _ in range(attempts):
        key = f"adapters/{model}/v{version}/ftserve.json"
        body = json.dumps(manifest | {"version": f"v{version}"}, indent=2).encode()
        try:
            s3.put_object(
                Bucket=bucket, Key=key, Body=body, IfNoneMatch="*", ContentType="application/json"
            )
            return key
        except Exception as exc:
            if error_code(exc) not in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise
            version += 1
    raise WebhookRejected(f"no free version for {model} after {attempts} tries", 503)
